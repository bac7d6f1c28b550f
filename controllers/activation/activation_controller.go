package activation

import (
	"context"
	"fmt"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// +kubebuilder:rbac:groups=ecs.drover.dev,resources=activations,verbs=get;list;watch
// +kubebuilder:rbac:groups=ecs.drover.dev,resources=activations/status,verbs=get;update;patch

// Reconciler keeps an Activation's expired flag and Ready condition.
type Reconciler struct {
	client.Client
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

// Setup adds the reconciler to mgr.
func Setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).For(&ecsv1alpha1.Activation{}).Named("activation").Complete(&Reconciler{Client: mgr.GetClient()})
}

// Reconcile sets status.expired and the Ready condition. It writes them with a merge patch that
// carries only those fields: registration owns status.registrationsCount.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	act := &ecsv1alpha1.Activation{}
	if err := r.Get(ctx, req.NamespacedName, act); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	before := act.DeepCopy()
	limit := act.Spec.RegistrationLimit
	if limit == 0 {
		limit = 1
	}
	cond := metav1.Condition{Type: ecsv1alpha1.ActivationConditionReady, ObservedGeneration: act.Generation}
	left := act.Spec.ExpiresAt.Sub(now)
	act.Status.Expired = left <= 0
	switch {
	case act.Status.Expired:
		cond.Status, cond.Reason = metav1.ConditionFalse, ecsv1alpha1.ActivationReasonExpired
		cond.Message = "the activation expired at " + act.Spec.ExpiresAt.UTC().Format(time.RFC3339)
	case act.Status.RegistrationsCount >= limit:
		cond.Status, cond.Reason = metav1.ConditionFalse, ecsv1alpha1.ActivationReasonLimitReached
		cond.Message = fmt.Sprintf("all %d registrations are used", limit)
	default:
		cond.Status, cond.Reason = metav1.ConditionTrue, ecsv1alpha1.ActivationReasonUsable
		cond.Message = fmt.Sprintf("%d of %d registrations left", limit-act.Status.RegistrationsCount, limit)
	}
	meta.SetStatusCondition(&act.Status.Conditions, cond)
	if !apiequality.Semantic.DeepEqual(before.Status, act.Status) {
		if err := r.Status().Patch(ctx, act, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	if left > 0 {
		return ctrl.Result{RequeueAfter: left + time.Second}, nil
	}
	return ctrl.Result{}, nil
}
