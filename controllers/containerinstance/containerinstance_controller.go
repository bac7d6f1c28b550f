package containerinstance

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/liveness"
)

// DefaultGracePeriod is how long an instance may go without renewing its Lease before it is
// marked disconnected. Agents renew every 5 s, so a dead host is noticed within about 10 s.
const DefaultGracePeriod = 10 * time.Second

// +kubebuilder:rbac:groups=ecs.drover.dev,resources=containerinstances,verbs=get;list;watch
// +kubebuilder:rbac:groups=ecs.drover.dev,resources=containerinstances/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;delete

// Reconciler keeps ContainerInstance.status.agentConnected in step with the instance's Lease.
type Reconciler struct {
	client.Client
	// APIReader reads from the API server, bypassing the cache.
	APIReader client.Reader
	Recorder  record.EventRecorder
	// GracePeriod is DefaultGracePeriod when zero.
	GracePeriod time.Duration
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// StartedAt is when the controller began its work; its first reconcile when zero. An instance
	// that was connected then gets a full grace period from then: while the control plane was
	// down or changing leader no renewal could arrive, and a restart must not disconnect every
	// instance whose renewal fell in that gap.
	StartedAt time.Time
	// Renewals holds renewals droverd kept in memory instead of writing them to the Lease; the
	// later of the two counts. Nil reads the Lease alone.
	Renewals *liveness.Renewals

	startOnce sync.Once
}

// Setup adds the reconciler to mgr; renewals may be nil.
func Setup(mgr ctrl.Manager, renewals *liveness.Renewals) error {
	return (&Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorderFor("containerinstance-controller"),
		Renewals: renewals}).SetupWithManager(mgr)
}

// SetupWithManager registers the reconciler; a Lease maps to the instance of the same name.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&ecsv1alpha1.ContainerInstance{}).
		Watches(&coordinationv1.Lease{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}}}
		}))
	if r.Renewals != nil {
		// A renewal kept in memory that the controller may not know of (the first droverd holds,
		// or one after a gap, when the instance may be marked disconnected) moves no watch; the
		// record tells the controller instead, and is then spared the Lease write.
		b = b.WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			r.Renewals.OnReturn(func(key types.NamespacedName) { q.Add(reconcile.Request{NamespacedName: key}) })
			return nil
		}))
	}
	return b.Named("containerinstance").
		// Instances are independent, and when many connect at once (droverd restarted, a site's
		// network back) each needs one status write: one at a time took 10 s for 1,000 instances.
		WithOptions(controller.Options{MaxConcurrentReconciles: 8}).
		Complete(r)
}

// Reconcile compares the Lease's last renewal with the grace period and records any change.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ci := &ecsv1alpha1.ContainerInstance{}
	if err := r.Get(ctx, req.NamespacedName, ci); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.deleteOrphanLease(ctx, req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	if !ci.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	lease := &coordinationv1.Lease{}
	var renewed *metav1.Time
	switch err := r.Get(ctx, req.NamespacedName, lease); {
	case err == nil:
		if lease.Spec.RenewTime != nil {
			renewed = &metav1.Time{Time: lease.Spec.RenewTime.Time}
		} else if lease.Spec.AcquireTime != nil {
			renewed = &metav1.Time{Time: lease.Spec.AcquireTime.Time}
		}
		// A renewal kept in memory moves no watch: the requeue below looks again when the Lease
		// would expire, and finds it here; a first one or one after a gap is told of through
		// Renewals.OnReturn.
		var stored time.Time
		if renewed != nil {
			stored = renewed.Time
		}
		if kept, ok := r.Renewals.Newer(req.NamespacedName, lease.UID, stored); ok {
			renewed = &metav1.Time{Time: kept}
		}
	case !apierrors.IsNotFound(err):
		return ctrl.Result{}, err
	}
	grace := r.GracePeriod
	if grace == 0 {
		grace = DefaultGracePeriod
	}
	now := r.now()
	r.startOnce.Do(func() {
		if r.StartedAt.IsZero() {
			r.StartedAt = now
		}
	})
	// alive is the renewal connectivity is judged by: the Lease's, or for an instance connected
	// when the controller started, at least that start.
	var alive time.Time
	if renewed != nil {
		alive = renewed.Time
		if ci.Status.AgentConnected && alive.Before(r.StartedAt) {
			alive = r.StartedAt
		}
	}
	connected := renewed != nil && now.Sub(alive) <= grace

	before := ci.DeepCopy()
	cond := metav1.Condition{Type: ecsv1alpha1.ContainerInstanceConditionConnected, ObservedGeneration: ci.Generation}
	switch {
	case connected:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, "HeartbeatReceived", "the agent renews its heartbeat lease"
	case renewed == nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "NoHeartbeat", "the agent has never renewed its heartbeat lease"
	default:
		cond.Status, cond.Reason = metav1.ConditionFalse, "HeartbeatMissed"
		cond.Message = fmt.Sprintf("no heartbeat since %s (grace period %s)", renewed.UTC().Format(time.RFC3339), grace)
	}
	changed := ci.Status.AgentConnected != connected
	ci.Status.AgentConnected = connected
	if changed || ci.Status.LastHeartbeatTime == nil {
		ci.Status.LastHeartbeatTime = renewed
	}
	meta.SetStatusCondition(&ci.Status.Conditions, cond)
	if changed || !meta.IsStatusConditionPresentAndEqual(before.Status.Conditions, cond.Type, cond.Status) {
		if err := r.Status().Patch(ctx, ci, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		if changed && connected {
			r.Recorder.Eventf(ci, corev1.EventTypeNormal, "Connected", "Container instance %s is connected", ci.Name)
		} else if changed {
			r.Recorder.Eventf(ci, corev1.EventTypeWarning, "Disconnected", "Container instance %s is disconnected: %s", ci.Name, cond.Message)
		}
	}
	if connected {
		// Look again just after the lease would expire without another renewal.
		return ctrl.Result{RequeueAfter: alive.Add(grace).Sub(now) + 100*time.Millisecond}, nil
	}
	return ctrl.Result{}, nil
}

// deleteOrphanLease removes the heartbeat Lease of a deregistered instance. Only a Lease owned by
// a ContainerInstance of that name is touched.
func (r *Reconciler) deleteOrphanLease(ctx context.Context, key types.NamespacedName) error {
	lease := &coordinationv1.Lease{}
	if err := r.Get(ctx, key, lease); err != nil {
		return client.IgnoreNotFound(err)
	}
	for _, ref := range lease.OwnerReferences {
		if ref.Kind != "ContainerInstance" || ref.Name != key.Name || ref.APIVersion != ecsv1alpha1.GroupVersion.String() {
			continue
		}
		// The cache may not have seen an instance registered a moment ago: only a live read that
		// finds no instance with the owner's UID makes the Lease an orphan.
		ci := &ecsv1alpha1.ContainerInstance{}
		err := r.APIReader.Get(ctx, key, ci)
		if err == nil && ci.UID == ref.UID {
			return nil
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return client.IgnoreNotFound(r.Delete(ctx, lease, client.Preconditions{UID: &lease.UID}))
	}
	return nil
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
