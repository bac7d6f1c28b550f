package e2e

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/manager"
	"github.com/drover-dev/drover/internal/registration"
	"github.com/drover-dev/drover/test/framework"
)

type activation struct {
	ActivationID, ActivationCode, Server, CACertHash, Command string
}

// run runs a built binary to completion and returns its combined output and error.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), framework.Binary(t, name), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func createActivation(t *testing.T, p *framework.Process, args ...string) activation {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), framework.Binary(t, "drover"),
		append([]string{"activation", "create", "--kubeconfig", p.Kubeconfig, "-o", "json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var a activation
	require.NoError(t, json.Unmarshal(out, &a), string(out))
	return a
}

func register(t *testing.T, a activation, stateDir string, override ...string) (string, error) {
	t.Helper()
	args := []string{"register", "--server", a.Server, "--ca-cert-hash", a.CACertHash,
		"--activation-id", a.ActivationID, "--activation-code", a.ActivationCode, "--state-dir", stateDir}
	for i := 0; i+1 < len(override); i += 2 {
		for j := range args {
			if args[j] == override[i] {
				args[j+1] = override[i+1]
			}
		}
	}
	return run(t, "drover-agent", args...)
}

func instances(t *testing.T, c client.Client) []ecsv1alpha1.ContainerInstance {
	t.Helper()
	list := &ecsv1alpha1.ContainerInstanceList{}
	require.NoError(t, c.List(t.Context(), list, client.InNamespace("default")))
	return list.Items
}

// TestHostJoinsAsTheREADMESays follows the newcomer path with the real binaries: an activation is
// created with `drover`, a host registers and runs `drover-agent`, and the instance shows connected
// with its capacity and attributes; killing the agent disconnects it and restarting reconnects it.
func TestHostJoinsAsTheREADMESays(t *testing.T) {
	p := framework.StartProcess(t, framework.NewOptions(t))
	c, ctx := p.Client, t.Context()
	require.NoError(t, c.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "stores", Namespace: "default"}}))
	a := createActivation(t, p, "--cluster", "stores", "--attribute", "store=42")
	require.True(t, strings.HasPrefix(a.Command, "drover-agent register --server "+a.Server), a.Command)

	stateDir := filepath.Join(t.TempDir(), "host-1")
	out, err := register(t, a, stateDir)
	require.NoError(t, err, out)
	require.NotContains(t, out, a.ActivationCode, "the agent never prints the code")

	agent := framework.Command(t, "drover-agent", "run", "--state-dir", stateDir, "--heartbeat-interval", "1s")
	require.NoError(t, agent.Start())
	var ci ecsv1alpha1.ContainerInstance
	require.Eventually(t, func() bool {
		list := instances(t, c)
		if len(list) != 1 {
			return false
		}
		ci = list[0]
		return ci.Status.AgentConnected && ci.Status.RegisteredResources != nil && ci.Status.RegisteredResources.CPU > 0
	}, time.Minute, 100*time.Millisecond, "the host shows as a connected container instance")
	require.Equal(t, "stores", ci.Spec.Cluster)
	attrs := map[string]string{}
	for _, at := range append(ci.Status.Attributes, ci.Spec.Attributes...) {
		attrs[at.Name] = at.Value
	}
	require.Equal(t, "linux", attrs["ecs.os-type"])
	require.Equal(t, "42", attrs["store"], "the activation's attributes")
	require.Contains(t, attrs, "ecs.cpu-architecture")
	require.Greater(t, ci.Status.RegisteredResources.Memory, int32(0))

	getCI, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", p.Kubeconfig, "get", "ci").CombinedOutput()
	require.NoError(t, err, string(getCI))
	require.Contains(t, string(getCI), ci.Name)

	// Killing the agent disconnects the instance within the grace period.
	require.NoError(t, agent.Process.Signal(syscall.SIGKILL))
	_ = agent.Wait()
	killed := time.Now()
	require.Eventually(t, func() bool {
		cur := &ecsv1alpha1.ContainerInstance{}
		return c.Get(ctx, client.ObjectKeyFromObject(&ci), cur) == nil && !cur.Status.AgentConnected
	}, time.Minute, 100*time.Millisecond)
	t.Logf("disconnected %s after the agent was killed", time.Since(killed).Round(100*time.Millisecond))

	// Restarting it reconnects the same instance, without registering again.
	again := framework.Command(t, "drover-agent", "run", "--state-dir", stateDir, "--heartbeat-interval", "1s")
	require.NoError(t, again.Start())
	require.Eventually(t, func() bool {
		cur := &ecsv1alpha1.ContainerInstance{}
		return c.Get(ctx, client.ObjectKeyFromObject(&ci), cur) == nil && cur.Status.AgentConnected
	}, time.Minute, 100*time.Millisecond)
	require.Len(t, instances(t, c), 1)
	act := &ecsv1alpha1.Activation{}
	ns, name, _ := strings.Cut(a.ActivationID, "/")
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, act))
	require.EqualValues(t, 1, act.Status.RegistrationsCount)

	// Deregistering locks the host out.
	require.NoError(t, c.Delete(ctx, &ci))
	hostClient := clientFromState(t, p, stateDir)
	require.Eventually(t, func() bool {
		err := hostClient.Get(ctx, client.ObjectKeyFromObject(&ci), &ecsv1alpha1.ContainerInstance{})
		return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err)
	}, 10*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(&ci), &coordinationv1.Lease{}))
	}, 10*time.Second, 100*time.Millisecond, "the deregistered instance's heartbeat Lease is removed")
}

// TestRegistrationRefusals tries each bad registration and checks the agent says so and nothing is created.
func TestRegistrationRefusals(t *testing.T) {
	p := framework.StartProcess(t, framework.NewOptions(t, framework.WithoutControllers()))
	c, ctx := p.Client, t.Context()
	a := createActivation(t, p, "--cluster", "stores", "--registration-limit", "1")
	dir := t.TempDir()

	out, err := register(t, a, filepath.Join(dir, "wrong-hash"), "--ca-cert-hash", "sha256:"+strings.Repeat("0", 64))
	require.Error(t, err)
	require.Contains(t, strings.ToLower(out), "does not match", out)
	require.NotContains(t, out, a.ActivationCode)

	out, err = register(t, a, filepath.Join(dir, "wrong-code"), "--activation-code", "aaaaaaaa-bbbbbbbb-cccccccc-dddddddd")
	require.Error(t, err)
	require.Contains(t, out, "registration refused", out)
	require.Empty(t, instances(t, c), "nothing is created on refusal")

	// An expired activation.
	code, err := registration.NewCode()
	require.NoError(t, err)
	require.NoError(t, c.Create(ctx, &ecsv1alpha1.Activation{
		ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "default"},
		Spec: ecsv1alpha1.ActivationSpec{Cluster: "stores", CodeHash: registration.HashCode(code),
			ExpiresAt: metav1.NewTime(time.Now().Add(-time.Minute)), RegistrationLimit: 5},
	}))
	expired := a
	expired.ActivationID, expired.ActivationCode = "default/old", code
	out, err = register(t, expired, filepath.Join(dir, "expired"))
	require.Error(t, err)
	require.Contains(t, out, "registration refused", out)
	require.Empty(t, instances(t, c))

	// The limit: the first registration succeeds, the second is refused.
	out, err = register(t, a, filepath.Join(dir, "first"))
	require.NoError(t, err, out)
	out, err = register(t, a, filepath.Join(dir, "second"))
	require.Error(t, err)
	require.Contains(t, out, "registration refused", out)
	require.Len(t, instances(t, c), 1)

	// Refusals are recorded on the Activation.
	events := &corev1.EventList{}
	require.NoError(t, c.List(ctx, events, client.InNamespace("default")))
	refused := 0
	for _, e := range events.Items {
		if e.Reason == registration.ReasonRegistrationRefused {
			refused++
			require.NotContains(t, e.Message, a.ActivationCode)
		}
	}
	require.GreaterOrEqual(t, refused, 2)
}

// clientFromState builds a client with the identity a registered host keeps in its state dir.
func clientFromState(t *testing.T, p *framework.Process, stateDir string) client.Client {
	t.Helper()
	cfg := &rest.Config{Host: p.URL, TLSClientConfig: rest.TLSClientConfig{
		CAFile: filepath.Join(stateDir, "ca.pem"), CertFile: filepath.Join(stateDir, "cert.pem"), KeyFile: filepath.Join(stateDir, "key.pem"),
	}}
	c, err := client.New(cfg, client.Options{Scheme: manager.Scheme})
	require.NoError(t, err)
	return c
}
