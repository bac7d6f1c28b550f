package containerinstance_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/controllers/containerinstance"
	"github.com/drover-dev/drover/test/framework"
)

// TestConnectionFollowsTheLease stops renewing an instance's heartbeat Lease and expects the
// instance to be marked disconnected within the grace period, then connected again on renewal.
func TestConnectionFollowsTheLease(t *testing.T) {
	s := framework.Start(t)
	c, ctx := s.Client, t.Context()
	const ns = "default"
	require.NoError(t, c.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "stores", Namespace: ns}}))
	agents := framework.StartSimulatedAgents(t, c, ns, "stores", framework.SimulatedInstance{Name: "quiet", CPU: 1024, Memory: 1024})
	key := client.ObjectKey{Namespace: ns, Name: "quiet"}
	ci := &ecsv1alpha1.ContainerInstance{}
	connected := func(want bool) func() bool {
		return func() bool {
			require.NoError(t, c.Get(ctx, key, ci))
			return ci.Status.AgentConnected == want &&
				meta.IsStatusConditionPresentAndEqual(ci.Status.Conditions, ecsv1alpha1.ContainerInstanceConditionConnected, boolStatus(want))
		}
	}
	require.Eventually(t, connected(true), 30*time.Second, 50*time.Millisecond)

	// The agent goes quiet: its Lease was last renewed 11 s ago, just past the 10 s grace period.
	start := time.Now()
	agents.Disconnect(t, "quiet", 11*time.Second) // returns once the instance is reported disconnected
	require.Less(t, time.Since(start), 15*time.Second, "a dead host is noticed within 15 s")
	require.True(t, connected(false)())
	require.Eventually(t, func() bool { return hasEvent(t, c, ns, "quiet", "Disconnected") }, 10*time.Second, 50*time.Millisecond)

	// The next renewal reconnects it, without a new registration.
	agents.Reconnect(t, "quiet")
	require.Eventually(t, connected(true), 15*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool { return hasEvent(t, c, ns, "quiet", "Connected") }, 10*time.Second, 50*time.Millisecond)
}

func boolStatus(b bool) metav1.ConditionStatus {
	if b {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}

func hasEvent(t *testing.T, c client.Client, ns, name, reason string) bool {
	events := &corev1.EventList{}
	require.NoError(t, c.List(t.Context(), events, client.InNamespace(ns)))
	for _, e := range events.Items {
		if e.InvolvedObject.Kind == "ContainerInstance" && e.InvolvedObject.Name == name && e.Reason == reason {
			return true
		}
	}
	return false
}

// TestARestartDisconnectsNoInstance: no renewal can arrive while the control plane is down, so an
// instance that was connected when the controller started gets a full grace period from that start
// before it is marked disconnected; one already disconnected stays so.
func TestARestartDisconnectsNoInstance(t *testing.T) {
	s := framework.Start(t, framework.WithoutControllers())
	c, ctx := s.Client, t.Context()
	const ns = "default"
	lastRenewal := time.Now().Add(-time.Minute).Truncate(time.Second)
	for _, in := range []struct {
		name      string
		connected bool
	}{{"was-connected", true}, {"was-gone", false}} {
		require.NoError(t, c.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: in.name, Namespace: ns},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(in.name), LeaseDurationSeconds: ptr.To[int32](10),
				RenewTime: &metav1.MicroTime{Time: lastRenewal}},
		}))
		ci := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: in.name, Namespace: ns},
			Spec: ecsv1alpha1.ContainerInstanceSpec{Cluster: "stores"}}
		require.NoError(t, c.Create(ctx, ci))
		ci.Status.AgentConnected = in.connected
		require.NoError(t, c.Status().Update(ctx, ci))
	}
	// The controller starts 50 s after the last renewals, as after a long control-plane outage.
	now := lastRenewal.Add(50 * time.Second)
	r := &containerinstance.Reconciler{Client: c, APIReader: c, Recorder: record.NewFakeRecorder(10),
		Now: func() time.Time { return now }}
	connected := func(name string) bool {
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}})
		require.NoError(t, err)
		ci := &ecsv1alpha1.ContainerInstance{}
		require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, ci))
		return ci.Status.AgentConnected
	}
	require.True(t, connected("was-connected"), "its agent had no server to renew with")
	require.False(t, connected("was-gone"))
	now = now.Add(9 * time.Second)
	require.True(t, connected("was-connected"), "still within the grace period from the start")
	now = now.Add(2 * time.Second)
	require.False(t, connected("was-connected"), "no renewal for a grace period after the start")
}
