package integration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/drover-dev/drover/test/framework"
)

func TestNamespaceLifecycle(t *testing.T) {
	s := framework.Start(t, framework.WithoutControllers())
	kube, err := kubernetes.NewForConfig(s.Config)
	require.NoError(t, err)
	ctx := t.Context()

	_, err = kube.CoordinationV1().Leases("missing").Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "l"}}, metav1.CreateOptions{})
	require.True(t, apierrors.IsNotFound(err), "create in a missing namespace: %v", err)
	require.Contains(t, err.Error(), `namespaces "missing" not found`)

	_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	for _, name := range []string{"a", "b", "c"} {
		_, err = kube.CoordinationV1().Leases("team-a").Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, kube.CoreV1().Namespaces().Delete(ctx, "team-a", metav1.DeleteOptions{}))

	require.Eventually(t, func() bool {
		_, err := kube.CoreV1().Namespaces().Get(ctx, "team-a", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, time.Minute, 100*time.Millisecond, "namespace team-a is removed once empty")
	leases, err := kube.CoordinationV1().Leases("team-a").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, leases.Items, "objects in a deleted namespace are removed")

	// A namespace stays Terminating while an object in it has a finalizer, and refuses new objects.
	_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.CoordinationV1().Leases("team-b").Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
		Name: "held", Finalizers: []string{"example.com/hold"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, kube.CoreV1().Namespaces().Delete(ctx, "team-b", metav1.DeleteOptions{}))
	ns, err := kube.CoreV1().Namespaces().Get(ctx, "team-b", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, corev1.NamespaceTerminating, ns.Status.Phase)
	// Admission reads namespaces from the watch cache, as Kubernetes' does, so a create in the
	// moment after the delete may still pass (the namespace controller then removes it); it is
	// refused as soon as the cache has seen the delete.
	require.Eventually(t, func() bool {
		_, err = kube.CoordinationV1().Leases("team-b").Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{GenerateName: "late-"}}, metav1.CreateOptions{})
		return apierrors.IsForbidden(err)
	}, 10*time.Second, 50*time.Millisecond, "create in a terminating namespace: %v", err)
	require.Contains(t, err.Error(), "being terminated")
	require.Eventually(t, func() bool {
		l, err := kube.CoordinationV1().Leases("team-b").Get(ctx, "held", metav1.GetOptions{})
		return err == nil && l.DeletionTimestamp != nil
	}, time.Minute, 100*time.Millisecond, "the namespace controller deletes the held lease")
	l, err := kube.CoordinationV1().Leases("team-b").Get(ctx, "held", metav1.GetOptions{})
	require.NoError(t, err)
	l.Finalizers = nil
	_, err = kube.CoordinationV1().Leases("team-b").Update(ctx, l, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := kube.CoreV1().Namespaces().Get(ctx, "team-b", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, time.Minute, 100*time.Millisecond, "namespace team-b is removed once its last object is gone")

	err = kube.CoreV1().Namespaces().Delete(ctx, "default", metav1.DeleteOptions{})
	require.True(t, apierrors.IsForbidden(err), "deleting default: %v", err)
	ns, err = kube.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, corev1.NamespaceActive, ns.Status.Phase)
}
