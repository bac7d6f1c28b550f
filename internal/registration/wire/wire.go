// Package wire is the registration protocol shared by droverd, the drover CLI and drover-agent:
// the endpoint paths, the JSON bodies, and activation codes. It imports only the standard library,
// so that the agent can use it without linking the API server.
package wire

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

// Endpoint paths, served by droverd on its TLS port outside the Kubernetes API paths.
const (
	// RegisterPath takes a RegisterRequest from an anonymous caller and answers a RegisterResponse.
	RegisterPath = "/drover/v1/register"
	// CAPath answers the cluster CA certificate (PEM) to anonymous callers. A caller must check it
	// against the CA hash it was given before trusting it.
	CAPath = "/drover/v1/ca"
	// RenewPath takes a RenewRequest from a container instance, authenticated by its current client
	// certificate, and answers a RenewResponse.
	RenewPath = "/drover/v1/renew"
)

// RegisterRequest is the body of a POST to RegisterPath.
type RegisterRequest struct {
	// ActivationID is <namespace>/<name> of the Activation.
	ActivationID string `json:"activationId"`
	// ActivationCode is the code drover activation create printed.
	ActivationCode string `json:"activationCode"`
	// Hostname is the host's name; the container instance is named after it.
	Hostname string `json:"hostname"`
	// CSR is a PEM CERTIFICATE REQUEST signed by the host's new key. Only its public key is used.
	CSR string `json:"csr"`
}

// RegisterResponse is the answer to a successful registration.
type RegisterResponse struct {
	// Namespace and ContainerInstance name the instance that was created.
	Namespace         string `json:"namespace"`
	ContainerInstance string `json:"containerInstance"`
	// Cluster is the cluster the instance joined.
	Cluster string `json:"cluster"`
	// Certificate is the instance's client certificate (PEM).
	Certificate string `json:"certificate"`
	// CACertificate is the cluster CA certificate (PEM).
	CACertificate string `json:"caCertificate"`
	// Server is the URL the agent should use from now on, when droverd is configured with one.
	Server string `json:"server,omitempty"`
}

// RenewRequest is the body of a POST to RenewPath.
type RenewRequest struct {
	// CSR is a PEM CERTIFICATE REQUEST for the key the renewed certificate is for.
	CSR string `json:"csr"`
}

// RenewResponse is the answer to a successful renewal.
type RenewResponse struct {
	// Certificate is the renewed client certificate (PEM).
	Certificate string `json:"certificate"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// codeBytes is the entropy of an activation code: 160 bits.
const codeBytes = 20

var codeEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewCode returns a new activation code: 160 random bits as 32 lowercase base32 characters in
// four groups of eight joined by dashes, for example 7kq2m4xa-... . It is URL-safe, and has no
// upper case and no 0, 1, 8 or 9 to confuse when copied by hand.
func NewCode() (string, error) {
	b := make([]byte, codeBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	s := codeEncoding.EncodeToString(b)
	groups := make([]string, 0, len(s)/8)
	for i := 0; i < len(s); i += 8 {
		groups = append(groups, s[i:i+8])
	}
	return strings.Join(groups, "-"), nil
}

// HashCode returns what an Activation stores instead of its code: sha256:<64 lowercase hex digits>
// of the code's bytes.
func HashCode(code string) string {
	sum := sha256.Sum256([]byte(code))
	return "sha256:" + hex.EncodeToString(sum[:])
}
