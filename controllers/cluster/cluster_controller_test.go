package cluster_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/controllers/cluster"
	"github.com/drover-dev/drover/test/framework"
)

// TestCountsAndConnectedInstanceSeconds drives the reconciler with a controlled clock against the
// real API server: two connected instances for 90 s are 180 connected instance-seconds, and a
// disconnected one stops adding.
func TestCountsAndConnectedInstanceSeconds(t *testing.T) {
	s := framework.Start(t, framework.WithoutControllers())
	c, ctx := s.Client, t.Context()
	const ns = "default"
	require.NoError(t, c.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "stores", Namespace: ns}}))
	framework.StartSimulatedAgents(t, c, ns, "stores",
		framework.SimulatedInstance{Name: "a", CPU: 1024, Memory: 1024},
		framework.SimulatedInstance{Name: "b", CPU: 1024, Memory: 1024})
	require.NoError(t, c.Create(ctx, &ecsv1alpha1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec:       ecsv1alpha1.ServiceSpec{Cluster: "stores", TaskDefinition: "web"},
	}))

	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	r := &cluster.Reconciler{Client: c, Now: func() time.Time { return now }, MinInterval: -1}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "stores"}}
	get := func() *ecsv1alpha1.Cluster {
		cl := &ecsv1alpha1.Cluster{}
		require.NoError(t, c.Get(ctx, req.NamespacedName, cl))
		return cl
	}
	_, err := r.Reconcile(ctx, req)
	require.NoError(t, err)
	cl := get()
	require.EqualValues(t, 2, cl.Status.RegisteredContainerInstancesCount)
	require.EqualValues(t, 2, cl.Status.ConnectedContainerInstancesCount)
	require.EqualValues(t, 1, cl.Status.ActiveServicesCount)
	require.EqualValues(t, 0, cl.Status.ConnectedInstanceSeconds)
	require.True(t, meta.IsStatusConditionTrue(cl.Status.Conditions, ecsv1alpha1.ClusterConditionInstancesConnected))

	now = now.Add(90 * time.Second)
	_, err = r.Reconcile(ctx, req)
	require.NoError(t, err)
	require.EqualValues(t, 180, get().Status.ConnectedInstanceSeconds)

	// Instance b disconnects: from now on only a counts.
	b := &ecsv1alpha1.ContainerInstance{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "b"}, b))
	b.Status.AgentConnected = false
	require.NoError(t, c.Status().Update(ctx, b))
	now = now.Add(30 * time.Second)
	_, err = r.Reconcile(ctx, req) // the 30 s before this pass were with both connected
	require.NoError(t, err)
	cl = get()
	require.EqualValues(t, 240, cl.Status.ConnectedInstanceSeconds)
	require.EqualValues(t, 1, cl.Status.ConnectedContainerInstancesCount)
	require.False(t, meta.IsStatusConditionTrue(cl.Status.Conditions, ecsv1alpha1.ClusterConditionInstancesConnected))
	now = now.Add(60 * time.Second)
	_, err = r.Reconcile(ctx, req)
	require.NoError(t, err)
	require.EqualValues(t, 300, get().Status.ConnectedInstanceSeconds)
}
