package integration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/test/framework"
)

// TestTasksAreResolvedAsTheyAreCreated: a Task naming a task definition is stored with its
// revision's containers already in its spec, by admission, with no controller running; a Task
// naming a task definition that does not exist yet is stored as it came, for the task controller.
func TestTasksAreResolvedAsTheyAreCreated(t *testing.T) {
	s := framework.Start(t, framework.WithoutControllers())
	c, ctx := s.Client, t.Context()
	const ns = metav1.NamespaceDefault
	td := &ecsv1alpha1.TaskDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: ecsv1alpha1.TaskDefinitionSpec{
			NetworkMode: ecsv1alpha1.NetworkModeHost,
			ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
				Name: "app", Image: "example.com/web:2", Memory: ptr.To[int32](128),
				PortMappings: []ecsv1alpha1.PortMapping{{ContainerPort: 8080}},
			}},
			PlacementConstraints: []ecsv1alpha1.PlacementConstraint{{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "agentConnected == true"}},
		},
	}
	require.NoError(t, c.Create(ctx, td))
	// What the taskdefinition controller would do, by hand: two revisions, the second the latest.
	for n := int32(1); n <= 2; n++ {
		spec := td.Spec.DeepCopy()
		if n == 1 {
			spec.ContainerDefinitions[0].Image = "example.com/web:1"
		}
		require.NoError(t, c.Create(ctx, &ecsv1alpha1.TaskDefinitionRevision{
			ObjectMeta: metav1.ObjectMeta{Name: ecsv1alpha1.RevisionName("web", n), Namespace: ns},
			Spec:       ecsv1alpha1.TaskDefinitionRevisionSpec{Family: "web", Revision: n, TaskDefinition: *spec},
		}))
	}
	td.Status.LatestRevision, td.Status.LatestRevisionName = 2, ecsv1alpha1.RevisionName("web", 2)
	require.NoError(t, c.Status().Update(ctx, td))

	newTask := func(name, ref string) *ecsv1alpha1.Task {
		return &ecsv1alpha1.Task{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: ecsv1alpha1.TaskSpec{Cluster: "stores", TaskDefinition: ref,
				PlacementConstraints: []ecsv1alpha1.PlacementConstraint{{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:store exists"}}},
		}
	}
	// droverd's cache sees the status a moment after the write: dry runs until it does.
	require.Eventually(t, func() bool {
		probe := newTask("probe", "web")
		require.NoError(t, c.Create(ctx, probe, client.DryRunAll))
		return probe.Spec.TaskDefinitionRevision == "web-2"
	}, 30*time.Second, 50*time.Millisecond, "a dry-run create comes back resolved to web-2")

	latest := newTask("latest", "web")
	require.NoError(t, c.Create(ctx, latest))
	stored := &ecsv1alpha1.Task{}
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(latest), stored))
	require.Equal(t, "web-2", stored.Spec.TaskDefinitionRevision)
	require.Equal(t, td.Spec.ContainerDefinitions, stored.Spec.Containers)
	require.Equal(t, ecsv1alpha1.NetworkModeHost, stored.Spec.NetworkMode)
	require.Equal(t, "family:web", stored.Spec.Group)
	require.Equal(t, []ecsv1alpha1.PlacementConstraint{
		{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "agentConnected == true"},
		{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:store exists"},
	}, stored.Spec.PlacementConstraints, "the revision's constraints come first, then the task's own")

	pinned := newTask("pinned", "web:1")
	require.NoError(t, c.Create(ctx, pinned))
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(pinned), stored))
	require.Equal(t, "web-1", stored.Spec.TaskDefinitionRevision)
	require.Equal(t, "example.com/web:1", stored.Spec.Containers[0].Image)

	// Nothing to resolve yet: stored as it came, not refused.
	later := newTask("later", "db")
	require.NoError(t, c.Create(ctx, later))
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(later), stored))
	require.Empty(t, stored.Spec.TaskDefinitionRevision)
	require.Empty(t, stored.Spec.Containers)
}

// TestTaskStoppedBeforePlacementSaysWhoStoppedIt: a task stopped before any instance took it is
// STOPPED by the control plane with UserInitiated, as ECS reports a task a user stopped.
func TestTaskStoppedBeforePlacementSaysWhoStoppedIt(t *testing.T) {
	s := framework.Start(t)
	c, ctx := s.Client, t.Context()
	task := &ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{Name: "never-placed", Namespace: metav1.NamespaceDefault},
		Spec:       ecsv1alpha1.TaskSpec{Cluster: "empty", TaskDefinition: "web"},
	}
	require.NoError(t, c.Create(ctx, task))
	require.NoError(t, framework.Modify(ctx, c, task, func(task *ecsv1alpha1.Task) {
		task.Spec.DesiredStatus = ecsv1alpha1.TaskDesiredStopped
	}))
	require.Eventually(t, func() bool {
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(task), task))
		return task.Status.LastStatus == ecsv1alpha1.TaskStateStopped
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, ecsv1alpha1.StopCodeUserInitiated, task.Status.StopCode)
	require.Equal(t, "Task stopped before it was placed", task.Status.StoppedReason)
	require.Empty(t, task.Spec.ContainerInstance)
}
