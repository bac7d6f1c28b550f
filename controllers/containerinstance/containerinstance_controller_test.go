package containerinstance_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
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
