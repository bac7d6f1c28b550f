package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/droverd"
	"github.com/drover-dev/drover/test/framework"
)

// heartbeatHost is one registered instance whose Lease the test renews as the instance itself,
// the way drover-agent does: an UPDATE of the Lease it last read or wrote.
type heartbeatHost struct {
	t      *testing.T
	admin  client.Client
	c      client.Client
	ci     *ecsv1alpha1.ContainerInstance
	lease  *coordinationv1.Lease
	writes []string // the resourceVersions the renewals returned
}

// newHeartbeatHost registers an instance with a Lease it owns, as registration does, and waits
// until the controller shows it connected.
func newHeartbeatHost(t *testing.T, s *framework.Server, name string) *heartbeatHost {
	t.Helper()
	h := registerHeartbeatHost(t, s, name)
	h.waitConnected(true, 30*time.Second)
	return h
}

// registerHeartbeatHost registers an instance with a Lease it owns, as registration does.
func registerHeartbeatHost(t *testing.T, s *framework.Server, name string) *heartbeatHost {
	t.Helper()
	ctx := t.Context()
	ci := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: ecsv1alpha1.ContainerInstanceSpec{Cluster: "stores"}}
	require.NoError(t, s.Client.Create(ctx, ci))
	now := metav1.NewMicroTime(time.Now())
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: ecsv1alpha1.GroupVersion.String(), Kind: "ContainerInstance", Name: name, UID: ci.UID}}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](10), RenewTime: &now},
	}
	require.NoError(t, s.Client.Create(ctx, lease))
	return &heartbeatHost{t: t, admin: s.Client, c: instanceClient(t, s, ci), ci: ci, lease: lease}
}

// renew sends one renewal and returns the renewal time it sent.
func (h *heartbeatHost) renew() time.Time {
	h.t.Helper()
	now := metav1.NewMicroTime(time.Now())
	l := h.lease.DeepCopy()
	l.Spec.RenewTime = &now
	require.NoError(h.t, h.c.Update(h.t.Context(), l), "renewing the Lease of %s", h.ci.Name)
	h.lease = l
	h.writes = append(h.writes, l.ResourceVersion)
	return l.Spec.RenewTime.Time // as the API holds it, to the microsecond
}

// stored returns the Lease as droverd serves it.
func (h *heartbeatHost) stored() *coordinationv1.Lease {
	h.t.Helper()
	l := &coordinationv1.Lease{}
	require.NoError(h.t, h.admin.Get(h.t.Context(), client.ObjectKeyFromObject(h.lease), l))
	return l
}

func (h *heartbeatHost) instance() *ecsv1alpha1.ContainerInstance {
	h.t.Helper()
	ci := &ecsv1alpha1.ContainerInstance{}
	require.NoError(h.t, h.admin.Get(h.t.Context(), client.ObjectKeyFromObject(h.ci), ci))
	return ci
}

func (h *heartbeatHost) waitConnected(connected bool, timeout time.Duration) *ecsv1alpha1.ContainerInstance {
	h.t.Helper()
	var ci *ecsv1alpha1.ContainerInstance
	require.Eventually(h.t, func() bool {
		ci = h.instance()
		return ci.Status.AgentConnected == connected
	}, timeout, 50*time.Millisecond, "instance %s connected=%v", h.ci.Name, connected)
	return ci
}

// distinct counts the different resourceVersions in rvs.
func distinct(rvs []string) int {
	seen := map[string]bool{}
	for _, rv := range rvs {
		seen[rv] = true
	}
	return len(seen)
}

func withHeartbeatPersistInterval(d time.Duration) framework.Option {
	return func(o *droverd.Options) { o.HeartbeatPersistInterval = d }
}

// TestHeartbeatsAreKeptInMemoryWhileControllersLead: a renewal that only moves renewTime writes
// nothing to storage while droverd's controllers lead, yet reads show it and the controller keeps
// the instance connected on it alone; a dead host is still noticed within the grace period, and
// seen back at its first renewal after.
func TestHeartbeatsAreKeptInMemoryWhileControllersLead(t *testing.T) {
	t.Parallel() // mostly waiting between renewals
	s := framework.Start(t, withHeartbeatPersistInterval(time.Hour))
	h := newHeartbeatHost(t, s, "store-1")

	// For longer than the 10 s grace period, renewals are not written (the first two may be, while
	// the instance's client takes renewTime over), and the instance stays connected.
	var last time.Time
	end := time.Now().Add(14 * time.Second)
	for time.Now().Before(end) {
		last = h.renew()
		require.True(t, h.instance().Status.AgentConnected, "instance disconnected while it renewed its Lease")
		time.Sleep(time.Second)
	}
	later := h.writes[2:]
	require.Equal(t, 1, distinct(later), "renewals that only move renewTime must not be written: resourceVersions %v", h.writes)
	got := h.stored()
	require.Equal(t, later[0], got.ResourceVersion)
	require.True(t, got.Spec.RenewTime.Time.Equal(last), "a GET shows the latest renewal %s, got %s", last, got.Spec.RenewTime.Time)
	list := &coordinationv1.LeaseList{}
	require.NoError(t, s.Client.List(t.Context(), list, client.InNamespace("default")))
	require.Len(t, list.Items, 1)
	require.True(t, list.Items[0].Spec.RenewTime.Time.Equal(last), "a LIST shows the latest renewal")

	// Any other change is written.
	before := h.lease.ResourceVersion
	changed := h.lease.DeepCopy()
	changed.Spec.LeaseDurationSeconds = ptr.To[int32](20)
	require.NoError(t, h.c.Update(t.Context(), changed))
	require.NotEqual(t, before, changed.ResourceVersion, "a change beyond renewTime is written")
	h.lease = changed

	// A renewal with a stale resourceVersion, the one before that change, conflicts as any update
	// would, and changes nothing.
	stale := h.lease.DeepCopy()
	stale.ResourceVersion = before
	stale.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
	err := h.c.Update(t.Context(), stale)
	require.True(t, apierrors.IsConflict(err), "a stale resourceVersion must conflict: %v", err)
	require.True(t, h.stored().Spec.RenewTime.Time.Equal(last), "a refused renewal changes nothing")

	// The host dies: it is marked disconnected from its last renewal, which only memory held.
	last = h.renew()
	ci := h.waitConnected(false, 30*time.Second)
	cond := meta.FindStatusCondition(ci.Status.Conditions, ecsv1alpha1.ContainerInstanceConditionConnected)
	require.NotNil(t, cond)
	require.Contains(t, cond.Message, fmt.Sprintf("no heartbeat since %s", last.UTC().Format(time.RFC3339)))

	// It comes back: the renewal after the gap is kept in memory too, and the controller, told of
	// it instead of a watch event, marks the instance connected at once (a disconnected instance
	// is not looked at again otherwise).
	before = h.lease.ResourceVersion
	h.renew()
	require.Equal(t, before, h.lease.ResourceVersion, "a renewal after a gap of the grace period is kept in memory")
	h.waitConnected(true, 5*time.Second)
}

// TestHeartbeatsAreWrittenAtLeastEveryPersistInterval: what etcd holds falls behind the latest
// renewal by at most --heartbeat-persist-interval.
func TestHeartbeatsAreWrittenAtLeastEveryPersistInterval(t *testing.T) {
	t.Parallel() // mostly waiting between renewals
	s := framework.Start(t, withHeartbeatPersistInterval(2*time.Second))
	h := newHeartbeatHost(t, s, "store-1")
	start := time.Now()
	for time.Since(start) < 7*time.Second {
		h.renew()
		time.Sleep(250 * time.Millisecond)
	}
	// About 28 renewals over 7 s: the first is written, then about one every 2 s.
	n := distinct(h.writes)
	require.GreaterOrEqual(t, n, 3, "renewals written: %v", h.writes)
	require.LessOrEqual(t, n, 6, "renewals written: %v", h.writes)
}

// TestHeartbeatsAreWrittenWithoutControllers: a droverd that does not run the controllers, and so
// cannot tell them of renewals it holds, writes every one.
func TestHeartbeatsAreWrittenWithoutControllers(t *testing.T) {
	t.Parallel() // mostly waiting between renewals
	s := framework.Start(t, framework.WithoutControllers())
	h := registerHeartbeatHost(t, s, "store-1")
	for range 4 {
		h.renew()
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, 4, distinct(h.writes), "every renewal is written: %v", h.writes)
}
