package integration

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/manager"
	"github.com/drover-dev/drover/test/framework"
)

// TestTaskWatchesByInstanceSeeExactlyTheirTasks: the Tasks' watch cache indexes spec.containerInstance
// (each agent's field selector). A watch for one instance sees its Tasks' whole lives - bound at
// create, bound later, status changes, deletion - and nothing of another instance's; and a list of
// one instance's Tasks from the cache reads only those Tasks.
func TestTaskWatchesByInstanceSeeExactlyTheirTasks(t *testing.T) {
	s := framework.Start(t, framework.WithoutControllers())
	ctx := t.Context()
	const ns = metav1.NamespaceDefault
	wc, err := client.NewWithWatch(s.Config, client.Options{Scheme: manager.Scheme})
	require.NoError(t, err)
	watchFor := func(instance string) watch.Interface {
		w, err := wc.Watch(ctx, &ecsv1alpha1.TaskList{}, client.InNamespace(ns),
			client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("spec.containerInstance", instance)})
		require.NoError(t, err)
		t.Cleanup(w.Stop)
		return w
	}
	wa, wb := watchFor("a"), watchFor("b")
	create := func(name, instance string) *ecsv1alpha1.Task {
		tk := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: ecsv1alpha1.TaskSpec{Cluster: "stores", TaskDefinition: "web:1", ContainerInstance: instance}}
		require.NoError(t, s.Client.Create(ctx, tk))
		return tk
	}
	a1, a2 := create("a-1", "a"), create("a-2", "a")
	create("b-1", "b")
	late := create("late", "")
	create("other", "c")

	// Bound later: the late task goes to b.
	patch := client.MergeFrom(late.DeepCopy())
	late.Spec.ContainerInstance = "b"
	require.NoError(t, s.Client.Patch(ctx, late, patch))
	// A status report on a-1, and a-2 deleted.
	a1.Status.LastStatus = ecsv1alpha1.TaskStateRunning
	require.NoError(t, s.Client.Status().Update(ctx, a1))
	require.NoError(t, s.Client.Delete(ctx, a2))
	// A marker after everything else, on each instance, to know the watches have caught up.
	create("a-end", "a")
	create("b-end", "b")

	require.Equal(t, []string{"ADDED a-1 ", "ADDED a-2 ", "MODIFIED a-1 RUNNING", "DELETED a-2 ", "ADDED a-end "},
		eventsUntil(t, wa, "a-end"), "the events of instance a's watch")
	require.Equal(t, []string{"ADDED b-1 ", "ADDED late ", "ADDED b-end "}, eventsUntil(t, wb, "b-end"),
		"the events of instance b's watch (late is added when it is bound)")

	// A list from the watch cache of a's Tasks fetches only a's Tasks, through the index.
	before := indexedFetches(t, s)
	list := &ecsv1alpha1.TaskList{}
	require.NoError(t, s.Client.List(ctx, list, client.InNamespace(ns), client.MatchingFields{"spec.containerInstance": "a"},
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}))
	var names []string
	for _, tk := range list.Items {
		names = append(names, tk.Name)
	}
	slices.Sort(names)
	require.Equal(t, []string{"a-1", "a-end"}, names)
	require.Equal(t, before+2, indexedFetches(t, s), "objects the watch cache fetched through the spec.containerInstance index")
}

// eventsUntil reads events ("TYPE name lastStatus") from w until one names last.
func eventsUntil(t *testing.T, w watch.Interface, last string) []string {
	t.Helper()
	var got []string
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			require.True(t, ok, "the watch ended after %v", got)
			tk, ok := ev.Object.(*ecsv1alpha1.Task)
			require.True(t, ok, "event %s of a %T", ev.Type, ev.Object)
			got = append(got, fmt.Sprintf("%s %s %s", ev.Type, tk.Name, tk.Status.LastStatus))
			if tk.Name == last {
				return got
			}
		case <-timeout:
			t.Fatalf("no event for %s within 30s; got %v", last, got)
		}
	}
}

// indexedFetches returns how many Tasks the watch cache has fetched through the spec.containerInstance
// index to answer lists, from droverd's metrics.
func indexedFetches(t *testing.T, s *framework.Server) int {
	t.Helper()
	re := regexp.MustCompile(`(?m)^apiserver_storage_list_fetched_objects_total\{group="ecs.drover.dev",index="f:spec.containerInstance",resource="tasks",storage="watchcache"\} (\d+)$`)
	m := re.FindStringSubmatch(scrapeMetrics(t, s))
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}
