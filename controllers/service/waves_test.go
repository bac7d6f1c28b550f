package service_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/test/framework"
)

// stores are six instances tagged store=1..6 (listed out of order: the waves order them).
func stores() []framework.SimulatedInstance {
	var out []framework.SimulatedInstance
	for _, n := range []int{4, 1, 6, 2, 5, 3} {
		out = append(out, host(fmt.Sprintf("store-%d", n), "store", fmt.Sprint(n)))
	}
	return out
}

func wavesService(bake int32) *ecsv1alpha1.Service {
	svc := newService("web", "web", 6)
	svc.Spec.PlacementStrategy = []ecsv1alpha1.PlacementStrategy{{Type: ecsv1alpha1.PlacementStrategySpread, Field: "instanceId"}}
	svc.Spec.DeploymentConfiguration = &ecsv1alpha1.DeploymentConfiguration{
		MinimumHealthyPercent: ptr.To[int32](50), MaximumPercent: ptr.To[int32](200),
		Waves: &ecsv1alpha1.Waves{Attribute: "store", MaxConcurrentGroups: ptr.To[int32](2), BakeTimeSeconds: ptr.To(bake)},
	}
	return svc
}

// storeOf is the store number of a task's instance.
func storeOf(task *ecsv1alpha1.Task) string {
	return strings.TrimPrefix(task.Spec.ContainerInstance, "store-")
}

// TestWavesRollStoreByStore rolls a new revision over 6 stores, 2 at a time with a bake time: each
// wave's tasks start only after the previous wave's tasks ran for the bake time, in store order.
func TestWavesRollStoreByStore(t *testing.T) {
	s, _ := setup(t, stores()...)
	c, ctx := s.Client, t.Context()
	const bake = 2
	require.NoError(t, c.Create(ctx, wavesService(bake)))
	waitRunning(t, c, "web", 6)

	changeImage(t, c, "web", "example.com/web:2")
	require.Eventually(t, func() bool {
		tasks := activeTasks(t, c, "web")
		for _, task := range tasks {
			if task.Spec.TaskDefinitionRevision != "web-2" || task.Status.LastStatus != ecsv1alpha1.TaskStateRunning {
				return false
			}
		}
		return len(tasks) == 6
	}, 2*time.Minute, 100*time.Millisecond, "every store runs web-2")

	wave := map[string]int{"1": 1, "2": 1, "3": 2, "4": 2, "5": 3, "6": 3}
	created := map[int][]time.Time{}
	started := map[int][]time.Time{}
	for _, task := range tasksByRevision(t, c, "web", "web-2") {
		if task.Status.LastStatus != ecsv1alpha1.TaskStateRunning {
			continue
		}
		w, ok := wave[storeOf(&task)]
		require.True(t, ok, "task %s on %s", task.Name, task.Spec.ContainerInstance)
		require.Equal(t, fmt.Sprint(w), task.Labels["ecs.drover.dev/wave"], "task %s on store %s started by wave %d", task.Name, storeOf(&task), w)
		created[w] = append(created[w], task.CreationTimestamp.Time)
		started[w] = append(started[w], task.Status.StartedAt.Time)
	}
	for w := 2; w <= 3; w++ {
		require.Len(t, created[w], 2)
		prevDone := time.Time{}
		for _, st := range started[w-1] {
			if st.After(prevDone) {
				prevDone = st
			}
		}
		for _, cr := range created[w] {
			// creationTimestamp has whole seconds.
			require.False(t, cr.Before(prevDone.Add(bake*time.Second).Truncate(time.Second)),
				"wave %d task created at %s, before wave %d finished baking at %s", w, cr, w-1, prevDone.Add(bake*time.Second))
		}
	}
	cur := &ecsv1alpha1.Service{}
	require.Eventually(t, func() bool {
		require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, cur))
		return cur.Status.Deployments[0].RolloutState == ecsv1alpha1.RolloutStateCompleted
	}, 30*time.Second, 100*time.Millisecond)
}

// TestFailingWaveHaltsTheRollout: the first wave's tasks fail to start, so the rollout halts with
// the deployment FAILED and the stores of the later waves untouched.
func TestFailingWaveHaltsTheRollout(t *testing.T) {
	s, agents := setup(t, stores()...)
	c, ctx := s.Client, t.Context()
	require.NoError(t, c.Create(ctx, wavesService(1)))
	before := map[string]string{} // store -> task uid
	for _, task := range waitRunning(t, c, "web", 6) {
		before[storeOf(&task)] = string(task.UID)
	}

	agents.FailRevision("web-2")
	changeImage(t, c, "web", "example.com/web:broken")
	cur := &ecsv1alpha1.Service{}
	require.Eventually(t, func() bool {
		require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, cur))
		p := cur.Status.Deployments[0]
		return p.TaskDefinitionRevision == "web-2" && p.RolloutState == ecsv1alpha1.RolloutStateFailed &&
			strings.HasPrefix(p.RolloutStateReason, "Wave failed: task ")
	}, time.Minute, 100*time.Millisecond, "the deployment fails at the first wave: %+v", &cur.Status)
	time.Sleep(2 * time.Second) // more passes: nothing else may move

	for _, task := range tasksByRevision(t, c, "web", "web-1") {
		store := storeOf(&task)
		if store == "1" || store == "2" {
			continue // the first wave's stores may have given way to its failed tasks
		}
		require.Equal(t, before[store], string(task.UID), "store %s keeps its task", store)
		require.Equal(t, ecsv1alpha1.TaskDesiredRunning, task.Spec.DesiredStatus, "store %s untouched", store)
		require.Equal(t, ecsv1alpha1.TaskStateRunning, task.Status.LastStatus)
	}
	for _, task := range tasksByRevision(t, c, "web", "web-2") {
		require.Equal(t, "1", task.Labels["ecs.drover.dev/wave"], "only the first wave started tasks: %s", task.Name)
	}
}
