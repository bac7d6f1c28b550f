package registration

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

const (
	// suffixBytes of randomness end every instance name: 6 hex digits.
	suffixBytes = 3
	// maxNameBase keeps base-suffix within a DNS label's 63 characters.
	maxNameBase = 63 - 1 - 2*suffixBytes
	// fallbackNameBase names instances whose host name has nothing usable.
	fallbackNameBase = "instance"
)

// instanceName returns a new name for a host's ContainerInstance: a DNS-1123 label made of the
// first label of its host name and a random suffix, for example store-042-7f3a9c. The suffix lets
// hosts with the same name register, and a host register again, without colliding.
func instanceName(hostname string) string {
	b := make([]byte, suffixBytes)
	_, _ = rand.Read(b) // crypto/rand does not fail on supported platforms
	return nameBase(hostname) + "-" + hex.EncodeToString(b)
}

// nameBase turns the first label of a host name into lower-case letters, digits and single dashes,
// starting with a letter or digit, at most maxNameBase long.
func nameBase(hostname string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(hostname), ".")
	var sb strings.Builder
	dash := false
	for _, r := range strings.ToLower(first) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if dash && sb.Len() > 0 {
				sb.WriteByte('-')
			}
			dash = false
			sb.WriteRune(r)
		default:
			dash = true
		}
		if sb.Len() >= maxNameBase {
			break
		}
	}
	base := strings.TrimRight(sb.String()[:min(sb.Len(), maxNameBase)], "-")
	if base == "" {
		return fallbackNameBase
	}
	return base
}
