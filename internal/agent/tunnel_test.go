package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/agent/engine"
	rt "github.com/drover-dev/drover/internal/agent/runtime"
	"github.com/drover-dev/drover/internal/apiserver/auth"
	"github.com/drover-dev/drover/internal/identity"
	"github.com/drover-dev/drover/internal/pki"
	"github.com/drover-dev/drover/internal/tunnel/wire"
	"github.com/drover-dev/drover/test/framework"
)

// testInstance is a registered container instance, as registration would have set it up.
type testInstance struct {
	ci   *ecsv1alpha1.ContainerInstance
	cert *pki.KeyPair
	ca   *pki.CA
}

// registerInstance creates a ContainerInstance with its Lease and issues its certificate.
func registerInstance(t *testing.T, srv *framework.Server, namespace, name string) *testInstance {
	t.Helper()
	ctx := t.Context()
	ci := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: ecsv1alpha1.ContainerInstanceSpec{Cluster: "prod"}}
	require.NoError(t, srv.Client.Create(ctx, ci))
	require.NoError(t, srv.Client.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}))
	ca, err := pki.LoadOrCreateCA(filepath.Join(srv.DataDir, "pki"), "")
	require.NoError(t, err)
	in := identity.Instance{Namespace: namespace, Name: name, UID: string(ci.UID)}
	kp, err := ca.IssueClient(in.User(), in.Groups(), time.Hour)
	require.NoError(t, err)
	return &testInstance{ci: ci, cert: kp, ca: ca}
}

// stateDir writes the instance's identity into a new state directory for an agent.
func (i *testInstance) stateDir(t *testing.T, server string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, stateDir(dir).save(&Identity{
		Config: Config{Server: server, Namespace: i.ci.Namespace, ContainerInstance: i.ci.Name, Cluster: "prod"},
		CAPEM:  i.ca.CertPEM, CertPEM: i.cert.CertPEM, KeyPEM: i.cert.KeyPEM,
	}))
	return dir
}

// restConfig authenticates as the instance.
func (i *testInstance) restConfig(server string) *rest.Config {
	return &rest.Config{Host: server, TLSClientConfig: rest.TLSClientConfig{CAData: i.ca.CertPEM, CertData: i.cert.CertPEM, KeyData: i.cert.KeyPEM}}
}

// userConfig authenticates as a user with the given groups.
func userConfig(t *testing.T, srv *framework.Server, user string, groups ...string) *rest.Config {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(filepath.Join(srv.DataDir, "pki"), "")
	require.NoError(t, err)
	kp, err := ca.IssueClient(user, groups, time.Hour)
	require.NoError(t, err)
	return &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca.CertPEM, CertData: kp.CertPEM, KeyData: kp.KeyPEM}}
}

// logsResponse is an answer of the task log endpoint: the text, or the Status message of an error.
type logsResponse struct {
	code int
	body string
}

// getLogs reads the log endpoint of task default/name as cfg's user.
func getLogs(t *testing.T, cfg *rest.Config, name string, params url.Values) logsResponse {
	t.Helper()
	resp := openLogs(t, t.Context(), cfg, name, params)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := logsResponse{code: resp.StatusCode, body: string(body)}
	if resp.StatusCode != http.StatusOK {
		var st metav1.Status
		require.NoError(t, json.Unmarshal(body, &st), "an error is a Status: %s", body)
		out.body = st.Message
	}
	return out
}

func openLogs(t *testing.T, ctx context.Context, cfg *rest.Config, name string, params url.Values) *http.Response {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+wire.TaskLogPath("default", name)+"?"+params.Encode(), nil)
	require.NoError(t, err)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	return resp
}

var tickLine = regexp.MustCompile(`^tick (\d+)$`)

// lastTick is the number of the last "tick N" line of s, or 0.
func lastTick(s string) int {
	last := 0
	for _, l := range strings.Split(s, "\n") {
		if m := tickLine.FindStringSubmatch(l); m != nil {
			last, _ = strconv.Atoi(m[1])
		}
	}
	return last
}

// TestTaskLogsTravelOverTheTunnel runs droverd and a real agent whose task runs on the real Docker
// Engine, and reads the task's logs through droverd's log endpoint, as admin, viewer and another
// instance; then replaces, and finally loses, the agent's tunnel.
func TestTaskLogsTravelOverTheTunnel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts droverd and runs containers")
	}
	image := framework.TestImage(t)
	docker := framework.DockerClient(t)
	srv := framework.Start(t, framework.WithoutControllers())
	ctx := t.Context()
	const ns = "default"
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := "logs-" + hex.EncodeToString(suffix)
	host := registerInstance(t, srv, ns, name)
	other := registerInstance(t, srv, ns, name+"-other")

	// Containers of this test's instance are removed when it ends, after the agent stopped.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		list, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true,
			Filters: client.Filters{}.Add("label", engine.LabelContainerInstance+"="+ns+"/"+name)})
		if err != nil {
			t.Logf("listing the test's containers: %v", err)
			return
		}
		for _, c := range list.Items {
			_, _ = docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		}
	})

	task := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: ecsv1alpha1.TaskSpec{Cluster: "prod", TaskDefinition: "web:1", TaskDefinitionRevision: "web-1", ContainerInstance: name,
			Containers: []ecsv1alpha1.ContainerDefinition{
				{Name: "app", Image: image, Command: []string{"ticker", "app"}},
				{Name: "sidecar", Image: image, Command: []string{"ticker", "sidecar"}},
			}}}
	require.NoError(t, srv.Client.Create(ctx, task))
	require.NoError(t, srv.Client.Create(ctx, &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unplaced"},
		Spec: ecsv1alpha1.TaskSpec{Cluster: "prod", TaskDefinition: "web:1"}}))

	o := NewRunOptions()
	o.StateDir = host.stateDir(t, srv.URL)
	o.HeartbeatInterval = time.Second
	o.MeminfoPath = "testdata/meminfo"
	o.ImagePullBehavior = string(engine.PullPreferCached)
	o.StopTimeout = 2 * time.Second
	runCtx, stopAgent := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, *o) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		stopAgent()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	}
	t.Cleanup(stop)

	require.Eventually(t, func() bool {
		require.NoError(t, srv.Client.Get(ctx, ctrlclient.ObjectKeyFromObject(task), task))
		return task.Status.LastStatus == ecsv1alpha1.TaskStateRunning
	}, time.Minute, 100*time.Millisecond, "the agent runs the task")

	admin := srv.Config
	app := url.Values{"container": {"app"}}
	var got logsResponse
	require.Eventually(t, func() bool {
		got = getLogs(t, admin, "web", app)
		return got.code == http.StatusOK && lastTick(got.body) >= 2
	}, 30*time.Second, 100*time.Millisecond, "the logs arrive over the agent's tunnel: %+v", &got)

	t.Run("stdout and stderr as lines", func(t *testing.T) {
		got := getLogs(t, admin, "web", app)
		require.Equal(t, http.StatusOK, got.code, got.body)
		lines := strings.Split(strings.TrimSuffix(got.body, "\n"), "\n")
		require.GreaterOrEqual(t, len(lines), 3)
		// The Docker Engine orders lines across stdout and stderr only as well as it reads them;
		// the program leaves 100ms between its streams.
		assert.ElementsMatch(t, []string{"hello from app on stdout", "hello from app on stderr"}, lines[:2], got.body)
		assert.Equal(t, "tick 1", lines[2])
		assert.NotContains(t, got.body, "sidecar", "only the chosen container's output")

		var sidecar logsResponse
		require.Eventually(t, func() bool {
			sidecar = getLogs(t, admin, "web", url.Values{"container": {"sidecar"}})
			return sidecar.code == http.StatusOK && strings.Contains(sidecar.body, "hello from sidecar on stdout\n") &&
				strings.Contains(sidecar.body, "hello from sidecar on stderr\n")
		}, 10*time.Second, 50*time.Millisecond, "the other container's output: %+v", &sidecar)
		assert.NotContains(t, sidecar.body, "from app")
	})

	t.Run("tail and timestamps", func(t *testing.T) {
		got := getLogs(t, admin, "web", url.Values{"container": {"app"}, "tailLines": {"2"}, "timestamps": {"true"}})
		require.Equal(t, http.StatusOK, got.code, got.body)
		lines := strings.Split(strings.TrimSuffix(got.body, "\n"), "\n")
		require.Len(t, lines, 2)
		for _, l := range lines {
			assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z tick \d+$`, l)
		}

		bad := getLogs(t, admin, "web", url.Values{"container": {"app"}, "tailLines": {"0"}})
		assert.Equal(t, http.StatusBadRequest, bad.code)
		assert.Contains(t, bad.body, "tailLines")
	})

	t.Run("follow streams new lines", func(t *testing.T) {
		before := lastTick(getLogs(t, admin, "web", app).body)
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		resp := openLogs(t, fctx, admin, "web", url.Values{"container": {"app"}, "follow": {"true"}, "tailLines": {"1"}})
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		deadline := time.After(20 * time.Second)
		for seen := 0; seen < before+5; {
			select {
			case l, ok := <-lines:
				require.True(t, ok, "the followed stream ended early")
				if m := tickLine.FindStringSubmatch(l); m != nil {
					seen, _ = strconv.Atoi(m[1])
				}
			case <-deadline:
				t.Fatalf("no tick after %d arrived within 20s while following", before+4)
			}
		}
		cancel()
		for range lines { // the stream ends once the client goes away
		}
	})

	t.Run("viewers read logs", func(t *testing.T) {
		got := getLogs(t, userConfig(t, srv, "vera", auth.GroupViewers), "web", app)
		require.Equal(t, http.StatusOK, got.code, got.body)
		assert.Contains(t, got.body, "hello from app on stdout")
	})

	t.Run("instances do not", func(t *testing.T) {
		for who, cfg := range map[string]*rest.Config{"another instance": other.restConfig(srv.URL), "the task's own instance": host.restConfig(srv.URL)} {
			got := getLogs(t, cfg, "web", app)
			assert.Equal(t, http.StatusForbidden, got.code, "%s: %s", who, got.body)
			assert.NotContains(t, got.body, "hello")
		}
	})

	t.Run("choosing the container", func(t *testing.T) {
		got := getLogs(t, admin, "web", nil)
		assert.Equal(t, http.StatusBadRequest, got.code)
		assert.Equal(t, "task web has 2 containers, choose one with container= (drover logs -c NAME): app, sidecar", got.body)
		got = getLogs(t, admin, "web", url.Values{"container": {"nope"}})
		assert.Equal(t, http.StatusBadRequest, got.code)
		assert.Equal(t, `task web has no container "nope"; its containers are: app, sidecar`, got.body)
	})

	t.Run("tasks that have no logs", func(t *testing.T) {
		got := getLogs(t, admin, "unplaced", nil)
		assert.Equal(t, http.StatusBadRequest, got.code)
		assert.Equal(t, "task unplaced is not placed on an instance yet, so it has no logs", got.body)
		got = getLogs(t, admin, "missing", nil)
		assert.Equal(t, http.StatusNotFound, got.code)
		assert.Equal(t, `tasks.ecs.drover.dev "missing" not found`, got.body)
	})

	t.Run("only the instance opens its tunnel", func(t *testing.T) {
		dial := func(cfg *rest.Config) error {
			tc, err := rest.TLSConfigFor(cfg)
			require.NoError(t, err)
			c, err := wire.Dial(ctx, wire.DialOptions{Server: srv.URL, TLSConfig: tc, Namespace: ns, Name: name})
			if err == nil {
				c.Close()
			}
			return err
		}
		for who, cfg := range map[string]*rest.Config{"another instance": other.restConfig(srv.URL), "an admin": admin,
			"a viewer": userConfig(t, srv, "vera", auth.GroupViewers)} {
			err := dial(cfg)
			require.Error(t, err, who)
			assert.Contains(t, err.Error(), "403 Forbidden", who)
		}
		got := getLogs(t, admin, "web", app)
		require.Equal(t, http.StatusOK, got.code, "the agent's tunnel is still the instance's: %s", got.body)
		assert.Contains(t, got.body, "hello from app on stdout")
	})

	t.Run("a new tunnel replaces the old one, and the agent reconnects", func(t *testing.T) {
		tc, err := rest.TLSConfigFor(host.restConfig(srv.URL))
		require.NoError(t, err)
		// droverd prefers HTTP/2; Dial offers only HTTP/1.1 whatever the config says.
		tc.NextProtos = []string{"h2", "http/1.1"}
		c, err := wire.Dial(ctx, wire.DialOptions{Server: srv.URL, TLSConfig: tc, Namespace: ns, Name: name})
		require.NoError(t, err)
		assert.Equal(t, []string{"h2", "http/1.1"}, tc.NextProtos, "Dial leaves the caller's config alone")
		served := make(chan struct{})
		go func() {
			defer close(served)
			(&http2.Server{}).ServeConn(c, &http2.ServeConnOpts{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "from the second tunnel\n")
			})})
		}()
		require.Eventually(t, func() bool {
			return getLogs(t, admin, "web", app).body == "from the second tunnel\n"
		}, 10*time.Second, 20*time.Millisecond, "the newest tunnel serves the instance")
		require.Eventually(t, func() bool {
			return strings.Contains(getLogs(t, admin, "web", app).body, "hello from app on stdout\n")
		}, 20*time.Second, 100*time.Millisecond, "the agent, whose tunnel was replaced, opens a new one")
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Fatal("droverd did not close the replaced tunnel")
		}
	})

	t.Run("a disconnected agent", func(t *testing.T) {
		following := openLogs(t, ctx, admin, "web", url.Values{"container": {"app"}, "follow": {"true"}})
		defer following.Body.Close()
		require.Equal(t, http.StatusOK, following.StatusCode)
		stop()
		_, err := io.ReadAll(following.Body)
		assert.Error(t, err, "a followed stream whose tunnel dropped breaks off instead of ending")
		var got logsResponse
		require.Eventually(t, func() bool {
			got = getLogs(t, admin, "web", app)
			return got.code == http.StatusServiceUnavailable
		}, 10*time.Second, 50*time.Millisecond, "droverd notices the tunnel closed: %+v", &got)
		assert.Equal(t, "the agent of instance "+name+" is not connected (its logs travel over a connection the agent opens); check that drover-agent runs on the host and reaches droverd", got.body)
	})
}

// logsRuntime is a container runtime with one container and its multiplexed output; it records
// the labels it was asked to list by.
type logsRuntime struct {
	rt.Runtime
	containers []rt.Container
	output     []byte
	listedBy   map[string]string
	logOptions rt.LogOptions
}

func (f *logsRuntime) ListContainers(_ context.Context, labels map[string]string) ([]rt.Container, error) {
	f.listedBy = labels
	return f.containers, nil
}

func (f *logsRuntime) ContainerLogs(_ context.Context, id string, opts rt.LogOptions) (io.ReadCloser, error) {
	f.logOptions = opts
	for _, c := range f.containers {
		if c.ID == id {
			return io.NopCloser(bytes.NewReader(f.output)), nil
		}
	}
	return nil, fmt.Errorf("container %s: %w", id, rt.ErrNotFound)
}

// frame writes s as one frame of the Docker Engine's multiplexed stream: a header with the stream
// and the length, then the bytes.
func frame(w *bytes.Buffer, stream stdcopy.StdType, s string) {
	header := make([]byte, 8)
	header[0] = byte(stream)
	binary.BigEndian.PutUint32(header[4:], uint32(len(s)))
	w.Write(header)
	w.WriteString(s)
}

func TestTunnelServesOnlyItsOwnContainersLogs(t *testing.T) {
	var out bytes.Buffer
	frame(&out, stdcopy.Stdout, "one\n")
	frame(&out, stdcopy.Stderr, "two\n")
	frame(&out, stdcopy.Stdout, "three\n")
	fake := &logsRuntime{output: out.Bytes(), containers: []rt.Container{{ID: "c1", State: rt.StateExited}}}
	tun := newTunnel(&conn{cfg: Config{Namespace: "team-a", ContainerInstance: "host-1"}}, fake, time.Second, time.Hour, "v1")
	h := tun.handler(t.Context())
	get := func(q url.Values) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, wire.LogsPath+"?"+q.Encode(), nil))
		return rec
	}
	req := wire.LogsRequest{Namespace: "team-a", Task: "web", UID: "uid-1", Container: "app", Tail: 3, Timestamps: true}

	rec := get(req.Query())
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "one\ntwo\nthree\n", rec.Body.String(), "stdout and stderr interleaved, without the stream headers")
	assert.Equal(t, map[string]string{
		engine.LabelManagedBy: engine.ManagedBy, engine.LabelContainerInstance: "team-a/host-1",
		engine.LabelTask: "team-a/web", engine.LabelTaskUID: "uid-1", engine.LabelContainerName: "app",
	}, fake.listedBy, "only the engine's containers of this instance, task and container")
	assert.Equal(t, rt.LogOptions{Tail: 3, Timestamps: true}, fake.logOptions)

	fake.containers = append(fake.containers, rt.Container{ID: "c2", State: rt.StateRunning})
	fake.output = nil
	rec = get(req.Query())
	assert.Equal(t, http.StatusOK, rec.Code, "the running one of two containers: %s", rec.Body.String())

	fake.containers = nil
	rec = get(req.Query())
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.Equal(t, "container app of task web is not on the host: the agent has not created it yet, or removed it 1h0m0s after the task stopped (drover-agent --task-cleanup-delay)\n", rec.Body.String())

	other := req
	other.Namespace = "team-b"
	rec = get(other.Query())
	assert.Equal(t, http.StatusNotFound, rec.Code, "another namespace's task")

	rec = get(url.Values{"task": {"web"}})
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Contains(t, rec.Body.String(), "lacks namespace, uid, container")
}
