package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/test/framework"
)

// serviceTasks returns the service's tasks.
func serviceTasks(t *testing.T, c ctrlclient.Client, svc string) []ecsv1alpha1.Task {
	t.Helper()
	list := &ecsv1alpha1.TaskList{}
	require.NoError(t, c.List(t.Context(), list, ctrlclient.InNamespace("default"), ctrlclient.MatchingLabels{ecsv1alpha1.LabelService: svc}))
	return list.Items
}

// runningOf returns the service's RUNNING tasks that should run, when there are exactly n and all
// run the revision.
func runningOf(t *testing.T, c ctrlclient.Client, svc, revision string, n int) ([]ecsv1alpha1.Task, bool) {
	t.Helper()
	var out []ecsv1alpha1.Task
	for _, task := range serviceTasks(t, c, svc) {
		if task.Spec.DesiredStatus == ecsv1alpha1.TaskDesiredStopped || task.Status.LastStatus == ecsv1alpha1.TaskStateStopped {
			continue
		}
		if task.Status.LastStatus != ecsv1alpha1.TaskStateRunning || task.Spec.TaskDefinitionRevision != revision {
			return nil, false
		}
		out = append(out, task)
	}
	return out, len(out) == n
}

// answers checks that every task serves HTTP on its published port from the image version.
func answers(t *testing.T, tasks []ecsv1alpha1.Task, version string) {
	t.Helper()
	for _, task := range tasks {
		require.Len(t, task.Status.Containers, 1)
		require.Len(t, task.Status.Containers[0].NetworkBindings, 1)
		url := fmt.Sprintf("http://127.0.0.1:%d/", task.Status.Containers[0].NetworkBindings[0].HostPort)
		require.Eventually(t, func() bool {
			code, body, err := httpGet(url)
			return err == nil && code == http.StatusOK && strings.Contains(body, `"APP_VERSION":"`+version+`"`)
		}, 10*time.Second, 100*time.Millisecond, "task %s answers on %s from image %s", task.Name, url, version)
	}
}

// TestServiceDeploysOnDocker runs a service of 3 tasks on a real host: its tasks become containers
// that answer HTTP from image v1; changing the image to v2 (both built locally) rolls out within
// minimumHealthyPercent 50 / maximumPercent 200 - sampled throughout, never below the floor of 2
// running tasks nor above 6 - and replaces every container with one of v2; a revision whose image
// cannot be pulled trips the circuit breaker, which rolls back to v2, whose containers serve again.
func TestServiceDeploysOnDocker(t *testing.T) {
	t.Parallel()
	v1, v2 := framework.TestImageVersion(t, "v1"), framework.TestImageVersion(t, "v2")
	p := framework.StartProcess(t, framework.NewOptions(t))
	c, ctx := p.Client, t.Context()
	require.NoError(t, c.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "default"}}))
	joinHost(t, p, "edge", "--stop-timeout", "5s")

	td := &ecsv1alpha1.TaskDefinition{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
			Name: "app", Image: v1, Memory: ptr.To[int32](32),
			PortMappings: []ecsv1alpha1.PortMapping{{ContainerPort: 8080}},
		}}}}
	require.NoError(t, c.Create(ctx, td))
	svc := &ecsv1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: ecsv1alpha1.ServiceSpec{Cluster: "edge", TaskDefinition: "web", DesiredCount: ptr.To[int32](3),
			DeploymentConfiguration: &ecsv1alpha1.DeploymentConfiguration{
				MinimumHealthyPercent: ptr.To[int32](50), MaximumPercent: ptr.To[int32](200),
				DeploymentCircuitBreaker: &ecsv1alpha1.DeploymentCircuitBreaker{Enable: true, Rollback: true},
			}}}
	require.NoError(t, c.Create(ctx, svc))

	var tasks []ecsv1alpha1.Task
	require.Eventually(t, func() bool {
		var ok bool
		tasks, ok = runningOf(t, c, "web", "web-1", 3)
		return ok
	}, 3*time.Minute, 250*time.Millisecond, "three tasks of web-1 run")
	answers(t, tasks, "v1")
	first := map[string]bool{}
	for _, task := range tasks {
		first[task.Status.Containers[0].RuntimeID] = true
	}

	// The image changes to v2: the rollout never goes below 2 running tasks (50% of 3, rounded
	// up) nor above 6 that should run (200%), as ECS counts them.
	require.NoError(t, framework.Modify(ctx, c, td, func(td *ecsv1alpha1.TaskDefinition) { td.Spec.ContainerDefinitions[0].Image = v2 }))
	minRunning, maxActive := 1<<30, 0
	require.Eventually(t, func() bool {
		running, active := 0, 0
		for _, task := range serviceTasks(t, c, "web") {
			if task.Spec.DesiredStatus == ecsv1alpha1.TaskDesiredRunning && task.Status.LastStatus != ecsv1alpha1.TaskStateStopped {
				active++
				if task.Status.LastStatus == ecsv1alpha1.TaskStateRunning {
					running++
				}
			}
		}
		minRunning, maxActive = min(minRunning, running), max(maxActive, active)
		var ok bool
		tasks, ok = runningOf(t, c, "web", "web-2", 3)
		return ok
	}, 3*time.Minute, 20*time.Millisecond, "three tasks of web-2 run")
	require.GreaterOrEqual(t, minRunning, 2, "minimumHealthyPercent 50 of 3")
	require.LessOrEqual(t, maxActive, 6, "maximumPercent 200 of 3")
	answers(t, tasks, "v2")
	for _, task := range tasks {
		require.False(t, first[task.Status.Containers[0].RuntimeID], "new containers for the new revision")
	}
	require.Eventually(t, func() bool {
		for _, task := range serviceTasks(t, c, "web") {
			if task.Spec.TaskDefinitionRevision == "web-1" && (task.Status.LastStatus != ecsv1alpha1.TaskStateStopped ||
				task.Status.StopCode != ecsv1alpha1.StopCodeServiceSchedulerInitiated) {
				return false
			}
		}
		return true
	}, time.Minute, 100*time.Millisecond, "every web-1 task stopped by the service")

	// A revision that cannot start trips the circuit breaker and rolls back to web-2.
	require.NoError(t, framework.Modify(ctx, c, td, func(td *ecsv1alpha1.TaskDefinition) {
		td.Spec.ContainerDefinitions[0].Image = "drover-missing-image:1"
	}))
	cur := &ecsv1alpha1.Service{}
	require.Eventually(t, func() bool {
		require.NoError(t, c.Get(ctx, ctrlclient.ObjectKeyFromObject(svc), cur))
		failed := false
		for _, d := range cur.Status.Deployments {
			if d.TaskDefinitionRevision == "web-3" && d.RolloutState == ecsv1alpha1.RolloutStateFailed {
				failed = true
			}
		}
		return failed && len(cur.Status.Deployments) > 0 && cur.Status.Deployments[0].TaskDefinitionRevision == "web-2" &&
			cur.Status.Deployments[0].RolloutState == ecsv1alpha1.RolloutStateCompleted
	}, 5*time.Minute, 250*time.Millisecond, "the breaker trips and the service is back on web-2")
	// Tasks that reached the host failed to start and say why; any the rollback stopped before
	// they were placed say the service stopped them.
	failedToStart := 0
	for _, task := range serviceTasks(t, c, "web") {
		if task.Spec.TaskDefinitionRevision != "web-3" || task.Status.LastStatus != ecsv1alpha1.TaskStateStopped {
			continue
		}
		if task.Spec.ContainerInstance == "" {
			require.Equal(t, ecsv1alpha1.StopCodeServiceSchedulerInitiated, task.Status.StopCode, "task %s", task.Name)
			continue
		}
		if task.Status.StopCode == ecsv1alpha1.StopCodeTaskFailedToStart {
			failedToStart++
			require.Contains(t, task.Status.StoppedReason, "CannotPullContainerError", "the failed task %s says why", task.Name)
		}
	}
	require.Positive(t, failedToStart, "tasks of web-3 failed to start on the host")
	require.Eventually(t, func() bool {
		var ok bool
		tasks, ok = runningOf(t, c, "web", "web-2", 3)
		return ok
	}, 3*time.Minute, 250*time.Millisecond, "three tasks of web-2 run after the rollback")
	answers(t, tasks, "v2")
}
