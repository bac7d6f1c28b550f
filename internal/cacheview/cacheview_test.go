package cacheview_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/cacheview"
	"github.com/drover-dev/drover/internal/manager"
	"github.com/drover-dev/drover/test/framework"
)

func taskDefinition(namespace, name string) *ecsv1alpha1.TaskDefinition {
	return &ecsv1alpha1.TaskDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
			Name: "app", Image: "example.com/app:1", CPU: 256, Memory: ptr.To[int32](256),
		}}},
	}
}

// names returns the names of objs.
func names[T client.Object](objs []T) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.GetName())
	}
	return out
}

// requireSameObjects requires a and b to hold the same objects: the same pointers, not equal copies.
func requireSameObjects[T client.Object](t *testing.T, a, b []T, msg string) {
	t.Helper()
	require.Len(t, b, len(a), msg)
	in := map[client.Object]bool{}
	for _, o := range a {
		in[o] = true
	}
	for _, o := range b {
		require.True(t, in[o], "%s: %s is another object", msg, o.GetName())
	}
}

func TestViewReadsTheCacheInPlace(t *testing.T) {
	s := framework.Start(t, framework.WithoutControllers())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c, err := client.New(s.Config, client.Options{Scheme: manager.Scheme})
	require.NoError(t, err)
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}}))
	for _, td := range []*ecsv1alpha1.TaskDefinition{taskDefinition("default", "web"), taskDefinition("default", "batch"), taskDefinition("other", "web")} {
		require.NoError(t, c.Create(ctx, td))
	}

	informers, err := cache.New(s.Config, cache.Options{Scheme: manager.Scheme})
	require.NoError(t, err)
	v, err := cacheview.New(ctx, informers, &ecsv1alpha1.TaskDefinition{})
	require.NoError(t, err)
	go func() { _ = informers.Start(ctx) }()
	require.True(t, informers.WaitForCacheSync(ctx))

	list, err := v.List("default")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"web", "batch"}, names(list))
	again, err := v.List("default")
	require.NoError(t, err)
	requireSameObjects(t, list, again, "a View hands out the cache's objects, not copies")
	none, err := v.List("missing")
	require.NoError(t, err)
	require.Empty(t, none)

	// Without a View, List reads through the client, as a controller built without a manager does.
	tds := &ecsv1alpha1.TaskDefinitionList{}
	viaClient, err := cacheview.List(ctx, (*cacheview.View[*ecsv1alpha1.TaskDefinition])(nil), c, tds, "default")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"web", "batch"}, names(viaClient))
	require.Same(t, &tds.Items[0], viaClient[0], "the objects are the list's items")
	inPlace, err := cacheview.List(ctx, v, c, &ecsv1alpha1.TaskDefinitionList{}, "default")
	require.NoError(t, err)
	requireSameObjects(t, list, inPlace, "with a View, List reads in place")

	require.NoError(t, c.Delete(ctx, taskDefinition("default", "batch")))
	require.Eventually(t, func() bool {
		list, err := v.List("default")
		return err == nil && len(list) == 1 && list[0].Name == "web"
	}, 10*time.Second, 50*time.Millisecond, "a View sees what the cache sees")
}

func TestViewNeedsAnIndexer(t *testing.T) {
	// A cache of several namespaces keeps one informer per namespace, with no single indexer.
	cfg := framework.Start(t, framework.WithoutControllers()).Config
	informers, err := cache.New(cfg, cache.Options{Scheme: manager.Scheme, DefaultNamespaces: map[string]cache.Config{"a": {}, "b": {}}})
	require.NoError(t, err)
	_, err = cacheview.New(t.Context(), informers, &ecsv1alpha1.TaskDefinition{})
	require.ErrorContains(t, err, "TaskDefinition")
}
