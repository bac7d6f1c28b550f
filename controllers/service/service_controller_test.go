package service_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/controllers/service"
	"github.com/drover-dev/drover/test/framework"
)

const ns = "default"

func newTaskDefinition(name string) *ecsv1alpha1.TaskDefinition {
	return &ecsv1alpha1.TaskDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
			Name: "app", Image: "example.com/" + name + ":1", CPU: 256, Memory: ptr.To[int32](256),
		}}},
	}
}

func newService(name, td string, desired int32) *ecsv1alpha1.Service {
	return &ecsv1alpha1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       ecsv1alpha1.ServiceSpec{Cluster: "stores", TaskDefinition: td, DesiredCount: ptr.To(desired)},
	}
}

// serviceTasks returns the service's tasks that should run and have not stopped.
func activeTasks(t *testing.T, c client.Client, svc string) []ecsv1alpha1.Task {
	t.Helper()
	list := &ecsv1alpha1.TaskList{}
	require.NoError(t, c.List(t.Context(), list, client.InNamespace(ns), client.MatchingLabels{ecsv1alpha1.LabelService: svc}))
	var out []ecsv1alpha1.Task
	for _, task := range list.Items {
		if task.Spec.DesiredStatus != ecsv1alpha1.TaskDesiredStopped && task.Status.LastStatus != ecsv1alpha1.TaskStateStopped {
			out = append(out, task)
		}
	}
	return out
}

// waitRunning waits until the service has exactly n active tasks, all RUNNING on an instance, and
// reports a steady state.
func waitRunning(t *testing.T, c client.Client, svc string, n int) []ecsv1alpha1.Task {
	t.Helper()
	var last string
	require.Eventually(t, func() bool {
		tasks := activeTasks(t, c, svc)
		running := 0
		for _, task := range tasks {
			if task.Status.LastStatus == ecsv1alpha1.TaskStateRunning && task.Spec.ContainerInstance != "" {
				running++
			}
		}
		s := &ecsv1alpha1.Service{}
		require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: svc}, s))
		last = fmt.Sprintf("%d active, %d running; status %+v", len(tasks), running, s.Status)
		return len(tasks) == n && running == n && s.Status.RunningCount == int32(n) &&
			meta.IsStatusConditionTrue(s.Status.Conditions, ecsv1alpha1.ServiceConditionSteadyState)
	}, time.Minute, 50*time.Millisecond, "service %s reaches %d running tasks", svc, n)
	_ = last
	return activeTasks(t, c, svc)
}

func TestReplicaServiceKeepsDesiredCount(t *testing.T) {
	s := framework.Start(t)
	c, ctx := s.Client, t.Context()
	require.NoError(t, c.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "stores", Namespace: ns}}))
	agents := framework.StartSimulatedAgents(t, c, ns, "stores",
		framework.SimulatedInstance{Name: "store-1", CPU: 4096, Memory: 4096},
		framework.SimulatedInstance{Name: "store-2", CPU: 4096, Memory: 4096},
		framework.SimulatedInstance{Name: "store-3", CPU: 4096, Memory: 4096})
	require.NoError(t, c.Create(ctx, newTaskDefinition("web")))
	svc := newService("web", "web", 6)
	require.NoError(t, c.Create(ctx, svc))
	tasks := waitRunning(t, c, "web", 6)
	for _, task := range tasks {
		require.Equal(t, "web-1", task.Spec.TaskDefinitionRevision)
		require.Equal(t, "service:web", task.Spec.Group)
		require.NotEmpty(t, task.Spec.Containers, "service tasks are created resolved")
	}

	scale := func(n int32) {
		t.Helper()
		cur := &ecsv1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name}}
		require.NoError(t, framework.Modify(ctx, c, cur, func(cur *ecsv1alpha1.Service) { cur.Spec.DesiredCount = ptr.To(n) }))
	}
	scale(9)
	waitRunning(t, c, "web", 9)
	scale(2)
	tasks = waitRunning(t, c, "web", 2)

	// A task that stops on its host is replaced.
	agents.StopTask(t, tasks[0].Name)
	after := waitRunning(t, c, "web", 2)
	names := []string{after[0].Name, after[1].Name}
	require.NotContains(t, names, tasks[0].Name)

	// The steady state is announced as ECS words it.
	require.Eventually(t, func() bool {
		return hasEvent(t, c, "web", "(service web) has reached a steady state.")
	}, 30*time.Second, 100*time.Millisecond)

	// Deleting the service stops its tasks.
	require.NoError(t, c.Delete(ctx, svc))
	require.Eventually(t, func() bool { return len(activeTasks(t, c, "web")) == 0 }, 30*time.Second, 50*time.Millisecond)
}

// TestNoDuplicatesFromStaleCache runs 20 reconciles at once, each reading from a cache that never
// sees a task; the server ends with exactly desiredCount tasks.
func TestNoDuplicatesFromStaleCache(t *testing.T) {
	s := framework.Start(t, framework.WithoutControllers())
	c, ctx := s.Client, t.Context()
	td := newTaskDefinition("api")
	require.NoError(t, c.Create(ctx, td))
	// No controllers act on these objects except the reconciler under test, so make the revision by hand.
	require.NoError(t, c.Create(ctx, &ecsv1alpha1.TaskDefinitionRevision{
		ObjectMeta: metav1.ObjectMeta{Name: "api-1", Namespace: ns},
		Spec:       ecsv1alpha1.TaskDefinitionRevisionSpec{Family: "api", Revision: 1, TaskDefinition: td.Spec},
	}))
	svc := newService("api", "api:1", 5)
	require.NoError(t, c.Create(ctx, svc))

	stale := &frozenTasks{Client: c}
	r := &service.Reconciler{Client: stale, Recorder: record.NewFakeRecorder(1000)}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(svc)})
		}()
	}
	wg.Wait()
	list := &ecsv1alpha1.TaskList{}
	require.NoError(t, c.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{ecsv1alpha1.LabelService: "api"}))
	var names []string
	for _, task := range list.Items {
		names = append(names, task.Name)
	}
	sort.Strings(names)
	require.Equal(t, []string{"api-1-0-0", "api-1-1-0", "api-1-2-0", "api-1-3-0", "api-1-4-0"}, names)
}

// frozenTasks is a client whose task reads always come back empty, as from a cache that has not
// caught up with any create; every other call goes to the server.
type frozenTasks struct{ client.Client }

func (f *frozenTasks) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*ecsv1alpha1.TaskList); ok {
		return nil
	}
	return f.Client.List(ctx, list, opts...)
}

func hasEvent(t *testing.T, c client.Client, svc, message string) bool {
	events := &corev1.EventList{}
	require.NoError(t, c.List(t.Context(), events, client.InNamespace(ns)))
	for _, e := range events.Items {
		if e.InvolvedObject.Kind == "Service" && e.InvolvedObject.Name == svc && e.Message == message {
			return true
		}
	}
	return false
}

// hasEventContaining tells whether an Event of the service has the reason and a message containing part.
func hasEventContaining(t *testing.T, c client.Client, svc, reason, part string) bool {
	events := &corev1.EventList{}
	require.NoError(t, c.List(t.Context(), events, client.InNamespace(ns)))
	for _, e := range events.Items {
		if e.InvolvedObject.Kind == "Service" && e.InvolvedObject.Name == svc && e.Reason == reason && strings.Contains(e.Message, part) {
			return true
		}
	}
	return false
}
