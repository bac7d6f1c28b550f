package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/drover-dev/drover/internal/apiserver/builtin"
	"github.com/drover-dev/drover/internal/manager"
	"github.com/drover-dev/drover/test/framework"
)

// TestDataSurvivesSIGKILL creates objects, kills droverd with SIGKILL, restarts it on the same data
// dir and finds every object unchanged, with the same resourceVersion.
func TestDataSurvivesSIGKILL(t *testing.T) {
	o := framework.NewOptions(t, framework.WithoutControllers())
	p := framework.StartProcess(t, o)
	ctx := t.Context()

	type saved struct {
		obj *unstructured.Unstructured
		rv  string
	}
	var objs []saved
	for _, u := range samples(t) {
		require.NoError(t, p.Client.Create(ctx, u), "creating %s %s", u.GetKind(), u.GetName())
		objs = append(objs, saved{obj: u.DeepCopy(), rv: u.GetResourceVersion()})
	}
	p.Kill(t)

	p2 := framework.StartProcess(t, o)
	for _, s := range objs {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(s.obj.GroupVersionKind())
		require.NoError(t, p2.Client.Get(ctx, client.ObjectKeyFromObject(s.obj), got), "%s %s after restart", s.obj.GetKind(), s.obj.GetName())
		require.Equal(t, s.rv, got.GetResourceVersion(), "%s %s resourceVersion", s.obj.GetKind(), s.obj.GetName())
		require.Equal(t, s.obj.Object["spec"], got.Object["spec"], "%s %s spec", s.obj.GetKind(), s.obj.GetName())
		require.Equal(t, s.obj.GetUID(), got.GetUID())
	}

	// Optimistic concurrency: an update based on a stale resourceVersion is refused with 409.
	first := objs[0].obj
	fresh := &unstructured.Unstructured{}
	fresh.SetGroupVersionKind(first.GroupVersionKind())
	require.NoError(t, p2.Client.Get(ctx, client.ObjectKeyFromObject(first), fresh))
	fresh.SetLabels(map[string]string{"edited": "yes"})
	require.NoError(t, p2.Client.Update(ctx, fresh))
	stale := objs[0].obj.DeepCopy() // still carries the resourceVersion from before the edit
	stale.SetLabels(map[string]string{"edited": "stale"})
	err := p2.Client.Update(ctx, stale)
	require.True(t, apierrors.IsConflict(err), "stale update: %v", err)
	final := &unstructured.Unstructured{}
	final.SetGroupVersionKind(first.GroupVersionKind())
	require.NoError(t, p2.Client.Get(ctx, types.NamespacedName{Namespace: first.GetNamespace(), Name: first.GetName()}, final))
	require.Equal(t, "yes", final.GetLabels()["edited"], "the stale update changed nothing")

	// SIGTERM shuts down cleanly.
	require.NoError(t, p2.Stop(t, time.Minute))
}

// TestSIGTERMReleasesTheControllersLease: droverd stops its controllers before its API on SIGTERM,
// so the leader hands its Lease back and the next droverd leads at once instead of waiting for the
// Lease to expire.
func TestSIGTERMReleasesTheControllersLease(t *testing.T) {
	o := framework.NewOptions(t)
	p := framework.StartProcess(t, o)
	ctx := t.Context()
	key := types.NamespacedName{Namespace: builtin.SystemNamespace, Name: manager.LeaderElectionID}
	lease := &coordinationv1.Lease{}
	require.Eventually(t, func() bool {
		return p.Client.Get(ctx, key, lease) == nil && ptr.Deref(lease.Spec.HolderIdentity, "") != ""
	}, time.Minute, 100*time.Millisecond, "the controllers hold the leader Lease")
	require.NoError(t, p.Stop(t, time.Minute))

	o.Controllers = false
	p2 := framework.StartProcess(t, o)
	require.NoError(t, p2.Client.Get(ctx, key, lease))
	require.Empty(t, ptr.Deref(lease.Spec.HolderIdentity, ""), "the Lease was released on SIGTERM: %+v", lease.Spec)
}
