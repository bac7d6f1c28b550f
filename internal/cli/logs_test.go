package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/apiserver"
	"github.com/drover-dev/drover/internal/apiserver/auth"
	"github.com/drover-dev/drover/internal/identity"
	"github.com/drover-dev/drover/internal/pki"
	"github.com/drover-dev/drover/internal/tunnel/wire"
	"github.com/drover-dev/drover/test/framework"
)

// fakeAgent holds an instance's tunnel open, as drover-agent does, and answers log requests with
// canned output. It records the requests it was sent.
type fakeAgent struct {
	conn net.Conn
	mu   sync.Mutex
	reqs []wire.LogsRequest
}

// openTunnel dials the tunnel of instance ns/name with cert and serves it until the test ends.
func openTunnel(t *testing.T, server string, ca *pki.CA, cert *pki.KeyPair, ns, name string) *fakeAgent {
	t.Helper()
	tc, err := rest.TLSConfigFor(&rest.Config{Host: server, TLSClientConfig: rest.TLSClientConfig{CAData: ca.CertPEM, CertData: cert.CertPEM, KeyData: cert.KeyPEM}})
	require.NoError(t, err)
	c, err := wire.Dial(t.Context(), wire.DialOptions{Server: server, TLSConfig: tc, Namespace: ns, Name: name})
	require.NoError(t, err)
	a := &fakeAgent{conn: c}
	t.Cleanup(func() { _ = c.Close() })
	go (&http2.Server{}).ServeConn(c, &http2.ServeConnOpts{Handler: http.HandlerFunc(a.serve)})
	return a
}

func (a *fakeAgent) serve(w http.ResponseWriter, r *http.Request) {
	req, err := wire.ParseLogsRequest(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.reqs = append(a.reqs, req)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "hello from %s\n", req.Container)
	if !req.Follow {
		fmt.Fprintf(w, "bye from %s\n", req.Container)
		return
	}
	_ = http.NewResponseController(w).Flush()
	<-r.Context().Done()
}

func (a *fakeAgent) last() wire.LogsRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.reqs) == 0 {
		return wire.LogsRequest{}
	}
	return a.reqs[len(a.reqs)-1]
}

func TestLogs(t *testing.T) {
	d := framework.Start(t, framework.WithoutControllers())
	ctx := t.Context()
	ca, err := pki.LoadOrCreateCA(filepath.Join(d.DataDir, "pki"), "drover-ca")
	require.NoError(t, err)
	ci := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "host-1"},
		Spec: ecsv1alpha1.ContainerInstanceSpec{Cluster: "stores"}}
	require.NoError(t, d.Client.Create(ctx, ci))
	in := identity.Instance{Namespace: ci.Namespace, Name: ci.Name, UID: string(ci.UID)}
	cert, err := ca.IssueClient(in.User(), in.Groups(), time.Hour)
	require.NoError(t, err)
	task := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1"},
		Spec: ecsv1alpha1.TaskSpec{Cluster: "stores", TaskDefinition: "web:1", ContainerInstance: "host-1",
			Containers: []ecsv1alpha1.ContainerDefinition{{Name: "app", Image: "web:1"}}}}
	require.NoError(t, d.Client.Create(ctx, task))

	agent := openTunnel(t, d.URL, ca, cert, "default", "host-1")

	t.Run("prints the container's output", func(t *testing.T) {
		var stdout string
		require.Eventually(t, func() bool {
			var err error
			stdout, _, err = run(t, "--kubeconfig", d.Kubeconfig, "logs", "web-1")
			return err == nil
		}, 10*time.Second, 50*time.Millisecond, "the tunnel is registered")
		assert.Equal(t, "hello from app\nbye from app\n", stdout)
		assert.Equal(t, wire.LogsRequest{Namespace: "default", Task: "web-1", UID: string(task.UID), Container: "app"}, agent.last())
	})

	t.Run("passes the flags on", func(t *testing.T) {
		stdout, stderr, err := run(t, "--kubeconfig", d.Kubeconfig, "-n", "default", "logs", "web-1", "-c", "app", "--tail", "5", "--timestamps")
		require.NoError(t, err, stderr)
		assert.Equal(t, "hello from app\nbye from app\n", stdout)
		assert.Equal(t, wire.LogsRequest{Namespace: "default", Task: "web-1", UID: string(task.UID), Container: "app", Tail: 5, Timestamps: true}, agent.last())
	})

	t.Run("follows until interrupted", func(t *testing.T) {
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var stdout framework.SyncBuffer
		done := make(chan error, 1)
		go func() {
			done <- Run(fctx, []string{"--kubeconfig", d.Kubeconfig, "logs", "web-1", "-f"}, &stdout, io.Discard)
		}()
		require.Eventually(t, func() bool { return stdout.String() == "hello from app\n" }, 10*time.Second, 20*time.Millisecond,
			"followed output arrives before the stream ends")
		assert.True(t, agent.last().Follow)
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "an interrupted follow is not an error")
		case <-time.After(10 * time.Second):
			t.Fatal("drover logs -f did not return after it was interrupted")
		}
	})

	t.Run("viewers too", func(t *testing.T) {
		kc := filepath.Join(t.TempDir(), "viewer.kubeconfig")
		require.NoError(t, apiserver.WriteKubeconfig(d.DataDir, d.URL, kc, "vera", []string{auth.GroupViewers}))
		stdout, stderr, err := run(t, "--kubeconfig", kc, "logs", "web-1")
		require.NoError(t, err, stderr)
		assert.Equal(t, "hello from app\nbye from app\n", stdout)
	})

	t.Run("errors are the server's messages", func(t *testing.T) {
		_, _, err := run(t, "--kubeconfig", d.Kubeconfig, "logs", "missing")
		require.EqualError(t, err, `tasks.ecs.drover.dev "missing" not found`)
		_, _, err = run(t, "--kubeconfig", d.Kubeconfig, "logs", "web-1", "-c", "nope")
		require.EqualError(t, err, `task web-1 has no container "nope"; its containers are: app`)
		_, _, err = run(t, "--kubeconfig", d.Kubeconfig, "logs", "web-1", "--tail", "0")
		require.ErrorContains(t, err, "--tail 0 is out of range")
		_, _, err = run(t, "--kubeconfig", d.Kubeconfig, "logs")
		require.Error(t, err, "the task is required")
	})

	t.Run("a disconnected agent", func(t *testing.T) {
		require.NoError(t, agent.conn.Close())
		var err error
		require.Eventually(t, func() bool {
			_, _, err = run(t, "--kubeconfig", d.Kubeconfig, "logs", "web-1")
			return err != nil && strings.Contains(err.Error(), "not connected")
		}, 10*time.Second, 50*time.Millisecond)
		assert.EqualError(t, err, "the agent of instance host-1 is not connected (its logs travel over a connection the agent opens); check that drover-agent runs on the host and reaches droverd")
	})
}
