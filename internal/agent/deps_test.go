package agent

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAgentDoesNotLinkTheControlPlane keeps drover-agent small: it must not link the API server
// or etcd.
func TestAgentDoesNotLinkTheControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "github.com/drover-dev/drover/cmd/drover-agent").CombinedOutput()
	require.NoError(t, err, "go list: %s", out)
	forbidden := []string{
		"k8s.io/apiserver",
		"k8s.io/apiextensions-apiserver",
		"go.etcd.io/etcd/server",
		"github.com/drover-dev/drover/internal/apiserver",
	}
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/drover-dev/drover/internal/agent", "go list lists the agent's packages")
	for _, dep := range deps {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("drover-agent links %s (matches %s)", dep, f)
			}
		}
	}
}
