package taskdefinition_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/controllers/taskdefinition"
	"github.com/drover-dev/drover/test/framework"
)

func TestRevisionsFollowSpecChanges(t *testing.T) {
	s := framework.Start(t)
	c, ctx := s.Client, t.Context()

	td := &ecsv1alpha1.TaskDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
			Name: "app", Image: "example.com/web:1", Memory: ptr.To[int32](128),
		}}},
	}
	require.NoError(t, c.Create(ctx, td))
	rev1 := waitRevision(t, c, td, 1)
	require.True(t, apiequality.Semantic.DeepEqual(td.Spec, rev1.Spec.TaskDefinition), "revision 1 holds the spec as created")
	require.Equal(t, "web", rev1.Spec.Family)

	// A metadata-only change makes no revision.
	require.NoError(t, framework.Modify(ctx, c, td, func(td *ecsv1alpha1.TaskDefinition) {
		td.Labels = map[string]string{"team": "a"}
	}))

	// A spec change makes the next one; the first is untouched.
	require.NoError(t, framework.Modify(ctx, c, td, func(td *ecsv1alpha1.TaskDefinition) {
		td.Spec.ContainerDefinitions[0].Image = "example.com/web:2"
	}))
	rev2 := waitRevision(t, c, td, 2)
	require.Equal(t, "example.com/web:2", rev2.Spec.TaskDefinition.ContainerDefinitions[0].Image)

	// Changing back is a change too: revisions are a history, not a set.
	require.NoError(t, framework.Modify(ctx, c, td, func(td *ecsv1alpha1.TaskDefinition) {
		td.Spec.ContainerDefinitions[0].Image = "example.com/web:1"
	}))
	waitRevision(t, c, td, 3)

	again := &ecsv1alpha1.TaskDefinitionRevision{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "web-1"}, again))
	require.Equal(t, rev1.ResourceVersion, again.ResourceVersion, "revision 1 never changes")

	revs := &ecsv1alpha1.TaskDefinitionRevisionList{}
	require.NoError(t, c.List(ctx, revs, client.InNamespace("default"), client.MatchingLabels{ecsv1alpha1.LabelTaskDefinitionFamily: "web"}))
	require.Len(t, revs.Items, 3, "one revision per spec change, no duplicates")
}

// TestRevisionNumberingContinuesAfterExistingRevisions shows that a revision name already taken
// (here by a revision made before the controller saw the family) is never overwritten or duplicated.
func TestRevisionNumberingContinuesAfterExistingRevisions(t *testing.T) {
	s := framework.Start(t)
	c, ctx := s.Client, t.Context()
	spec := ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
		Name: "app", Image: "example.com/api:1", Memory: ptr.To[int32](64),
	}}}
	old := spec.DeepCopy()
	old.ContainerDefinitions[0].Image = "example.com/api:0"
	for n := int32(1); n <= 2; n++ {
		require.NoError(t, c.Create(ctx, &ecsv1alpha1.TaskDefinitionRevision{
			ObjectMeta: metav1.ObjectMeta{Name: ecsv1alpha1.RevisionName("api", n), Namespace: "default",
				Labels: map[string]string{ecsv1alpha1.LabelTaskDefinitionFamily: "api"}},
			Spec: ecsv1alpha1.TaskDefinitionRevisionSpec{Family: "api", Revision: n, TaskDefinition: *old},
		}))
	}
	td := &ecsv1alpha1.TaskDefinition{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "default"}, Spec: spec}
	require.NoError(t, c.Create(ctx, td))
	rev := waitRevision(t, c, td, 3)
	require.Equal(t, "example.com/api:1", rev.Spec.TaskDefinition.ContainerDefinitions[0].Image)
}

// waitRevision waits until the TaskDefinition reports revision n as its newest and returns it.
func waitRevision(t *testing.T, c client.Client, td *ecsv1alpha1.TaskDefinition, n int32) *ecsv1alpha1.TaskDefinitionRevision {
	t.Helper()
	ctx := t.Context()
	cur := &ecsv1alpha1.TaskDefinition{}
	require.Eventually(t, func() bool {
		return c.Get(ctx, client.ObjectKeyFromObject(td), cur) == nil && cur.Status.LatestRevision == n &&
			cur.Status.ObservedGeneration == cur.Generation
	}, 30*time.Second, 50*time.Millisecond, "TaskDefinition %s reaches revision %d (status: %+v)", td.Name, n, cur.Status)
	require.Equal(t, ecsv1alpha1.RevisionName(td.Name, n), cur.Status.LatestRevisionName)
	rev := &ecsv1alpha1.TaskDefinitionRevision{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: td.Namespace, Name: cur.Status.LatestRevisionName}, rev))
	require.Equal(t, n, rev.Spec.Revision)
	return rev
}

// TestOldRevisionsArePrunedUnlessUsed: beyond the newest RevisionHistory revisions, a family's old
// revisions are deleted - except one a task still runs - and numbering goes on.
func TestOldRevisionsArePrunedUnlessUsed(t *testing.T) {
	s := framework.Start(t)
	c, ctx := s.Client, t.Context()
	require.NoError(t, c.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "default"}}))
	td := &ecsv1alpha1.TaskDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
			Name: "app", Image: "example.com/web:1", Memory: ptr.To[int32](128),
		}}},
	}
	require.NoError(t, c.Create(ctx, td))
	waitRevision(t, c, td, 1)
	bump := func(n int) {
		t.Helper()
		require.NoError(t, framework.Modify(ctx, c, td, func(td *ecsv1alpha1.TaskDefinition) {
			td.Spec.ContainerDefinitions[0].Image = "example.com/web:" + itoa(n)
		}))
		waitRevision(t, c, td, int32(n))
	}
	bump(2)
	pinned := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Name: "pinned", Namespace: "default"},
		Spec: ecsv1alpha1.TaskSpec{Cluster: "edge", TaskDefinition: "web:2"}}
	require.NoError(t, c.Create(ctx, pinned))
	total := taskdefinition.RevisionHistory + 4
	for n := 3; n <= total; n++ {
		bump(n)
	}
	want := map[string]bool{"web-2": true}
	for n := total - taskdefinition.RevisionHistory + 1; n <= total; n++ {
		want["web-"+itoa(n)] = true
	}
	require.Eventually(t, func() bool {
		revs := &ecsv1alpha1.TaskDefinitionRevisionList{}
		require.NoError(t, c.List(ctx, revs, client.InNamespace("default"), client.MatchingLabels{ecsv1alpha1.LabelTaskDefinitionFamily: "web"}))
		got := map[string]bool{}
		for _, r := range revs.Items {
			got[r.Name] = true
		}
		return apiequality.Semantic.DeepEqual(want, got)
	}, 30*time.Second, 100*time.Millisecond, "the newest %d revisions and the one the task runs are kept", taskdefinition.RevisionHistory)
	bump(total + 1)
}

func itoa(n int) string { return strconv.Itoa(n) }
