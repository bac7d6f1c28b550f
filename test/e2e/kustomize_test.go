package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/test/framework"
)

// TestOperatorInstallBuilds renders config/default with kubectl's kustomize, as
// `kubectl apply -k config/default` would, and checks it installs every CRD, the controllers'
// RBAC and a Deployment running droverd in controllers-only mode.
func TestOperatorInstallBuilds(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "kubectl", "kustomize", filepath.Join(framework.RepoRoot(), "config", "default")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	rendered := string(out)
	for _, plural := range []string{"clusters", "taskdefinitions", "taskdefinitionrevisions", "services", "containerinstances", "tasks", "activations"} {
		require.Contains(t, rendered, "name: "+plural+".ecs.drover.dev", "CRD %s", plural)
	}
	for _, want := range []string{"kind: ClusterRole\n", "kind: ClusterRoleBinding\n", "kind: ServiceAccount\n", "kind: Deployment\n", "--controllers-only", "namespace: drover-system", "- taskdefinitionrevisions"} {
		require.Contains(t, rendered, want)
	}
	require.Equal(t, 1, strings.Count(rendered, "kind: Deployment\n"))
}
