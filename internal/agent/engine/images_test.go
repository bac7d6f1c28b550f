package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	rt "github.com/drover-dev/drover/internal/agent/runtime"
	"github.com/drover-dev/drover/test/framework"
)

// The pull behaviours, each on an engine of its own over the real Docker Engine, pulling from a
// registry of its own on 127.0.0.1 whose manifest requests tell whether a pull happened. A stopped
// registry is a registry that is down: a task starts there only without a pull.
func TestPullBehaviors(t *testing.T) {
	image := framework.TestImage(t) // skips without a Docker Engine

	t.Run("always pulls for every task and fails the task when the pull fails", func(t *testing.T) {
		t.Parallel()
		reg := framework.StartRegistry(t, framework.RegistryOptions{})
		ref := push(t, reg, image, "drover/always:1")
		e := dockerEngine(t, PullAlways)

		before := reg.Pulls()
		task := startTask(t, e, ref)
		require.Equal(t, ecsv1alpha1.TaskStateRunning, task.Status.LastStatus, "%+v", task.Status)
		require.Greater(t, reg.Pulls(), before, "the first task pulls")
		assert.True(t, strings.HasPrefix(task.Status.Containers[0].ImageDigest, "sha256:"), "the pulled digest is reported")

		before = reg.Pulls()
		task = startTask(t, e, ref)
		require.Equal(t, ecsv1alpha1.TaskStateRunning, task.Status.LastStatus, "%+v", task.Status)
		require.Greater(t, reg.Pulls(), before, "the next task pulls again, with the image cached and just pulled")

		reg.Stop()
		task = startTask(t, e, ref)
		require.Equal(t, ecsv1alpha1.TaskStateStopped, task.Status.LastStatus, "the cached image is not used")
		assert.Equal(t, ecsv1alpha1.StopCodeTaskFailedToStart, task.Status.StopCode)
		assert.True(t, strings.HasPrefix(task.Status.StoppedReason, "CannotPullContainerError: pulling "+ref+": "), task.Status.StoppedReason)
	})

	t.Run("once pulls only the first time", func(t *testing.T) {
		t.Parallel()
		reg := framework.StartRegistry(t, framework.RegistryOptions{})
		ref := push(t, reg, image, "drover/once:1")
		e := dockerEngine(t, PullOnce)

		before := reg.Pulls()
		task := startTask(t, e, ref)
		require.Equal(t, ecsv1alpha1.TaskStateRunning, task.Status.LastStatus, "%+v", task.Status)
		require.Greater(t, reg.Pulls(), before, "the first task pulls")

		pulledLongAgo(t, e)
		before = reg.Pulls()
		task = startTask(t, e, ref)
		require.Equal(t, ecsv1alpha1.TaskStateRunning, task.Status.LastStatus, "%+v", task.Status)
		require.Equal(t, before, reg.Pulls(), "an image this agent pulled before is not pulled again")

		reg.Stop()
		task = startTask(t, e, ref)
		require.Equal(t, ecsv1alpha1.TaskStateRunning, task.Status.LastStatus, "the registry is not asked: %+v", task.Status)
	})

	t.Run("prefer-cached pulls only images not on the host", func(t *testing.T) {
		t.Parallel()
		reg := framework.StartRegistry(t, framework.RegistryOptions{})
		cachedRef := push(t, reg, image, "drover/prefer-cached:cached")
		tag(t, image, cachedRef) // on the host, and never pulled by the agent
		ref := push(t, reg, image, "drover/prefer-cached:1")
		e := dockerEngine(t, PullPreferCached)

		before := reg.Pulls()
		task := startTask(t, e, cachedRef)
		require.Equal(t, ecsv1alpha1.TaskStateRunning, task.Status.LastStatus, "%+v", task.Status)
		require.Equal(t, before, reg.Pulls(), "the cached image is used without a pull")

		task = startTask(t, e, ref)
		require.Equal(t, ecsv1alpha1.TaskStateRunning, task.Status.LastStatus, "%+v", task.Status)
		require.Greater(t, reg.Pulls(), before, "an image not on the host is pulled")
	})

	t.Run("default pulls and falls back to the cached image when the registry is down", func(t *testing.T) {
		t.Parallel()
		reg := framework.StartRegistry(t, framework.RegistryOptions{})
		ref := push(t, reg, image, "drover/default:1")
		neverPulled := push(t, reg, image, "drover/default:never-pulled")
		e := dockerEngine(t, PullDefault)

		before := reg.Pulls()
		task := startTask(t, e, ref)
		require.Equal(t, ecsv1alpha1.TaskStateRunning, task.Status.LastStatus, "%+v", task.Status)
		require.Greater(t, reg.Pulls(), before, "the first task pulls")

		pulledLongAgo(t, e)
		before = reg.Pulls()
		task = startTask(t, e, ref)
		require.Equal(t, ecsv1alpha1.TaskStateRunning, task.Status.LastStatus, "%+v", task.Status)
		require.Greater(t, reg.Pulls(), before, "a cached image is pulled again")

		reg.Stop()
		pulledLongAgo(t, e)
		task = startTask(t, e, ref)
		require.Equal(t, ecsv1alpha1.TaskStateRunning, task.Status.LastStatus, "the cached image runs when the pull fails: %+v", task.Status)

		task = startTask(t, e, neverPulled)
		require.Equal(t, ecsv1alpha1.TaskStateStopped, task.Status.LastStatus, "no pull and no cached image")
		assert.Equal(t, ecsv1alpha1.StopCodeTaskFailedToStart, task.Status.StopCode)
		assert.True(t, strings.HasPrefix(task.Status.StoppedReason, "CannotPullContainerError: pulling "+neverPulled+": "), task.Status.StoppedReason)
	})

	t.Run("a missing image fails the task with the registry's reason", func(t *testing.T) {
		t.Parallel()
		reg := framework.StartRegistry(t, framework.RegistryOptions{})
		e := dockerEngine(t, PullDefault)
		ref := reg.Host + "/drover/nothing:here"

		task := startTask(t, e, ref)
		require.Equal(t, ecsv1alpha1.TaskStateStopped, task.Status.LastStatus)
		assert.Equal(t, ecsv1alpha1.StopCodeTaskFailedToStart, task.Status.StopCode)
		assert.True(t, strings.HasPrefix(task.Status.StoppedReason, "CannotPullContainerError: pulling "+ref+": "), task.Status.StoppedReason)
		assert.Contains(t, task.Status.StoppedReason, "not found", "Docker's word for an image the registry does not have")
	})
}

// dockerEngine returns an engine over the real Docker Engine with the pull behaviour and its state
// in a temporary directory. Its container instance is its own, so that its containers are told
// apart from any others; they are removed when the test ends. It does not run: startTask makes
// the passes its workers would.
func dockerEngine(t *testing.T, pull PullBehavior) *Engine {
	t.Helper()
	docker := framework.DockerClient(t)
	d, err := rt.NewDocker()
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	e, err := New(Config{Namespace: "default", ContainerInstance: "pull-" + randomHex(t, 4), Cluster: "edge",
		Runtime: d, StateDir: t.TempDir(), PullBehavior: pull, PullTimeout: time.Minute})
	require.NoError(t, err)
	t.Cleanup(func() {
		e.queue.ShutDown()
		e.reports.ShutDown()
		_ = e.store.close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		f := client.Filters{}
		for k, v := range e.ownLabels() {
			f = f.Add("label", k+"="+v)
		}
		list, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			t.Logf("listing the test's containers to remove them: %v", err)
			return
		}
		for _, c := range list.Items {
			if _, err := docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				t.Logf("removing container %s: %v", c.ID, err)
			}
		}
	})
	return e
}

// startTask binds a new one-container task of image to the engine's instance and makes passes over
// it until it is RUNNING or STOPPED, and returns it as the engine recorded it.
func startTask(t *testing.T, e *Engine, image string) *ecsv1alpha1.Task {
	t.Helper()
	uid := randomHex(t, 16)
	e.mu.Lock()
	e.api[uid] = &ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pull-" + uid[:8], UID: types.UID(uid)},
		Spec: ecsv1alpha1.TaskSpec{Cluster: e.cfg.Cluster, ContainerInstance: e.cfg.ContainerInstance,
			DesiredStatus: ecsv1alpha1.TaskDesiredRunning,
			Containers:    []ecsv1alpha1.ContainerDefinition{{Name: "app", Image: image, Memory: ptr.To[int32](32)}}},
	}
	e.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := e.syncTask(t.Context(), uid)
		rec, gerr := e.store.getTask(uid)
		require.NoError(t, gerr)
		if rec != nil {
			switch rec.Task.Status.LastStatus {
			case ecsv1alpha1.TaskStateRunning, ecsv1alpha1.TaskStateStopped:
				return &rec.Task
			}
		}
		if time.Now().After(deadline) {
			status := "no record"
			if rec != nil {
				status = string(rec.Task.Status.LastStatus)
			}
			t.Fatalf("task of %s is neither RUNNING nor STOPPED after 2m: %s, last error %v", image, status, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pulledLongAgo moves the engine's records of its pulls an hour back. A task that starts within
// sharedPullWindow of a pull of its image uses that pull whatever the pull behaviour; this lets
// the next task see the behaviour itself.
func pulledLongAgo(t *testing.T, e *Engine) {
	t.Helper()
	imgs, err := e.store.images()
	require.NoError(t, err)
	require.NotEmpty(t, imgs, "the engine recorded its pulls")
	for ref, r := range imgs {
		r.PulledAt = r.PulledAt.Add(-time.Hour)
		require.NoError(t, e.store.putImage(ref, r))
	}
}

// push pushes image to reg as repoTag and returns its reference there; the engine does not have
// that reference until something pulls or tags it. The reference is removed from the engine when
// the test ends.
func push(t *testing.T, reg *framework.Registry, image, repoTag string) string {
	t.Helper()
	ref := reg.Push(t, image, repoTag)
	untagAtEnd(t, ref)
	return ref
}

// tag gives image the reference ref on the Docker Engine until the test ends.
func tag(t *testing.T, image, ref string) {
	t.Helper()
	docker := framework.DockerClient(t)
	_, err := docker.ImageTag(t.Context(), client.ImageTagOptions{Source: image, Target: ref})
	require.NoError(t, err)
	untagAtEnd(t, ref)
}

// untagAtEnd removes ref from the Docker Engine when the test ends. It only removes the
// reference: the image stays under its other references.
func untagAtEnd(t *testing.T, ref string) {
	docker := framework.DockerClient(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := docker.ImageRemove(ctx, ref, client.ImageRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Logf("removing the image reference %s: %v", ref, err)
		}
	})
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
