// Package version is Drover's release version, set at link time by `make build`.
package version

import (
	"fmt"
	"strings"

	apimachineryversion "k8s.io/apimachinery/pkg/version"
	basecompatibility "k8s.io/component-base/compatibility"
)

// Version is Drover's version; `make build` sets it with -ldflags -X.
var Version = "v0.1.0-dev"

// ServerInfo returns what droverd reports at /version: the Kubernetes API level it serves, with
// Drover's own version as semver build metadata (for example v1.37.0+drover.v0.1.0-dev), so that
// kubectl can parse it and people can read it.
func ServerInfo(ev basecompatibility.EffectiveVersion) *apimachineryversion.Info {
	info := ev.Info()
	if info == nil {
		info = &apimachineryversion.Info{}
	}
	out := *info
	bin := ev.BinaryVersion()
	out.Major, out.Minor = fmt.Sprint(bin.Major()), fmt.Sprint(bin.Minor())
	out.GitVersion = fmt.Sprintf("v%d.%d.0+drover.%s", bin.Major(), bin.Minor(), buildMetadata(Version))
	if out.GitCommit == "" || strings.Contains(out.GitCommit, "$Format") {
		out.GitCommit = ""
	}
	if strings.Contains(out.GitTreeState, "$Format") {
		out.GitTreeState = ""
	}
	return &out
}

// buildMetadata keeps only the characters semver allows in build metadata.
func buildMetadata(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, s)
}

// effectiveVersion reports ServerInfo while keeping every other answer of the wrapped version.
type effectiveVersion struct {
	basecompatibility.EffectiveVersion
}

// Info implements basecompatibility.EffectiveVersion.
func (e effectiveVersion) Info() *apimachineryversion.Info { return ServerInfo(e.EffectiveVersion) }

// WithDroverInfo wraps ev so that /version reports Drover's version.
func WithDroverInfo(ev basecompatibility.EffectiveVersion) basecompatibility.EffectiveVersion {
	return effectiveVersion{ev}
}
