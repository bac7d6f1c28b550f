package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilversion "k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/drover-dev/drover/test/framework"
)

const (
	ecsGroup       = "ecs.drover.dev"
	kubectlTimeout = 30 * time.Second
)

// kubectlUser runs the installed kubectl with one kubeconfig and its own cache directory.
type kubectlUser struct {
	kubeconfig string
	home       string
}

func newKubectlUser(t *testing.T, kubeconfig string) *kubectlUser {
	t.Helper()
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl is not on PATH")
	}
	return &kubectlUser{kubeconfig: kubeconfig, home: t.TempDir()}
}

// command returns a kubectl command bound to ctx.
func (k *kubectlUser) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+k.kubeconfig, "HOME="+k.home)
	cmd.Dir = framework.RepoRoot()
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// kubectl runs kubectl to completion, or until kubectlTimeout passes.
func (k *kubectlUser) kubectl(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return k.kubectlStdin(t, "", args...)
}

// kubectlStdin is kubectl with stdin.
func (k *kubectlUser) kubectlStdin(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), kubectlTimeout)
	defer cancel()
	cmd := k.command(ctx, args...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// must runs kubectl and fails the test unless it exits 0.
func (k *kubectlUser) must(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, err := k.kubectl(t, args...)
	require.NoError(t, err, "kubectl %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), stdout, stderr)
	return stdout
}

// exitCode is the exit status of a finished kubectl, 0 on success, -1 when it did not run or exit.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// getECS reads an ECS object in the default namespace from the server.
func getECS(t *testing.T, c client.Client, kind, name string) (*unstructured.Unstructured, error) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: ecsGroup, Version: "v1alpha1", Kind: kind})
	err := c.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: name}, u)
	return u, err
}

func mustGetECS(t *testing.T, c client.Client, kind, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := getECS(t, c, kind, name)
	require.NoError(t, err, "getting %s %s", kind, name)
	return u
}

func requireGone(t *testing.T, c client.Client, kind, name string) {
	t.Helper()
	_, err := getECS(t, c, kind, name)
	require.True(t, apierrors.IsNotFound(err), "%s %s should not exist: %v", kind, name, err)
}

// assertSubset checks that every field set in want has the same value in got; got may hold more (defaults).
func assertSubset(t *testing.T, want, got any, path string) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !assert.True(t, ok, "%s: want an object, got %v", path, got) {
			return
		}
		for k, v := range w {
			assertSubset(t, v, g[k], path+"."+k)
		}
	case []any:
		g, ok := got.([]any)
		if !assert.True(t, ok, "%s: want a list, got %v", path, got) || !assert.Len(t, g, len(w), path) {
			return
		}
		for i := range w {
			assertSubset(t, w[i], g[i], path+"["+itoa(i)+"]")
		}
	default:
		assert.Equal(t, fmt.Sprint(want), fmt.Sprint(got), path)
	}
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// writeFile writes a manifest into a fresh directory whose path has no comma, which kubectl -f would split at.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kubectl-e2e-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	f := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(f, []byte(content), 0o600))
	return f
}

// TestKubectl drives the installed kubectl against a droverd process through the workflows of the README.
func TestKubectl(t *testing.T) {
	p := framework.StartProcess(t, framework.NewOptions(t))
	admin := newKubectlUser(t, p.Kubeconfig)
	kubectl := admin.kubectl
	samplesDir := filepath.Join(framework.RepoRoot(), "config", "samples")

	t.Run("version", func(t *testing.T) {
		stdout, stderr, err := kubectl(t, "version")
		require.NoError(t, err, stderr)
		assert.Regexp(t, `(?m)^Server Version: v\d+\.\d+\.\d+`, stdout)
		assert.NotContains(t, stdout+stderr, "could not parse")
		stdout, stderr, err = kubectl(t, "version", "-o", "json")
		require.NoError(t, err, stderr)
		assert.NotContains(t, stderr, "could not parse")
		var v struct {
			ServerVersion *struct {
				Major, Minor, GitVersion string
			} `json:"serverVersion"`
		}
		require.NoError(t, json.Unmarshal([]byte(stdout), &v), stdout)
		require.NotNil(t, v.ServerVersion, "no serverVersion in %s", stdout)
		sv, err := utilversion.ParseSemantic(v.ServerVersion.GitVersion)
		require.NoError(t, err, "server gitVersion %q", v.ServerVersion.GitVersion)
		assert.Equal(t, v.ServerVersion.Major, itoa(int(sv.Major())))
		assert.Regexp(t, `^\d+\+?$`, v.ServerVersion.Minor)
	})

	objs := samples(t)
	if !t.Run("apply samples", func(t *testing.T) {
		stdout := admin.must(t, "apply", "-f", samplesDir)
		kinds := map[string]bool{}
		for _, u := range objs {
			require.Equal(t, ecsGroup, u.GroupVersionKind().Group, "sample %s %s", u.GetKind(), u.GetName())
			kinds[u.GetKind()] = true
			assert.Contains(t, stdout, strings.ToLower(u.GetKind())+"."+ecsGroup+"/"+u.GetName()+" created")
			got := mustGetECS(t, p.Client, u.GetKind(), u.GetName())
			assertSubset(t, u.Object["spec"], got.Object["spec"], u.GetKind()+" "+u.GetName()+" spec")
		}
		require.Equal(t, map[string]bool{"Cluster": true, "TaskDefinition": true, "Service": true,
			"ContainerInstance": true, "Task": true, "Activation": true}, kinds, "one sample of every user-facing kind")
	}) {
		t.FailNow()
	}

	t.Run("get", func(t *testing.T) {
		resources := []struct {
			plural, short, kind, name string
			wide                      []string // columns only -o wide shows
		}{
			{"clusters", "ecscluster", "cluster", "stores", nil},
			{"taskdefinitions", "td", "taskdefinition", "web", []string{"CPU", "MEMORY"}},
			{"taskdefinitionrevisions", "tdr", "taskdefinitionrevision", "", nil},
			{"services", "ecssvc", "service", "web", []string{"TASK DEFINITION", "REVISION", "STRATEGY"}},
			{"containerinstances", "ci", "containerinstance", "store-0001", []string{"AGENT", "ARCH"}},
			{"tasks", "ecstask", "task", "web-once", []string{"REVISION", "CLUSTER"}},
			{"activations", "act", "activation", "stores", nil},
		}
		for _, r := range resources {
			for _, name := range []string{r.plural, r.short, r.plural + "." + ecsGroup} {
				stdout := admin.must(t, "get", name, "-o", "name")
				for _, l := range lines(stdout) {
					assert.True(t, strings.HasPrefix(l, r.kind+"."+ecsGroup+"/"), "kubectl get %s listed %q", name, l)
				}
				if r.name != "" {
					assert.Contains(t, lines(stdout), r.kind+"."+ecsGroup+"/"+r.name, "kubectl get %s", name)
				}
			}
			if r.name == "" {
				continue
			}
			table := lines(admin.must(t, "get", r.short, r.name))
			require.Len(t, table, 2, "header and one row")
			assert.Regexp(t, `^NAME\s+.*AGE$`, table[0])
			assert.True(t, strings.HasPrefix(table[1], r.name+" "), "row %q", table[1])
			wide := lines(admin.must(t, "get", r.plural, r.name, "-o", "wide"))
			require.Len(t, wide, 2, "header and one row")
			for _, col := range r.wide {
				assert.NotContains(t, table[0], col, "%s without -o wide", r.plural)
				assert.Contains(t, wide[0], col, "%s -o wide", r.plural)
			}
		}
		// The wide columns carry the spec's values (the status columns stay out of it).
		wide := lines(admin.must(t, "get", "services", "web", "-o", "wide"))
		assert.Regexp(t, `^web\s+stores\s.*\sweb\s+(\S+\s+)?REPLICA$`, wide[1])
		wide = lines(admin.must(t, "get", "tasks", "web-once", "-o", "wide"))
		assert.Regexp(t, `\bstores$`, wide[1])

		// The category lists every kind's objects.
		all := lines(admin.must(t, "get", "ecs", "-o", "name"))
		for _, u := range objs {
			assert.Contains(t, all, strings.ToLower(u.GetKind())+"."+ecsGroup+"/"+u.GetName(), "kubectl get ecs")
		}
		table := admin.must(t, "get", "ecs")
		for _, u := range objs {
			assert.Contains(t, table, strings.ToLower(u.GetKind())+"."+ecsGroup+"/"+u.GetName(), "kubectl get ecs")
		}
	})

	t.Run("describe", func(t *testing.T) {
		svc := mustGetECS(t, p.Client, "Service", "web")
		now := metav1.Now()
		ev := &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web.kubectl-e2e"},
			InvolvedObject: corev1.ObjectReference{APIVersion: svc.GetAPIVersion(), Kind: "Service", Namespace: "default",
				Name: "web", UID: svc.GetUID()},
			Reason: "KubectlE2E", Message: "the e2e test was here", Type: corev1.EventTypeNormal,
			Source: corev1.EventSource{Component: "e2e"}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
		}
		require.NoError(t, p.Client.Create(t.Context(), ev))

		stdout, stderr, err := kubectl(t, "describe", "service", "web")
		require.NoError(t, err, stderr)
		assert.Empty(t, stderr)
		for _, re := range []string{
			`(?m)^Name:\s+web$`, `(?m)^Kind:\s+Service$`, `(?m)^\s+Cluster:\s+stores$`, `(?m)^\s+Desired Count:\s+2$`,
			`(?m)^\s+Minimum Healthy Percent:\s+50$`, `(?m)^\s+Maximum Percent:\s+200$`, `(?m)^\s+Task Definition:\s+web$`,
			`(?m)^Events:\n\s+Type\s+Reason\s+Age\s+From\s+Message\n`,
			`(?m)^\s+Normal\s+KubectlE2E\s+.*\s+e2e\s+the e2e test was here$`,
		} {
			assert.Regexp(t, re, stdout)
		}
	})

	t.Run("diff", func(t *testing.T) {
		stdout, stderr, err := kubectl(t, "diff", "-f", samplesDir)
		assert.Equal(t, 0, exitCode(err), "diff of the applied samples: %v\n%s\n%s", err, stdout, stderr)
		assert.Empty(t, stdout)

		orig, err := os.ReadFile(filepath.Join(samplesDir, "ecs_v1alpha1_service.yaml"))
		require.NoError(t, err)
		modified := strings.Replace(string(orig), "healthCheckGracePeriodSeconds: 30", "healthCheckGracePeriodSeconds: 45", 1)
		require.NotEqual(t, string(orig), modified, "the service sample sets healthCheckGracePeriodSeconds: 30")
		stdout, stderr, err = kubectl(t, "diff", "-f", writeFile(t, "service.yaml", modified))
		require.Equal(t, 1, exitCode(err), "diff of a changed service exits 1: %v\n%s", err, stderr)
		assert.Regexp(t, `(?m)^-\s+healthCheckGracePeriodSeconds: 30$`, stdout)
		assert.Regexp(t, `(?m)^\+\s+healthCheckGracePeriodSeconds: 45$`, stdout)
		got, _, _ := unstructured.NestedInt64(mustGetECS(t, p.Client, "Service", "web").Object, "spec", "healthCheckGracePeriodSeconds")
		assert.Equal(t, int64(30), got, "diff changes nothing")
	})

	t.Run("explain", func(t *testing.T) {
		stdout := admin.must(t, "explain", "service.spec.deploymentConfiguration")
		assert.Regexp(t, `(?m)^GROUP:\s+ecs.drover.dev$`, stdout)
		assert.Regexp(t, `(?m)^KIND:\s+Service$`, stdout)
		assert.Regexp(t, `(?m)^\s+minimumHealthyPercent\s+<integer>$`, stdout)
		assert.Regexp(t, `(?m)^\s+maximumPercent\s+<integer>$`, stdout)
		assert.Regexp(t, `(?m)^\s+deploymentCircuitBreaker\s+<Object>$`, stdout)
		assert.Contains(t, stdout, "minimumHealthyPercent is the lower limit")

		stdout = admin.must(t, "explain", "ecstask.spec")
		assert.Regexp(t, `(?m)^\s+containerInstance\s+<string>$`, stdout)
	})

	t.Run("scale and wait", func(t *testing.T) {
		stdout := admin.must(t, "scale", "service/web", "--replicas=5")
		assert.Contains(t, stdout, "service.ecs.drover.dev/web scaled")
		stdout = admin.must(t, "wait", "--for=jsonpath={.spec.desiredCount}=5", "service/web", "--timeout=20s")
		assert.Contains(t, stdout, "service.ecs.drover.dev/web condition met")
		n, _, _ := unstructured.NestedInt64(mustGetECS(t, p.Client, "Service", "web").Object, "spec", "desiredCount")
		assert.Equal(t, int64(5), n, "spec.desiredCount in the server")
		assert.Equal(t, "5", admin.must(t, "get", "service", "web", "--subresource=scale", "-o", "jsonpath={.spec.replicas}"))

		// wait really waits for the value: one the service never reaches times out.
		_, _, err := kubectl(t, "wait", "--for=jsonpath={.spec.desiredCount}=7", "service/web", "--timeout=1s")
		assert.NotEqual(t, 0, exitCode(err), "waiting for desiredCount 7")
	})

	t.Run("server-side apply", func(t *testing.T) {
		manifest := func(desc string) string {
			return writeFile(t, desc+".yaml", "apiVersion: ecs.drover.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: kt-ssa\nspec:\n  description: "+desc+"\n")
		}
		descOf := func() string {
			d, _, _ := unstructured.NestedString(mustGetECS(t, p.Client, "Cluster", "kt-ssa").Object, "spec", "description")
			return d
		}
		ownsDescription := func(manager string) bool {
			for _, mf := range mustGetECS(t, p.Client, "Cluster", "kt-ssa").GetManagedFields() {
				if mf.Manager == manager && mf.Operation == metav1.ManagedFieldsOperationApply && mf.FieldsV1 != nil &&
					strings.Contains(string(mf.FieldsV1.Raw), `"f:description"`) {
					return true
				}
			}
			return false
		}

		stdout := admin.must(t, "apply", "--server-side", "-f", manifest("one"))
		assert.Contains(t, stdout, "cluster.ecs.drover.dev/kt-ssa serverside-applied")
		assert.Equal(t, "one", descOf())
		assert.True(t, ownsDescription("kubectl"), "managedFields: %v", mustGetECS(t, p.Client, "Cluster", "kt-ssa").GetManagedFields())

		stdout, stderr, err := kubectl(t, "apply", "--server-side", "--field-manager=kt-other", "-f", manifest("two"))
		require.Error(t, err, "a second manager changing kubectl's field: %s", stdout)
		assert.Contains(t, stderr, `conflict with "kubectl"`)
		assert.Contains(t, stderr, ".spec.description")
		assert.Equal(t, "one", descOf(), "a conflicting apply changes nothing")

		admin.must(t, "apply", "--server-side", "--field-manager=kt-other", "--force-conflicts", "-f", manifest("two"))
		assert.Equal(t, "two", descOf())
		assert.True(t, ownsDescription("kt-other"), "kt-other took .spec.description over")
		assert.False(t, ownsDescription("kubectl"), "kubectl lost .spec.description")
	})

	t.Run("task watch and field selectors", func(t *testing.T) {
		watch := startWatch(t, admin, "get", "tasks", "-w", "--output-watch-events", "-o", "json")
		watch.waitFor(t, "the initial list", func(e watchEvent) bool { return e.Type == "ADDED" && e.Object.GetName() == "web-once" })

		admin.must(t, "create", "-f", writeFile(t, "cluster.yaml",
			"apiVersion: ecs.drover.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: kt-other\n"))
		task := func(name, cluster, instance string) string {
			return "apiVersion: ecs.drover.dev/v1alpha1\nkind: Task\nmetadata:\n  name: " + name +
				"\nspec:\n  cluster: " + cluster + "\n  taskDefinition: web:1\n  containerInstance: " + instance + "\n"
		}
		stdout, stderr, err := admin.kubectlStdin(t, task("kt-a", "stores", "kt-host-a")+"---\n"+task("kt-b", "kt-other", "kt-host-b"), "create", "-f", "-")
		require.NoError(t, err, "%s\n%s", stdout, stderr)

		watch.waitFor(t, "ADDED kt-a", func(e watchEvent) bool {
			ci, _, _ := unstructured.NestedString(e.Object.Object, "spec", "containerInstance")
			return e.Type == "ADDED" && e.Object.GetName() == "kt-a" && ci == "kt-host-a"
		})
		admin.must(t, "label", "task", "kt-a", "e2e=modified")
		watch.waitFor(t, "MODIFIED kt-a with the label", func(e watchEvent) bool {
			return e.Type == "MODIFIED" && e.Object.GetName() == "kt-a" && e.Object.GetLabels()["e2e"] == "modified"
		})

		byInstance := lines(admin.must(t, "get", "tasks", "--field-selector", "spec.containerInstance=kt-host-a", "-o", "name"))
		assert.Equal(t, []string{"task.ecs.drover.dev/kt-a"}, byInstance)
		byInstance = lines(admin.must(t, "get", "ecstask", "--field-selector", "spec.containerInstance=kt-host-b", "-o", "name"))
		assert.Equal(t, []string{"task.ecs.drover.dev/kt-b"}, byInstance)
		assert.Empty(t, lines(admin.must(t, "get", "tasks", "--field-selector", "spec.containerInstance=kt-host-none", "-o", "name")))
		byCluster := lines(admin.must(t, "get", "tasks", "--field-selector", "spec.cluster=kt-other", "-o", "name"))
		assert.Equal(t, []string{"task.ecs.drover.dev/kt-b"}, byCluster)
		byCluster = lines(admin.must(t, "get", "tasks", "--field-selector", "spec.cluster=stores", "-o", "name"))
		assert.Contains(t, byCluster, "task.ecs.drover.dev/kt-a")
		assert.Contains(t, byCluster, "task.ecs.drover.dev/web-once")
		assert.NotContains(t, byCluster, "task.ecs.drover.dev/kt-b")
		notA := lines(admin.must(t, "get", "tasks", "--field-selector", "spec.containerInstance!=kt-host-a", "-o", "name"))
		assert.NotContains(t, notA, "task.ecs.drover.dev/kt-a")
		assert.Contains(t, notA, "task.ecs.drover.dev/kt-b")

		stdout = admin.must(t, "delete", "task", "kt-b")
		assert.Contains(t, stdout, `task.ecs.drover.dev "kt-b" deleted`)
		requireGone(t, p.Client, "Task", "kt-b")
		watch.waitFor(t, "DELETED kt-b", func(e watchEvent) bool { return e.Type == "DELETED" && e.Object.GetName() == "kt-b" })
		watch.stop(t)

		admin.must(t, "delete", "-f", filepath.Join(samplesDir, "ecs_v1alpha1_activation.yaml"))
		requireGone(t, p.Client, "Activation", "stores")
		_, stderr, err = kubectl(t, "get", "act", "stores")
		assert.NotEqual(t, 0, exitCode(err))
		assert.Contains(t, stderr, "NotFound")
	})

	t.Run("auth as admin", func(t *testing.T) {
		stdout := admin.must(t, "auth", "whoami")
		assert.Regexp(t, `(?m)^Username\s+drover:admin$`, stdout)
		assert.Regexp(t, `(?m)^Groups\s+\[.*\bdrover:admins\b.*\]$`, stdout)
		stdout, stderr, err := kubectl(t, "auth", "can-i", "create", "services.ecs.drover.dev")
		assert.Equal(t, 0, exitCode(err), stderr)
		assert.Equal(t, "yes", strings.TrimSpace(stdout))
	})

	t.Run("auth as viewer", func(t *testing.T) {
		kc := filepath.Join(t.TempDir(), "vera.kubeconfig")
		out, err := exec.CommandContext(t.Context(), framework.Binary(t, "droverd"), "kubeconfig",
			"--data-dir", p.DataDir, "--user", "vera", "--output", kc, "--server", p.URL).CombinedOutput()
		require.NoError(t, err, "%s", out)
		vera := newKubectlUser(t, kc)

		stdout, stderr, err := vera.kubectl(t, "auth", "can-i", "create", "tasks")
		assert.Equal(t, 1, exitCode(err), "can-i create tasks: %v\n%s", err, stderr)
		assert.Equal(t, "no", strings.TrimSpace(stdout), "can-i create tasks; stderr: %s", stderr)
		stdout, stderr, err = vera.kubectl(t, "auth", "can-i", "list", "tasks")
		assert.Equal(t, 0, exitCode(err), "can-i list tasks: %v\n%s", err, stderr)
		assert.Equal(t, "yes", strings.TrimSpace(stdout), "can-i list tasks; stderr: %s", stderr)
		stdout, stderr, err = vera.kubectl(t, "auth", "whoami")
		if assert.NoError(t, err, "whoami as vera: %s", stderr) {
			assert.Regexp(t, `(?m)^Username\s+vera$`, stdout)
			assert.Regexp(t, `(?m)^Groups\s+\[.*\bdrover:viewers\b.*\]$`, stdout)
		}

		assert.Contains(t, lines(vera.must(t, "get", "tasks", "-o", "name")), "task.ecs.drover.dev/web-once")

		_, stderr, err = vera.kubectl(t, "create", "-f", writeFile(t, "cluster.yaml",
			"apiVersion: ecs.drover.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: kt-vera\n"))
		assert.Error(t, err)
		assert.Contains(t, stderr, "Forbidden")
		requireGone(t, p.Client, "Cluster", "kt-vera")

		_, stderr, err = vera.kubectl(t, "delete", "task", "web-once")
		assert.Error(t, err)
		assert.Contains(t, stderr, "Forbidden")
		mustGetECS(t, p.Client, "Task", "web-once")
	})

	t.Run("rollout column and wait", func(t *testing.T) {
		admin.must(t, "apply", "-f", writeFile(t, "rollout.yaml", `apiVersion: ecs.drover.dev/v1alpha1
kind: Cluster
metadata:
  name: kt-roll
---
apiVersion: ecs.drover.dev/v1alpha1
kind: TaskDefinition
metadata:
  name: kt-web
spec:
  containerDefinitions:
  - name: app
    image: example.com/kt-web:1
    cpu: 256
    memory: 256
---
apiVersion: ecs.drover.dev/v1alpha1
kind: Service
metadata:
  name: kt-web
spec:
  cluster: kt-roll
  taskDefinition: kt-web
  desiredCount: 2
`))
		// The ROLLOUT cell of kubectl get's table, found under its header.
		rollout := func() string {
			table := lines(admin.must(t, "get", "ecssvc", "kt-web"))
			require.Len(t, table, 2, "header and one row")
			col := strings.Index(table[0], "ROLLOUT")
			require.GreaterOrEqual(t, col, 0, "a ROLLOUT column in %q", table[0])
			if col >= len(table[1]) {
				return ""
			}
			return strings.Fields(table[1][col:] + " ")[0]
		}
		waitCompleted := func(timeout string) (string, error) {
			stdout, _, err := kubectl(t, "wait", "ecssvc/kt-web", "--for=jsonpath={.status.deployments[0].rolloutState}=COMPLETED", "--timeout="+timeout)
			return stdout, err
		}

		// No instance in the cluster yet: the tasks wait and the rollout is in progress.
		assert.Eventually(t, func() bool { return rollout() == "IN_PROGRESS" }, 15*time.Second, 100*time.Millisecond,
			"kubectl get ecssvc shows the rollout IN_PROGRESS")
		_, err := waitCompleted("1s")
		assert.NotEqual(t, 0, exitCode(err), "kubectl wait for COMPLETED while no task can run")

		framework.StartSimulatedAgents(t, p.Client, "default", "kt-roll", framework.SimulatedInstance{Name: "kt-roll-1", CPU: 4096, Memory: 4096})
		stdout, err := waitCompleted("25s")
		require.NoError(t, err, "kubectl wait for COMPLETED once tasks run: %s", stdout)
		assert.Contains(t, stdout, "service.ecs.drover.dev/kt-web condition met")
		assert.Equal(t, "COMPLETED", rollout())

		// An image change is a new deployment, followed the same way.
		admin.must(t, "patch", "td", "kt-web", "--type=json",
			"-p", `[{"op":"replace","path":"/spec/containerDefinitions/0/image","value":"example.com/kt-web:2"}]`)
		admin.must(t, "wait", "ecssvc/kt-web", "--for=jsonpath={.status.deployments[0].taskDefinitionRevision}=kt-web-2", "--timeout=25s")
		stdout, err = waitCompleted("25s")
		require.NoError(t, err, "kubectl wait for the new deployment to complete: %s", stdout)
		assert.Equal(t, "COMPLETED", rollout())
		images := admin.must(t, "get", "ecstask", "-l", "ecs.drover.dev/service=kt-web",
			"-o", `jsonpath={range .items[?(@.spec.desiredStatus=="RUNNING")]}{.spec.taskDefinitionRevision}{"\n"}{end}`)
		assert.Equal(t, []string{"kt-web-2", "kt-web-2"}, lines(images), "the service's running tasks are all on kt-web-2")
	})
}

// watchEvent is one event printed by kubectl get -w --output-watch-events -o json.
type watchEvent struct {
	Type   string                    `json:"type"`
	Object unstructured.Unstructured `json:"object"`
}

// kubectlWatch is a kubectl get -w running in the background.
type kubectlWatch struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{}
	stderr framework.SyncBuffer

	mu     sync.Mutex
	events []watchEvent
	err    error
}

func startWatch(t *testing.T, k *kubectlUser, args ...string) *kubectlWatch {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	w := &kubectlWatch{cancel: cancel, done: make(chan struct{})}
	w.cmd = k.command(ctx, args...)
	w.cmd.Stderr = &w.stderr
	stdout, err := w.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, w.cmd.Start())
	go func() {
		defer close(w.done)
		dec := json.NewDecoder(stdout)
		for {
			var e watchEvent
			err := dec.Decode(&e)
			w.mu.Lock()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					w.err = err
				}
				w.mu.Unlock()
				return
			}
			w.events = append(w.events, e)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
		_ = w.cmd.Wait()
	})
	return w
}

// waitFor waits until the watch has printed an event that matches.
func (w *kubectlWatch) waitFor(t *testing.T, what string, match func(watchEvent) bool) {
	t.Helper()
	found := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, e := range w.events {
			if match(e) {
				return true
			}
		}
		return false
	}
	if !assert.Eventually(t, found, 15*time.Second, 50*time.Millisecond, "kubectl get -w never showed %s", what) {
		w.mu.Lock()
		defer w.mu.Unlock()
		var seen []string
		for _, e := range w.events {
			seen = append(seen, e.Type+" "+e.Object.GetName())
		}
		sort.Strings(seen)
		t.Fatalf("events seen: %v; decode error: %v; stderr: %s", seen, w.err, w.stderr.String())
	}
}

// stop kills the watch and checks that it was still running and printed only well-formed events.
func (w *kubectlWatch) stop(t *testing.T) {
	t.Helper()
	select {
	case <-w.done:
		t.Fatalf("kubectl get -w ended by itself: %v; stderr: %s", w.err, w.stderr.String())
	default:
	}
	require.NoError(t, w.cmd.Process.Kill())
	<-w.done
	err := w.cmd.Wait()
	require.Equal(t, -1, exitCode(err), "killed: %v", err)
	w.mu.Lock()
	defer w.mu.Unlock()
	require.NoError(t, w.err, "decoding the watch output")
}
