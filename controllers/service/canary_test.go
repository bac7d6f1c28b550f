package service_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/test/framework"
)

func tasksByRevision(t *testing.T, c client.Client, svc, rev string) []ecsv1alpha1.Task {
	t.Helper()
	list := &ecsv1alpha1.TaskList{}
	require.NoError(t, c.List(t.Context(), list, client.InNamespace(ns), client.MatchingLabels{ecsv1alpha1.LabelService: svc}))
	var out []ecsv1alpha1.Task
	for _, task := range list.Items {
		if task.Spec.TaskDefinitionRevision == rev {
			out = append(out, task)
		}
	}
	return out
}

func changeImage(t *testing.T, c client.Client, td, image string) {
	t.Helper()
	def := &ecsv1alpha1.TaskDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: td}}
	require.NoError(t, framework.Modify(t.Context(), c, def, func(def *ecsv1alpha1.TaskDefinition) {
		def.Spec.ContainerDefinitions[0].Image = image
	}))
}

func uids(tasks []ecsv1alpha1.Task) map[string]bool {
	out := map[string]bool{}
	for _, task := range tasks {
		out[string(task.UID)] = true
	}
	return out
}

// TestCanaryIsHeldThenPromoted: a canary of 1 runs beside the 4 old tasks, which stay untouched
// for the bake time; then the deployment is promoted and replaces them, and no other task of the
// new revision started before the bake time ended.
func TestCanaryIsHeldThenPromoted(t *testing.T) {
	s, _ := setup(t, host("a"), host("b"), host("c"))
	c, ctx := s.Client, t.Context()
	const bake = 4
	svc := newService("web", "web", 4)
	svc.Spec.DeploymentConfiguration = &ecsv1alpha1.DeploymentConfiguration{
		MinimumHealthyPercent: ptr.To[int32](50), MaximumPercent: ptr.To[int32](200),
		Canary: &ecsv1alpha1.Canary{Count: 1, BakeTimeSeconds: ptr.To[int32](bake)},
	}
	require.NoError(t, c.Create(ctx, svc))
	old := uids(waitRunning(t, c, "web", 4))

	changeImage(t, c, "web", "example.com/web:2")
	var canary ecsv1alpha1.Task
	require.Eventually(t, func() bool {
		news := tasksByRevision(t, c, "web", "web-2")
		if len(news) != 1 || news[0].Status.LastStatus != ecsv1alpha1.TaskStateRunning {
			return false
		}
		canary = news[0]
		return true
	}, 30*time.Second, 50*time.Millisecond, "one canary task runs")
	require.Equal(t, "true", canary.Labels["ecs.drover.dev/canary"], "the canary task is marked")
	bakedAt := canary.Status.StartedAt.Add(bake * time.Second)

	// While it bakes, the old tasks are untouched and no other new task starts.
	for time.Now().Before(bakedAt.Add(-500 * time.Millisecond)) {
		olds := tasksByRevision(t, c, "web", "web-1")
		require.Equal(t, old, uids(olds), "the old tasks stay while the canary bakes")
		for _, task := range olds {
			require.Equal(t, ecsv1alpha1.TaskDesiredRunning, task.Spec.DesiredStatus, "old task %s not stopped during the bake", task.Name)
		}
		require.Len(t, tasksByRevision(t, c, "web", "web-2"), 1, "only the canary during the bake")
		cur := &ecsv1alpha1.Service{}
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(svc), cur))
		require.Equal(t, "web-2", cur.Status.Deployments[0].TaskDefinitionRevision)
		require.Equal(t, ecsv1alpha1.RolloutStateInProgress, cur.Status.Deployments[0].RolloutState)
		time.Sleep(200 * time.Millisecond)
	}

	require.Eventually(t, func() bool {
		for _, task := range activeTasks(t, c, "web") {
			if task.Spec.TaskDefinitionRevision != "web-2" || task.Status.LastStatus != ecsv1alpha1.TaskStateRunning {
				return false
			}
		}
		return len(activeTasks(t, c, "web")) == 4
	}, time.Minute, 50*time.Millisecond, "after the bake every task runs web-2")
	for _, task := range tasksByRevision(t, c, "web", "web-2") {
		if task.UID != canary.UID {
			require.False(t, task.CreationTimestamp.Time.Before(bakedAt.Truncate(time.Second)),
				"task %s started at %s, before the bake ended at %s", task.Name, task.CreationTimestamp, bakedAt)
		}
	}
	cur := &ecsv1alpha1.Service{}
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(svc), cur))
	require.NotNil(t, cur.Status.Deployments[0].CanaryPromotedAt)
	require.True(t, hasEvent(t, c, "web", "(service web) promoted the canary of deployment web-2 after 4s; replacing the other tasks."))
	waitRunning(t, c, "web", 4)
}

// TestFailingCanaryRollsBack: a canary whose task fails to start fails the deployment, which rolls
// back to the old revision without touching its tasks, even with no circuit breaker configured.
func TestFailingCanaryRollsBack(t *testing.T) {
	s, agents := setup(t, host("a"), host("b"), host("c"))
	c, ctx := s.Client, t.Context()
	svc := newService("web", "web", 4)
	svc.Spec.DeploymentConfiguration = &ecsv1alpha1.DeploymentConfiguration{Canary: &ecsv1alpha1.Canary{Count: 1}}
	require.NoError(t, c.Create(ctx, svc))
	old := uids(waitRunning(t, c, "web", 4))

	agents.FailRevision("web-2")
	changeImage(t, c, "web", "example.com/web:broken")
	cur := &ecsv1alpha1.Service{}
	require.Eventually(t, func() bool {
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(svc), cur))
		if len(cur.Status.Deployments) < 2 {
			return false
		}
		primary := cur.Status.Deployments[0]
		failed := false
		for _, d := range cur.Status.Deployments {
			failed = failed || (d.TaskDefinitionRevision == "web-2" && d.RolloutState == ecsv1alpha1.RolloutStateFailed &&
				strings.HasPrefix(d.RolloutStateReason, "Canary failed: task "))
		}
		return failed && primary.TaskDefinitionRevision == "web-1" && primary.RolloutState == ecsv1alpha1.RolloutStateCompleted
	}, time.Minute, 50*time.Millisecond, "the canary fails and the service is back on web-1: %+v", &cur.Status)

	olds := tasksByRevision(t, c, "web", "web-1")
	require.Equal(t, old, uids(olds), "the old tasks were never replaced")
	for _, task := range olds {
		require.Equal(t, ecsv1alpha1.TaskDesiredRunning, task.Spec.DesiredStatus)
		require.Equal(t, ecsv1alpha1.TaskStateRunning, task.Status.LastStatus)
	}
	require.Eventually(t, func() bool {
		for _, task := range tasksByRevision(t, c, "web", "web-2") {
			if task.Status.LastStatus != ecsv1alpha1.TaskStateStopped {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond)
	require.LessOrEqual(t, len(tasksByRevision(t, c, "web", "web-2")), 1, "one canary attempt, no retries of a failed canary")
	require.True(t, hasEvent(t, c, "web", "(service web) is rolling back from deployment web-2 to web-1, its last completed deployment."))
}
