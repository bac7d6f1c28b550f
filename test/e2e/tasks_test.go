package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/agent/engine"
	"github.com/drover-dev/drover/test/framework"
)

// host is a registered host running the real drover-agent binary against the real Docker Engine.
type host struct {
	name, stateDir string
	args           []string
	agent          *exec.Cmd
}

// joinHost registers a host in cluster and starts its agent with extra arguments. The host's
// containers are removed when the test ends.
func joinHost(t *testing.T, p *framework.Process, cluster string, args ...string) *host {
	t.Helper()
	a := createActivation(t, p, "--cluster", cluster)
	h := &host{stateDir: filepath.Join(t.TempDir(), "host"), args: args}
	before := map[string]bool{}
	for _, ci := range instances(t, p.Client) {
		before[ci.Name] = true
	}
	out, err := register(t, a, h.stateDir)
	require.NoError(t, err, out)
	h.start(t)
	require.Eventually(t, func() bool {
		for _, ci := range instances(t, p.Client) {
			if !before[ci.Name] && ci.Status.AgentConnected && ci.Status.RegisteredResources != nil {
				h.name = ci.Name
				return true
			}
		}
		return false
	}, time.Minute, 100*time.Millisecond, "the host joins")
	docker := framework.DockerClient(t)
	t.Cleanup(func() {
		if h.agent.ProcessState == nil {
			_ = h.agent.Process.Signal(syscall.SIGTERM)
			_ = h.agent.Wait()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		list, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true,
			Filters: client.Filters{}.Add("label", engine.LabelContainerInstance+"=default/"+h.name)})
		if err != nil {
			t.Logf("listing the host's containers: %v", err)
			return
		}
		for _, c := range list.Items {
			_, _ = docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		}
	})
	return h
}

func (h *host) start(t *testing.T) {
	t.Helper()
	h.agent = framework.Command(t, "drover-agent", append([]string{"run", "--state-dir", h.stateDir, "--heartbeat-interval", "1s"}, h.args...)...)
	require.NoError(t, h.agent.Start())
}

func (h *host) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, h.agent.Process.Signal(syscall.SIGKILL))
	_ = h.agent.Wait()
}

// runTask registers a one-container task definition and runs a task of it in cluster.
func runTask(t *testing.T, c ctrlclient.Client, cluster, name string, ctr ecsv1alpha1.ContainerDefinition, volumes ...ecsv1alpha1.Volume) *ecsv1alpha1.Task {
	t.Helper()
	ctx := t.Context()
	ctr.Name = "app"
	td := &ecsv1alpha1.TaskDefinition{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{ctr}, Volumes: volumes}}
	require.NoError(t, c.Create(ctx, td))
	task := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: ecsv1alpha1.TaskSpec{Cluster: cluster, TaskDefinition: name}}
	require.Eventually(t, func() bool { return c.Create(ctx, task) == nil }, 30*time.Second, 200*time.Millisecond,
		"the task is created once its definition has a revision")
	return task
}

// waitTask waits until the task satisfies ok and returns it.
func waitTask(t *testing.T, c ctrlclient.Client, name, what string, timeout time.Duration, ok func(*ecsv1alpha1.Task) bool) *ecsv1alpha1.Task {
	t.Helper()
	task := &ecsv1alpha1.Task{}
	require.Eventuallyf(t, func() bool {
		require.NoError(t, c.Get(t.Context(), ctrlclient.ObjectKey{Namespace: "default", Name: name}, task))
		return ok(task)
	}, timeout, 200*time.Millisecond, "task %s: %s; last status %+v", name, what, &task.Status)
	return task
}

func running(t *ecsv1alpha1.Task) bool { return t.Status.LastStatus == ecsv1alpha1.TaskStateRunning }
func stopped(t *ecsv1alpha1.Task) bool { return t.Status.LastStatus == ecsv1alpha1.TaskStateStopped }

func stopTask(t *testing.T, c ctrlclient.Client, task *ecsv1alpha1.Task) {
	t.Helper()
	patch := []byte(`{"spec":{"desiredStatus":"STOPPED"}}`)
	require.NoError(t, c.Patch(t.Context(), task, ctrlclient.RawPatch("application/merge-patch+json", patch)))
}

func httpGet(url string) (int, string, error) {
	cl := &http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func env(kv ...string) []ecsv1alpha1.KeyValuePair {
	var out []ecsv1alpha1.KeyValuePair
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, ecsv1alpha1.KeyValuePair{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// TestTasksRunOnDocker runs standalone tasks of a locally built image through the real droverd,
// drover-agent and Docker Engine: the container serves on its published port with its limits,
// stops on request (with SIGKILL after its own stopTimeout, not the agent's, when SIGTERM is
// ignored), an exiting essential
// container stops its task with its exit code, bad specs fail the task with a reason, and images
// are pulled from registries on 127.0.0.1 with and without credentials.
func TestTasksRunOnDocker(t *testing.T) {
	t.Parallel()
	image := framework.TestImage(t)
	docker := framework.DockerClient(t)
	open := framework.StartRegistry(t, framework.RegistryOptions{})
	private := framework.StartRegistry(t, framework.RegistryOptions{Username: "drover", Password: "s3cret"})
	openRef := open.Push(t, image, "drover/testapp:open")
	privateRef := private.Push(t, image, "drover/testapp:private")
	dockerConfig := filepath.Join(t.TempDir(), "config.json")
	require.NoError(t, os.WriteFile(dockerConfig, fmt.Appendf(nil, `{"auths":{%q:{"auth":%q}}}`, private.Host,
		"ZHJvdmVyOnMzY3JldA=="), 0o600)) // base64("drover:s3cret")

	p := framework.StartProcess(t, framework.NewOptions(t))
	c, ctx := p.Client, t.Context()
	require.NoError(t, c.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "default"}}))
	// The agent's stop timeout is far above the containers' own, so that a stop shows which applied.
	joinHost(t, p, "edge", "--docker-config", dockerConfig, "--stop-timeout", "60s")

	t.Run("serves on its published port with its limits", func(t *testing.T) {
		task := runTask(t, c, "edge", "web", ecsv1alpha1.ContainerDefinition{
			Image: image, CPU: 256, Memory: ptr.To[int32](64), MemoryReservation: ptr.To[int32](32),
			PortMappings: []ecsv1alpha1.PortMapping{{ContainerPort: 8080}},
			Environment:  env("GREETING", "hello"),
			DockerLabels: map[string]string{"team": "edge"},
			StopTimeout:  ptr.To[int32](5),
		})
		task = waitTask(t, c, task.Name, "RUNNING", 2*time.Minute, running)
		require.Len(t, task.Status.Containers, 1)
		cs := task.Status.Containers[0]
		require.Equal(t, ecsv1alpha1.ContainerStateRunning, cs.LastStatus)
		require.NotEmpty(t, cs.RuntimeID)
		require.Len(t, cs.NetworkBindings, 1, "one binding for the one port mapping")
		b := cs.NetworkBindings[0]
		require.EqualValues(t, 8080, b.ContainerPort)
		require.NotZero(t, b.HostPort, "Docker chose a host port")
		require.NotNil(t, task.Status.StartedAt)

		var body string
		require.Eventually(t, func() bool {
			code, out, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", b.HostPort))
			body = out
			return err == nil && code == http.StatusOK
		}, 10*time.Second, 100*time.Millisecond, "the published port answers HTTP")
		require.Contains(t, body, `"GREETING":"hello"`)

		ins, err := docker.ContainerInspect(ctx, cs.RuntimeID, client.ContainerInspectOptions{})
		require.NoError(t, err)
		hc := ins.Container.HostConfig
		require.EqualValues(t, 64<<20, hc.Memory, "memory hard limit")
		require.EqualValues(t, 32<<20, hc.MemoryReservation, "memory reservation")
		require.EqualValues(t, 256, hc.CPUShares, "cpu shares")
		labels := ins.Container.Config.Labels
		require.Equal(t, string(task.UID), labels[engine.LabelTaskUID])
		require.Equal(t, "default/web", labels[engine.LabelTask])
		require.Equal(t, "edge", labels["team"], "the container's dockerLabels")

		stopTask(t, c, task)
		task = waitTask(t, c, task.Name, "STOPPED", time.Minute, stopped)
		require.Equal(t, ecsv1alpha1.StopCodeUserInitiated, task.Status.StopCode)
		require.Equal(t, ecsv1alpha1.ContainerStateStopped, task.Status.Containers[0].LastStatus)
		require.NotNil(t, task.Status.Containers[0].ExitCode)
		require.EqualValues(t, 0, *task.Status.Containers[0].ExitCode, "the app exits cleanly on SIGTERM")
		ins, err = docker.ContainerInspect(ctx, cs.RuntimeID, client.ContainerInspectOptions{})
		require.NoError(t, err, "the stopped container is kept, with its logs, until cleanup")
		require.False(t, ins.Container.State.Running)
	})

	t.Run("SIGKILL after the container's stopTimeout when SIGTERM is ignored", func(t *testing.T) {
		task := runTask(t, c, "edge", "stubborn", ecsv1alpha1.ContainerDefinition{
			Image: image, Memory: ptr.To[int32](32), Environment: env("IGNORE_SIGTERM", "1"), StopTimeout: ptr.To[int32](2),
		})
		waitTask(t, c, task.Name, "RUNNING", 2*time.Minute, running)
		asked := time.Now()
		stopTask(t, c, task)
		// Waits past the agent's 60 s, so that a stop on the wrong timeout fails below, saying so.
		task = waitTask(t, c, task.Name, "STOPPED", 2*time.Minute, stopped)
		took := time.Since(asked)
		require.NotNil(t, task.Status.Containers[0].ExitCode)
		require.EqualValues(t, 137, *task.Status.Containers[0].ExitCode, "killed with SIGKILL")
		st := task.Status
		require.NotNil(t, st.StoppingAt)
		require.NotNil(t, st.StoppedAt)
		assert.GreaterOrEqual(t, st.StoppedAt.Sub(st.StoppingAt.Time), 2*time.Second,
			"SIGKILL came after the container's stopTimeout of 2 s, not at once")
		assert.Less(t, took, 30*time.Second,
			"the container's stopTimeout of 2 s applied, not the agent's --stop-timeout of 60 s")
	})

	t.Run("an exiting essential container stops the task", func(t *testing.T) {
		task := runTask(t, c, "edge", "batch", ecsv1alpha1.ContainerDefinition{
			Image: image, Memory: ptr.To[int32](32), Environment: env("EXIT_AFTER", "1s", "EXIT_CODE", "3"),
		})
		task = waitTask(t, c, task.Name, "STOPPED", 2*time.Minute, stopped)
		require.Equal(t, ecsv1alpha1.StopCodeEssentialContainerExited, task.Status.StopCode)
		require.Equal(t, "Essential container in task exited", task.Status.StoppedReason)
		require.NotNil(t, task.Status.Containers[0].ExitCode)
		require.EqualValues(t, 3, *task.Status.Containers[0].ExitCode)
		require.NotNil(t, task.Status.StoppedAt)
	})

	t.Run("pulls from registries on loopback with and without credentials", func(t *testing.T) {
		pullsBefore := open.Pulls()
		task := runTask(t, c, "edge", "pulled-open", ecsv1alpha1.ContainerDefinition{Image: openRef, Memory: ptr.To[int32](32)})
		task = waitTask(t, c, task.Name, "RUNNING", 2*time.Minute, running)
		require.Greater(t, open.Pulls(), pullsBefore, "the image came from the registry")
		require.True(t, strings.HasPrefix(task.Status.Containers[0].ImageDigest, "sha256:"), "the pulled digest is reported: %q", task.Status.Containers[0].ImageDigest)

		task = runTask(t, c, "edge", "pulled-private", ecsv1alpha1.ContainerDefinition{Image: privateRef, Memory: ptr.To[int32](32)})
		task = waitTask(t, c, task.Name, "RUNNING", 2*time.Minute, running)
		require.True(t, strings.HasPrefix(task.Status.Containers[0].ImageDigest, "sha256:"))
	})

	t.Run("bad specs fail the task with a reason", func(t *testing.T) {
		missing := runTask(t, c, "edge", "missing-image", ecsv1alpha1.ContainerDefinition{Image: open.Host + "/drover/nothing:here", Memory: ptr.To[int32](32)})
		badName := runTask(t, c, "edge", "bad-image-name", ecsv1alpha1.ContainerDefinition{Image: "Not An Image!", Memory: ptr.To[int32](32)})

		l, err := net.Listen("tcp", "0.0.0.0:0")
		require.NoError(t, err)
		defer l.Close()
		port := int32(l.Addr().(*net.TCPAddr).Port)
		inUse := runTask(t, c, "edge", "port-in-use", ecsv1alpha1.ContainerDefinition{Image: image, Memory: ptr.To[int32](32),
			PortMappings: []ecsv1alpha1.PortMapping{{ContainerPort: 8080, HostPort: port}}})

		for _, tc := range []struct {
			task   *ecsv1alpha1.Task
			reason string
		}{
			{missing, "CannotPullContainerError"},
			{badName, "CannotPullContainerError"},
			{inUse, "CannotStartContainerError"},
		} {
			got := waitTask(t, c, tc.task.Name, "STOPPED", 2*time.Minute, stopped)
			assert.Equal(t, ecsv1alpha1.StopCodeTaskFailedToStart, got.Status.StopCode, tc.task.Name)
			assert.Contains(t, got.Status.StoppedReason, tc.reason, tc.task.Name)
			t.Logf("%s: %s", tc.task.Name, got.Status.StoppedReason)
		}
		// The agent is not wedged: a good task still runs.
		ok := runTask(t, c, "edge", "after-bad", ecsv1alpha1.ContainerDefinition{Image: image, Memory: ptr.To[int32](32)})
		waitTask(t, c, ok.Name, "RUNNING", 2*time.Minute, running)
	})
}

// TestAgentRestartAndOutageKeepTasksRunning kills and restarts the agent (the same containers keep
// running, no duplicates), then stops the control plane for over a minute while a container with
// a restartPolicy crashes: the agent restarts it in place, and once the control plane is back the
// task's status shows the restart and nothing that should run was killed.
func TestAgentRestartAndOutageKeepTasksRunning(t *testing.T) {
	t.Parallel() // mostly waits for the container's 62 s
	image := framework.TestImage(t)
	docker := framework.DockerClient(t)
	o := framework.NewOptions(t)
	p := framework.StartProcess(t, o)
	c, ctx := p.Client, t.Context()
	require.NoError(t, c.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "default"}}))
	reg := framework.StartRegistry(t, framework.RegistryOptions{})
	pulledRef := reg.Push(t, image, "drover/collectable:1")
	h := joinHost(t, p, "edge", "--task-cleanup-delay", "3s", "--image-cleanup-interval", "1s", "--image-minimum-age", "1s")

	// The app exits with code 2 after 62 s; the restartPolicy restarts it once it ran 60 s.
	task := runTask(t, c, "edge", "resilient", ecsv1alpha1.ContainerDefinition{
		Image: image, Memory: ptr.To[int32](32), Environment: env("EXIT_AFTER", "62s", "EXIT_CODE", "2"),
		PortMappings:  []ecsv1alpha1.PortMapping{{ContainerPort: 8080}},
		RestartPolicy: &ecsv1alpha1.RestartPolicy{Enabled: true, RestartAttemptPeriod: 60},
	})
	task = waitTask(t, c, task.Name, "RUNNING", 2*time.Minute, running)
	id := task.Status.Containers[0].RuntimeID
	started := inspect(t, docker, id).State.StartedAt

	countContainers := func() int {
		list, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true,
			Filters: client.Filters{}.Add("label", engine.LabelTaskUID+"="+string(task.UID))})
		require.NoError(t, err)
		return len(list.Items)
	}

	// Agent killed and restarted: it adopts the running container.
	h.kill(t)
	h.start(t)
	require.Eventually(t, func() bool {
		ci := &ecsv1alpha1.ContainerInstance{}
		require.NoError(t, c.Get(ctx, ctrlclient.ObjectKey{Namespace: "default", Name: h.name}, ci))
		return ci.Status.AgentConnected
	}, time.Minute, 100*time.Millisecond)
	time.Sleep(3 * time.Second) // a few engine passes after the restart
	require.Equal(t, 1, countContainers(), "no duplicate container after the agent restarted")
	ins := inspect(t, docker, id)
	require.True(t, ins.State.Running, "the container kept running through the agent's restart")
	require.Equal(t, started, ins.State.StartedAt, "and was not restarted")

	// Control plane down while the container crashes.
	require.NoError(t, p.Stop(t, time.Minute))
	require.Eventually(t, func() bool {
		ins := inspect(t, docker, id)
		return ins.State.Running && ins.State.StartedAt != started
	}, 2*time.Minute, 500*time.Millisecond, "the agent restarts the crashed container in place while the control plane is down")
	require.Equal(t, 1, countContainers())

	p = framework.StartProcess(t, o)
	c = p.Client
	task = waitTask(t, c, task.Name, "reports the restart", 2*time.Minute, func(t *ecsv1alpha1.Task) bool {
		return len(t.Status.Containers) == 1 && t.Status.Containers[0].RestartCount == 1
	})
	require.Equal(t, ecsv1alpha1.TaskStateRunning, task.Status.LastStatus)
	require.Equal(t, id, task.Status.Containers[0].RuntimeID, "restarted in place: the same container")
	require.True(t, inspect(t, docker, id).State.Running, "nothing that should run was killed on reconnection")

	// Stopped, the task's container is removed after --task-cleanup-delay.
	stopTask(t, c, task)
	waitTask(t, c, task.Name, "STOPPED", time.Minute, stopped)
	require.Eventually(t, func() bool { return countContainers() == 0 }, time.Minute, 200*time.Millisecond,
		"the stopped task's container is removed after the cleanup delay")

	// An image the agent pulled is removed once no container uses it; the ones it did not pull stay.
	pulled := runTask(t, c, "edge", "pulled", ecsv1alpha1.ContainerDefinition{Image: pulledRef, Memory: ptr.To[int32](32)})
	waitTask(t, c, pulled.Name, "RUNNING", 2*time.Minute, running)
	_, err := docker.ImageInspect(ctx, pulledRef)
	require.NoError(t, err, "the agent pulled the image")
	stopTask(t, c, pulled)
	require.Eventually(t, func() bool {
		_, err := docker.ImageInspect(ctx, pulledRef)
		return cerrdefs.IsNotFound(err)
	}, time.Minute, 200*time.Millisecond, "the unused image the agent pulled is removed")
	_, err = docker.ImageInspect(ctx, image)
	require.NoError(t, err, "an image the agent did not pull is never removed")
}

func inspect(t *testing.T, docker *client.Client, id string) container.InspectResponse {
	t.Helper()
	r, err := docker.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
	require.NoError(t, err)
	return r.Container
}
