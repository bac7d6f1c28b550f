package agent

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// TestReadForWriteFallsBackToEtcd: droverd's watch cache can lag behind etcd (an object created a
// moment ago, a write it has not seen yet). Which copy the agent gets is decided here; the lag is
// simulated, as a real server's cannot be made to lag on demand.
func TestReadForWriteFallsBackToEtcd(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, coordinationv1.AddToScheme(scheme))
	key := client.ObjectKey{Namespace: "default", Name: "host-1"}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	fromCache := func(opts []client.GetOption) bool {
		o := &client.GetOptions{}
		o.ApplyOptions(opts)
		return o.Raw != nil && o.Raw.ResourceVersion == "0"
	}
	withCache := func(cached func(obj client.Object) error) client.Client {
		return fake.NewClientBuilder().WithScheme(scheme).WithObjects(lease.DeepCopy()).WithInterceptorFuncs(interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				if fromCache(opts) {
					return cached(obj)
				}
				return c.Get(ctx, key, obj)
			},
		}).Build()
	}
	ctx := t.Context()

	// The cache has not seen the Lease yet: the read goes on to etcd instead of reporting it gone.
	notYet := withCache(func(client.Object) error {
		return apierrors.NewNotFound(coordinationv1.Resource("leases"), key.Name)
	})
	got := &coordinationv1.Lease{}
	require.NoError(t, readForWrite(ctx, notYet, key, got, 1))
	require.Equal(t, key.Name, got.Name)

	// The cache has an older copy: the first attempt takes it, a retry after a conflict reads etcd.
	stale := withCache(func(obj client.Object) error {
		old := lease.DeepCopy()
		old.ResourceVersion = "1"
		old.DeepCopyInto(obj.(*coordinationv1.Lease))
		return nil
	})
	first, retry := &coordinationv1.Lease{}, &coordinationv1.Lease{}
	require.NoError(t, readForWrite(ctx, stale, key, first, 1))
	require.NoError(t, readForWrite(ctx, stale, key, retry, 2))
	require.Equal(t, "1", first.ResourceVersion, "the first attempt reads the cache")
	require.NotEqual(t, "1", retry.ResourceVersion, "a retry reads etcd")
}
