package service_test

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/test/framework"
)

// sampler records, while a test changes things, the fewest RUNNING tasks that should run and the
// most tasks that should run, of one service.
type sampler struct {
	mu                   sync.Mutex
	minRunning, maxTotal int
	stop                 chan struct{}
	done                 chan struct{}
}

func sample(t *testing.T, c client.Client, svc string) *sampler {
	s := &sampler{minRunning: 1 << 30, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			list := &ecsv1alpha1.TaskList{}
			if err := c.List(t.Context(), list, client.InNamespace(ns), client.MatchingLabels{ecsv1alpha1.LabelService: svc}); err != nil {
				continue
			}
			running, total := 0, 0
			for _, task := range list.Items {
				if task.Spec.DesiredStatus == ecsv1alpha1.TaskDesiredStopped || task.Status.LastStatus == ecsv1alpha1.TaskStateStopped {
					continue
				}
				total++
				if task.Status.LastStatus == ecsv1alpha1.TaskStateRunning {
					running++
				}
			}
			s.mu.Lock()
			s.minRunning, s.maxTotal = min(s.minRunning, running), max(s.maxTotal, total)
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *sampler) finish() (minRunning, maxTotal int) {
	close(s.stop)
	<-s.done
	return s.minRunning, s.maxTotal
}

func setup(t *testing.T, instances ...framework.SimulatedInstance) (*framework.Server, *framework.SimulatedAgents) {
	t.Helper()
	s := framework.Start(t)
	require.NoError(t, s.Client.Create(t.Context(), &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "stores", Namespace: ns}}))
	agents := framework.StartSimulatedAgents(t, s.Client, ns, "stores", instances...)
	require.NoError(t, s.Client.Create(t.Context(), newTaskDefinition("web")))
	return s, agents
}

func host(name string, attrs ...string) framework.SimulatedInstance {
	in := framework.SimulatedInstance{Name: name, CPU: 8192, Memory: 8192, Attributes: map[string]string{}}
	for i := 0; i+1 < len(attrs); i += 2 {
		in.Attributes[attrs[i]] = attrs[i+1]
	}
	return in
}

func tasksOn(t *testing.T, c client.Client, svc, instance string) []ecsv1alpha1.Task {
	var out []ecsv1alpha1.Task
	for _, task := range activeTasks(t, c, svc) {
		if task.Spec.ContainerInstance == instance {
			out = append(out, task)
		}
	}
	return out
}

func TestDrainingMovesServiceTasksWithinLimits(t *testing.T) {
	s, _ := setup(t, host("a"), host("b"), host("c"))
	c, ctx := s.Client, t.Context()
	require.NoError(t, c.Create(ctx, newService("web", "web", 4)))
	waitRunning(t, c, "web", 4)
	// A standalone task on the instance that will drain.
	standalone := &ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{Name: "batch", Namespace: ns},
		Spec:       ecsv1alpha1.TaskSpec{Cluster: "stores", TaskDefinition: "web", ContainerInstance: "a"},
	}
	require.NoError(t, c.Create(ctx, standalone))
	require.Eventually(t, func() bool {
		return c.Get(ctx, client.ObjectKeyFromObject(standalone), standalone) == nil && standalone.Status.LastStatus == ecsv1alpha1.TaskStateRunning
	}, 30*time.Second, 50*time.Millisecond)
	require.NotEmpty(t, tasksOn(t, c, "web", "a"), "spread over instanceId puts a task on every instance")

	smp := sample(t, c, "web")
	ci := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a"}}
	require.NoError(t, framework.Modify(ctx, c, ci, func(ci *ecsv1alpha1.ContainerInstance) {
		ci.Spec.State = ecsv1alpha1.ContainerInstanceDraining
	}))
	require.Eventually(t, func() bool { return len(tasksOn(t, c, "web", "a")) == 0 }, time.Minute, 50*time.Millisecond,
		"the draining instance ends with no service tasks")
	waitRunning(t, c, "web", 4)
	minRunning, maxTotal := smp.finish()
	require.GreaterOrEqual(t, minRunning, 4, "minimumHealthyPercent 100: never fewer than 4 running")
	require.LessOrEqual(t, maxTotal, 8, "maximumPercent 200: never more than 8 tasks")

	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(standalone), standalone))
	require.Equal(t, ecsv1alpha1.TaskDesiredRunning, standalone.Spec.DesiredStatus, "standalone tasks are left alone")
	require.Equal(t, ecsv1alpha1.TaskStateRunning, standalone.Status.LastStatus)
}

func TestDaemonServiceFollowsInstances(t *testing.T) {
	s, agents := setup(t, host("a", "role", "edge"), host("b", "role", "edge"), host("c", "role", "core"))
	c, ctx := s.Client, t.Context()
	svc := newService("agent", "web", 0)
	svc.Spec.DesiredCount = nil
	svc.Spec.SchedulingStrategy = ecsv1alpha1.SchedulingStrategyDaemon
	svc.Spec.PlacementConstraints = []ecsv1alpha1.PlacementConstraint{{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:role == edge"}}
	require.NoError(t, c.Create(ctx, svc))

	onInstances := func() map[string]int {
		out := map[string]int{}
		for _, task := range activeTasks(t, c, "agent") {
			if task.Status.LastStatus == ecsv1alpha1.TaskStateRunning {
				out[task.Spec.ContainerInstance]++
			}
		}
		return out
	}
	want := func(expected map[string]int, msg string) {
		t.Helper()
		require.Eventually(t, func() bool {
			got := onInstances()
			if len(got) != len(expected) {
				return false
			}
			for k, v := range expected {
				if got[k] != v {
					return false
				}
			}
			return len(activeTasks(t, c, "agent")) == len(expected)
		}, time.Minute, 50*time.Millisecond, msg)
	}
	want(map[string]int{"a": 1, "b": 1}, "one task on each matching instance")

	agents.AddInstance(t, host("d", "role", "edge"))
	want(map[string]int{"a": 1, "b": 1, "d": 1}, "a new matching instance gets one")

	setRole := func(name, role string) {
		ci := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		require.NoError(t, framework.Modify(ctx, c, ci, func(ci *ecsv1alpha1.ContainerInstance) {
			ci.Spec.Attributes = []ecsv1alpha1.Attribute{{Name: "role", Value: role}}
		}))
	}
	setRole("c", "edge")
	setRole("a", "core")
	want(map[string]int{"b": 1, "c": 1, "d": 1}, "instances that stop matching lose it, those that start matching get it")

	require.NoError(t, c.Delete(ctx, &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: ns}}))
	want(map[string]int{"b": 1, "c": 1}, "a deregistered instance's task is stopped")

	updated := &ecsv1alpha1.Service{}
	require.Eventually(t, func() bool {
		return c.Get(ctx, client.ObjectKeyFromObject(svc), updated) == nil && updated.Status.DesiredCount == 2
	}, 30*time.Second, 50*time.Millisecond, "status.desiredCount counts the eligible instances")
}

func TestDisconnectPolicy(t *testing.T) {
	s, agents := setup(t, host("a"), host("b"), host("c"))
	c, ctx := s.Client, t.Context()

	keep := newService("keep", "web", 2)
	keep.Spec.PlacementConstraints = []ecsv1alpha1.PlacementConstraint{{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "instanceId in [a, b]"}}
	replace := newService("replace", "web", 2)
	replace.Spec.PlacementConstraints = []ecsv1alpha1.PlacementConstraint{{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "instanceId in [a, b, c]"}}
	replace.Spec.PlacementStrategy = []ecsv1alpha1.PlacementStrategy{{Type: ecsv1alpha1.PlacementStrategyBinpack, Field: "memory"}}
	replace.Spec.DisconnectPolicy = &ecsv1alpha1.DisconnectPolicy{Action: ecsv1alpha1.DisconnectActionReplace, GracePeriodSeconds: ptr.To[int32](5)}
	require.NoError(t, c.Create(ctx, keep))
	require.NoError(t, c.Create(ctx, replace))
	waitRunning(t, c, "keep", 2)
	tasks := waitRunning(t, c, "replace", 2)
	lost := tasks[0].Spec.ContainerInstance
	require.Equal(t, lost, tasks[1].Spec.ContainerInstance, "binpack puts both tasks on one instance")

	// The instance has been silent for a minute: past the Replace policy's grace period.
	agents.Disconnect(t, lost, time.Minute)
	require.Eventually(t, func() bool {
		running := 0
		for _, task := range activeTasks(t, c, "replace") {
			if task.Spec.ContainerInstance != lost && task.Status.LastStatus == ecsv1alpha1.TaskStateRunning {
				running++
			}
		}
		return running == 2
	}, time.Minute, 50*time.Millisecond, "Replace starts replacements elsewhere")
	require.Len(t, activeTasks(t, c, "keep"), 2, "Keep (the ECS behaviour) leaves the tasks counted")
	require.Len(t, activeTasks(t, c, "replace"), 2, "the old tasks are told to stop")

	// When the host comes back, its agent stops the surplus and the count is exact.
	agents.Reconnect(t, lost)
	waitRunning(t, c, "replace", 2)
	require.Empty(t, tasksOn(t, c, "replace", lost))
}

func TestRollingUpdateStaysWithinLimits(t *testing.T) {
	s, _ := setup(t, host("a"), host("b"), host("c"))
	c, ctx := s.Client, t.Context()
	svc := newService("web", "web", 10)
	svc.Spec.DeploymentConfiguration = &ecsv1alpha1.DeploymentConfiguration{MinimumHealthyPercent: ptr.To[int32](50), MaximumPercent: ptr.To[int32](200)}
	require.NoError(t, c.Create(ctx, svc))
	waitRunning(t, c, "web", 10)

	smp := sample(t, c, "web")
	changeImage(t, c, "web", "example.com/web:2")
	require.Eventually(t, func() bool {
		tasks := activeTasks(t, c, "web")
		for _, task := range tasks {
			if task.Spec.TaskDefinitionRevision != "web-2" || task.Status.LastStatus != ecsv1alpha1.TaskStateRunning {
				return false
			}
		}
		return len(tasks) == 10
	}, time.Minute, 50*time.Millisecond, "every task ends on revision web-2")
	minRunning, maxTotal := smp.finish()
	require.GreaterOrEqual(t, minRunning, 5, "minimumHealthyPercent 50 of 10")
	require.LessOrEqual(t, maxTotal, 20, "maximumPercent 200 of 10")
	waitRunning(t, c, "web", 10)
}

func TestUnplaceableTasksAreExplained(t *testing.T) {
	s, _ := setup(t, framework.SimulatedInstance{Name: "tiny", CPU: 4096, Memory: 128})
	c, ctx := s.Client, t.Context()
	require.NoError(t, c.Create(ctx, newService("web", "web", 1)))
	want := "(service web) was unable to place a task because no container instance met all of its requirements. " +
		"The closest matching container-instance tiny has insufficient memory available."
	require.Eventually(t, func() bool { return hasEvent(t, c, "web", want) }, 30*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		svc := &ecsv1alpha1.Service{}
		require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, svc))
		cond := meta.FindStatusCondition(svc.Status.Conditions, ecsv1alpha1.ServiceConditionSteadyState)
		return cond != nil && cond.Reason == ecsv1alpha1.ServiceReasonUnableToPlace && strings.Contains(cond.Message, "insufficient memory")
	}, 30*time.Second, 50*time.Millisecond, "the service's condition says why")
	requireDeployments(t, c, "web", []ecsv1alpha1.Deployment{{TaskDefinitionRevision: "web-1", Status: ecsv1alpha1.DeploymentStatusPrimary,
		DesiredCount: 1, PendingCount: 1, RolloutState: ecsv1alpha1.RolloutStateInProgress}})
}

// breakerService creates the service "web" of 4 tasks on 3 hosts, rolling at 50/200 with a circuit
// breaker that rolls back, and waits until its tasks run.
func breakerService(t *testing.T) (client.Client, context.Context, *ecsv1alpha1.Service, *framework.SimulatedAgents) {
	t.Helper()
	s, agents := setup(t, host("a"), host("b"), host("c"))
	c, ctx := s.Client, t.Context()
	svc := newService("web", "web", 4)
	svc.Spec.DeploymentConfiguration = &ecsv1alpha1.DeploymentConfiguration{
		MinimumHealthyPercent: ptr.To[int32](50), MaximumPercent: ptr.To[int32](200),
		DeploymentCircuitBreaker: &ecsv1alpha1.DeploymentCircuitBreaker{Enable: true, Rollback: true},
	}
	require.NoError(t, c.Create(ctx, svc))
	waitRunning(t, c, "web", 4)
	return c, ctx, svc, agents
}

// waitRolledBack waits until the deployment of web-2 has FAILED and the service has completed on
// web-1 again, and returns the failed deployment.
func waitRolledBack(t *testing.T, c client.Client, svc *ecsv1alpha1.Service) ecsv1alpha1.Deployment {
	t.Helper()
	cur := &ecsv1alpha1.Service{}
	var failed *ecsv1alpha1.Deployment
	require.Eventually(t, func() bool {
		require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(svc), cur))
		failed = nil
		for i, d := range cur.Status.Deployments {
			if d.TaskDefinitionRevision == "web-2" && d.RolloutState == ecsv1alpha1.RolloutStateFailed {
				failed = &cur.Status.Deployments[i]
			}
		}
		if failed == nil {
			return false
		}
		primary := cur.Status.Deployments[0]
		return primary.TaskDefinitionRevision == "web-1" && primary.RolloutState == ecsv1alpha1.RolloutStateCompleted
	}, 2*time.Minute, 100*time.Millisecond, "the breaker trips and the service completes on web-1 again: %+v", &cur.Status)
	return *failed
}

// TestCircuitBreakerRollsBack deploys a revision whose tasks fail at start: the breaker trips at its
// threshold, the deployment is FAILED, and the service returns to the last completed revision with
// every task on it.
func TestCircuitBreakerRollsBack(t *testing.T) {
	c, ctx, svc, agents := breakerService(t)

	agents.FailRevision("web-2")
	changeImage(t, c, "web", "example.com/web:broken")

	failed := waitRolledBack(t, c, svc)
	require.GreaterOrEqual(t, failed.FailedTasks, int32(10), "the threshold for desiredCount 4 is 10")
	for _, task := range waitRunning(t, c, "web", 4) {
		require.Equal(t, "web-1", task.Spec.TaskDefinitionRevision)
	}
	require.True(t, hasEvent(t, c, "web", "(service web) is rolling back from deployment web-2 to web-1, its last completed deployment."))
	failedEvent := false
	events := &corev1.EventList{}
	require.NoError(t, c.List(ctx, events, client.InNamespace(ns)))
	for _, e := range events.Items {
		if e.InvolvedObject.Name == "web" && e.Reason == ecsv1alpha1.ServiceReasonDeploymentFailed {
			failedEvent = strings.Contains(e.Message, "circuit breaker tripped")
		}
	}
	require.True(t, failedEvent, "an Event tells that the deployment failed")
}

// TestCircuitBreakerCountsFailedHealthChecks deploys a revision whose tasks start and then fail
// their container health checks. Once they run, stage 1 of the breaker is over; stage 2 counts the
// tasks the service stops for being UNHEALTHY, so the breaker trips at its threshold and the
// service returns to the last completed revision.
func TestCircuitBreakerCountsFailedHealthChecks(t *testing.T) {
	c, ctx, svc, agents := breakerService(t)

	agents.UnhealthyRevision("web-2")
	td := &ecsv1alpha1.TaskDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
	require.NoError(t, framework.Modify(ctx, c, td, func(td *ecsv1alpha1.TaskDefinition) {
		td.Spec.ContainerDefinitions[0].Image = "example.com/web:sick"
		td.Spec.ContainerDefinitions[0].HealthCheck = &ecsv1alpha1.HealthCheck{Command: []string{"CMD", "/probe"}}
	}))

	failed := waitRolledBack(t, c, svc)
	require.GreaterOrEqual(t, failed.FailedTasks, int32(10), "the threshold for desiredCount 4 is 10")
	require.Contains(t, failed.RolloutStateReason, "tasks of web-2 failed container health checks (threshold 10)")

	for _, task := range waitRunning(t, c, "web", 4) {
		require.Equal(t, "web-1", task.Spec.TaskDefinitionRevision)
	}
	ran := 0
	for _, task := range tasksByRevision(t, c, "web", "web-2") {
		require.Equal(t, ecsv1alpha1.TaskDesiredStopped, task.Spec.DesiredStatus, "the service stopped task %s", task.Name)
		require.NotEqual(t, ecsv1alpha1.StopCodeTaskFailedToStart, task.Status.StopCode, "no task of web-2 failed to start: stage 2 tripped the breaker")
		if task.Status.StartedAt != nil {
			ran++
		}
	}
	require.GreaterOrEqual(t, ran, 10, "at least the threshold of web-2's tasks ran before they were stopped")
	require.Eventually(t, func() bool {
		return hasEventContaining(t, c, "web", ecsv1alpha1.ServiceReasonDeploymentFailed,
			"tasks failed container health checks; the circuit breaker tripped at 10.")
	}, 10*time.Second, 100*time.Millisecond, "an Event tells that the deployment failed and why")
	require.True(t, hasEvent(t, c, "web", "(service web) is rolling back from deployment web-2 to web-1, its last completed deployment."))
}

// TestDeploymentStuckIsReported: with minimumHealthyPercent 100 and maximumPercent 100 a new
// revision can neither start a task nor stop one. The service says so in an Event and in the
// deployment's rolloutStateReason, keeps its old tasks, and rolls on once the limits allow it.
func TestDeploymentStuckIsReported(t *testing.T) {
	s, _ := setup(t, host("a"), host("b"))
	c, ctx := s.Client, t.Context()
	svc := newService("web", "web", 2)
	svc.Spec.DeploymentConfiguration = &ecsv1alpha1.DeploymentConfiguration{MinimumHealthyPercent: ptr.To[int32](100), MaximumPercent: ptr.To[int32](100)}
	require.NoError(t, c.Create(ctx, svc))
	old := uids(waitRunning(t, c, "web", 2))

	changeImage(t, c, "web", "example.com/web:2")
	want := "(service web) cannot replace 2 tasks: minimumHealthyPercent 100% and maximumPercent 100% of desiredCount 2 " +
		"allow neither starting nor stopping a task. Raise maximumPercent or lower minimumHealthyPercent."
	require.Eventually(t, func() bool { return hasEvent(t, c, "web", want) }, 30*time.Second, 50*time.Millisecond)
	cur := &ecsv1alpha1.Service{}
	require.Eventually(t, func() bool {
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(svc), cur))
		return len(cur.Status.Deployments) == 2 && cur.Status.Deployments[0].RolloutStateReason != ""
	}, 30*time.Second, 50*time.Millisecond)
	primary, previous := cur.Status.Deployments[0], cur.Status.Deployments[1]
	require.Equal(t, "web-2", primary.TaskDefinitionRevision)
	require.Equal(t, ecsv1alpha1.DeploymentStatusPrimary, primary.Status)
	require.Equal(t, ecsv1alpha1.RolloutStateInProgress, primary.RolloutState)
	require.Equal(t, "Stuck: minimumHealthyPercent 100% and maximumPercent 100% of desiredCount 2 allow neither starting nor stopping a task.",
		primary.RolloutStateReason)
	require.Equal(t, [3]int32{2, 0, 0}, [3]int32{primary.DesiredCount, primary.RunningCount, primary.PendingCount})
	require.Equal(t, "web-1", previous.TaskDefinitionRevision)
	require.Equal(t, ecsv1alpha1.DeploymentStatusActive, previous.Status)
	require.Equal(t, int32(2), previous.RunningCount)
	require.False(t, meta.IsStatusConditionTrue(cur.Status.Conditions, ecsv1alpha1.ServiceConditionSteadyState))
	require.True(t, meta.IsStatusConditionTrue(cur.Status.Conditions, ecsv1alpha1.ServiceConditionReady), "the old tasks still serve")
	require.Equal(t, old, uids(activeTasks(t, c, "web")), "the old tasks keep running")
	require.Empty(t, tasksByRevision(t, c, "web", "web-2"))

	require.NoError(t, framework.Modify(ctx, c, svc, func(svc *ecsv1alpha1.Service) {
		svc.Spec.DeploymentConfiguration.MaximumPercent = ptr.To[int32](150)
	}))
	for _, task := range waitRunning(t, c, "web", 2) {
		require.Equal(t, "web-2", task.Spec.TaskDefinitionRevision, "with room for one more task the rollout goes on")
	}
	require.Eventually(t, func() bool {
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(svc), cur))
		return cur.Status.Deployments[0].RolloutState == ecsv1alpha1.RolloutStateCompleted
	}, 30*time.Second, 50*time.Millisecond)
}

// TestRollBackByRepinning: re-pinning the service to an earlier revision is a deployment like any
// other, back to that revision's tasks.
func TestRollBackByRepinning(t *testing.T) {
	s, _ := setup(t, host("a"), host("b"))
	c, ctx := s.Client, t.Context()
	svc := newService("web", "web", 3)
	svc.Spec.DeploymentConfiguration = &ecsv1alpha1.DeploymentConfiguration{MinimumHealthyPercent: ptr.To[int32](50)}
	require.NoError(t, c.Create(ctx, svc))
	waitRunning(t, c, "web", 3)
	changeImage(t, c, "web", "example.com/web:2")
	onRevision := func(rev string) func() bool {
		return func() bool {
			tasks := activeTasks(t, c, "web")
			for _, task := range tasks {
				if task.Spec.TaskDefinitionRevision != rev || task.Status.LastStatus != ecsv1alpha1.TaskStateRunning {
					return false
				}
			}
			return len(tasks) == 3
		}
	}
	require.Eventually(t, onRevision("web-2"), time.Minute, 50*time.Millisecond, "the service follows web to web-2")

	require.NoError(t, framework.Modify(ctx, c, svc, func(svc *ecsv1alpha1.Service) { svc.Spec.TaskDefinition = "web:1" }))
	require.Eventually(t, onRevision("web-1"), time.Minute, 50*time.Millisecond, "re-pinned to web:1, it rolls back")
	cur := &ecsv1alpha1.Service{}
	require.Eventually(t, func() bool {
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(svc), cur))
		return cur.Status.Deployments[0].TaskDefinitionRevision == "web-1" && cur.Status.Deployments[0].RolloutState == ecsv1alpha1.RolloutStateCompleted
	}, 30*time.Second, 50*time.Millisecond)
}

// TestTasksWithHealthChecksCountOnlyWhenHealthy: with a health check, a RUNNING task whose health
// is still UNKNOWN does not count towards minimumHealthyPercent, so no old task stops for it; once
// the new tasks report HEALTHY the rollout goes on.
func TestTasksWithHealthChecksCountOnlyWhenHealthy(t *testing.T) {
	s, _ := setup(t, host("a"), host("b"))
	c, ctx := s.Client, t.Context()
	td := &ecsv1alpha1.TaskDefinition{}
	require.Eventually(t, func() bool {
		require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, td))
		return td.Status.LatestRevision == 1
	}, 30*time.Second, 50*time.Millisecond)
	require.NoError(t, framework.Modify(ctx, c, td, func(td *ecsv1alpha1.TaskDefinition) {
		td.Spec.ContainerDefinitions[0].HealthCheck = &ecsv1alpha1.HealthCheck{Command: []string{"CMD", "/probe"}}
	}))
	require.Eventually(t, func() bool {
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(td), td))
		return td.Status.LatestRevision == 2
	}, 30*time.Second, 50*time.Millisecond)
	svc := newService("web", "web", 2)
	svc.Spec.DeploymentConfiguration = &ecsv1alpha1.DeploymentConfiguration{MinimumHealthyPercent: ptr.To[int32](100), MaximumPercent: ptr.To[int32](200)}
	require.NoError(t, c.Create(ctx, svc))
	healthy := func(rev string) {
		t.Helper()
		require.Eventually(t, func() bool {
			n := 0
			for _, task := range tasksByRevision(t, c, "web", rev) {
				if task.Status.LastStatus != ecsv1alpha1.TaskStateRunning {
					continue
				}
				if task.Status.HealthStatus != ecsv1alpha1.HealthStatusHealthy {
					before := task.DeepCopy()
					task.Status.HealthStatus = ecsv1alpha1.HealthStatusHealthy
					require.NoError(t, client.IgnoreNotFound(c.Status().Patch(ctx, &task, client.MergeFrom(before))))
				}
				n++
			}
			return n == 2
		}, 30*time.Second, 50*time.Millisecond, "two tasks of %s report HEALTHY", rev)
	}
	healthy("web-2")

	changeImage(t, c, "web", "example.com/web:3")
	require.Eventually(t, func() bool {
		running := 0
		for _, task := range tasksByRevision(t, c, "web", "web-3") {
			if task.Status.LastStatus == ecsv1alpha1.TaskStateRunning {
				running++
			}
		}
		return running == 2
	}, 30*time.Second, 50*time.Millisecond, "the new tasks run")
	time.Sleep(2 * time.Second) // passes that could stop old tasks
	for _, task := range tasksByRevision(t, c, "web", "web-2") {
		require.Equal(t, ecsv1alpha1.TaskDesiredRunning, task.Spec.DesiredStatus, "old task %s stays while the new ones are not HEALTHY", task.Name)
	}
	// Mid-rollout, status.deployments tells it as DescribeServices does.
	requireDeployments(t, c, "web", []ecsv1alpha1.Deployment{
		{TaskDefinitionRevision: "web-3", Status: ecsv1alpha1.DeploymentStatusPrimary, DesiredCount: 2, RunningCount: 2,
			RolloutState: ecsv1alpha1.RolloutStateInProgress},
		{TaskDefinitionRevision: "web-2", Status: ecsv1alpha1.DeploymentStatusActive, RunningCount: 2,
			RolloutState: ecsv1alpha1.RolloutStateCompleted, RolloutStateReason: "ECS deployment web-2 completed."},
	})

	healthy("web-3")
	require.Eventually(t, func() bool {
		for _, task := range tasksByRevision(t, c, "web", "web-2") {
			if task.Status.LastStatus != ecsv1alpha1.TaskStateStopped {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "once HEALTHY, the new tasks replace the old")
	requireDeployments(t, c, "web", []ecsv1alpha1.Deployment{
		{TaskDefinitionRevision: "web-3", Status: ecsv1alpha1.DeploymentStatusPrimary, DesiredCount: 2, RunningCount: 2,
			RolloutState: ecsv1alpha1.RolloutStateCompleted, RolloutStateReason: "ECS deployment web-3 completed."},
		{TaskDefinitionRevision: "web-2", Status: ecsv1alpha1.DeploymentStatusInactive,
			RolloutState: ecsv1alpha1.RolloutStateCompleted, RolloutStateReason: "ECS deployment web-2 completed."},
	})
}

// requireDeployments waits until the service's status.deployments are want, compared by revision,
// status, counts and rollout state and reason.
func requireDeployments(t *testing.T, c client.Client, svc string, want []ecsv1alpha1.Deployment) {
	t.Helper()
	type row struct {
		Revision, Status                  string
		Desired, Running, Pending, Failed int32
		RolloutState, RolloutStateReason  string
	}
	rows := func(ds []ecsv1alpha1.Deployment) []row {
		var out []row
		for _, d := range ds {
			out = append(out, row{d.TaskDefinitionRevision, string(d.Status), d.DesiredCount, d.RunningCount, d.PendingCount,
				d.FailedTasks, string(d.RolloutState), d.RolloutStateReason})
		}
		return out
	}
	var got []row
	cur := &ecsv1alpha1.Service{}
	if !assert.Eventually(t, func() bool {
		require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: svc}, cur))
		got = rows(cur.Status.Deployments)
		return reflect.DeepEqual(got, rows(want))
	}, 30*time.Second, 50*time.Millisecond) {
		t.Fatalf("status.deployments of %s:\n got %+v\nwant %+v", svc, got, rows(want))
	}
	for _, d := range cur.Status.Deployments {
		require.Equal(t, d.TaskDefinitionRevision, d.ID, "a deployment is named by its revision")
		require.NotNil(t, d.CreatedAt, "deployment %s has createdAt", d.ID)
		require.NotNil(t, d.UpdatedAt, "deployment %s has updatedAt", d.ID)
	}
}
