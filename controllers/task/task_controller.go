package task

import (
	"context"
	"errors"
	"fmt"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/revisions"
)

// DefaultStoppedTaskRetention is how long a stopped task stays visible before it is deleted.
const DefaultStoppedTaskRetention = time.Hour

// resolveRetry is how soon a task whose task definition is missing is looked at again.
const resolveRetry = 10 * time.Second

// +kubebuilder:rbac:groups=ecs.drover.dev,resources=tasks,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=ecs.drover.dev,resources=tasks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=ecs.drover.dev,resources=taskdefinitions;taskdefinitionrevisions;containerinstances,verbs=get;list;watch

// Reconciler drives a task through what the control plane owns of its life.
type Reconciler struct {
	client.Client
	// APIReader reads from the API server, bypassing the cache.
	APIReader client.Reader
	Recorder  record.EventRecorder
	// StoppedTaskRetention is how long a STOPPED task is kept; DefaultStoppedTaskRetention when zero.
	StoppedTaskRetention time.Duration
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

// Setup adds the reconciler to mgr.
func Setup(mgr ctrl.Manager) error {
	return (&Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorderFor("task-controller")}).SetupWithManager(mgr)
}

// SetupWithManager registers the reconciler.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	// Tasks are independent of each other, and each pass is one round trip: several at once keep
	// resolution from becoming the bottleneck of placement.
	return ctrl.NewControllerManagedBy(mgr).For(&ecsv1alpha1.Task{}).Named("task").
		WithOptions(controller.Options{MaxConcurrentReconciles: 8}).Complete(r)
}

// Reconcile makes at most one write: resolve the spec, stop the task, or delete it.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	task := &ecsv1alpha1.Task{}
	if err := r.Get(ctx, req.NamespacedName, task); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !task.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	if task.Status.LastStatus == ecsv1alpha1.TaskStateStopped {
		return r.reconcileStopped(ctx, task)
	}
	if task.Spec.DesiredStatus == ecsv1alpha1.TaskDesiredStopped && task.Spec.ContainerInstance == "" {
		// No agent will ever see this task: it stops here, stopped by whoever set desiredStatus.
		code := task.Status.StopCode
		if code == "" {
			code = ecsv1alpha1.StopCodeUserInitiated
			if task.Labels[ecsv1alpha1.LabelService] != "" {
				code = ecsv1alpha1.StopCodeServiceSchedulerInitiated
			}
		}
		return ctrl.Result{}, r.markStopped(ctx, task, code, stoppedReasonOr(task, "Task stopped before it was placed"))
	}
	if task.Spec.ContainerInstance != "" {
		gone, err := r.instanceGone(ctx, task)
		if err != nil || gone {
			if err == nil {
				err = r.markStopped(ctx, task, ecsv1alpha1.StopCodeTaskFailedToStart,
					fmt.Sprintf("Container instance %s was deregistered", task.Spec.ContainerInstance))
			}
			return ctrl.Result{}, err
		}
	}
	if task.Spec.TaskDefinitionRevision == "" || len(task.Spec.Containers) == 0 {
		return r.resolve(ctx, task)
	}
	// A task that once failed to resolve says so in its Resolved condition; now it is resolved.
	if c := meta.FindStatusCondition(task.Status.Conditions, ecsv1alpha1.TaskConditionResolved); c != nil && c.Status != metav1.ConditionTrue {
		return ctrl.Result{}, r.setCondition(ctx, task, ecsv1alpha1.TaskConditionResolved, metav1.ConditionTrue,
			ecsv1alpha1.TaskReasonResolved, "runs revision "+task.Spec.TaskDefinitionRevision)
	}
	// Likewise a task that waited for an instance, once it is bound to one. Tasks placed at the
	// first try carry no Placed condition and cost no write.
	if c := meta.FindStatusCondition(task.Status.Conditions, ecsv1alpha1.TaskConditionPlaced); c != nil && c.Status != metav1.ConditionTrue &&
		task.Spec.ContainerInstance != "" {
		return ctrl.Result{}, r.setCondition(ctx, task, ecsv1alpha1.TaskConditionPlaced, metav1.ConditionTrue,
			ecsv1alpha1.TaskReasonPlaced, "placed on container instance "+task.Spec.ContainerInstance)
	}
	return ctrl.Result{}, nil
}

// resolve copies the task's revision into its spec.
func (r *Reconciler) resolve(ctx context.Context, task *ecsv1alpha1.Task) (ctrl.Result, error) {
	ref := task.Spec.TaskDefinition
	if task.Spec.TaskDefinitionRevision != "" {
		if family, n, err := ecsv1alpha1.ParseRevisionName(task.Spec.TaskDefinitionRevision); err == nil {
			ref = ecsv1alpha1.TaskDefinitionRef(family, n)
		}
	}
	rev, err := revisions.Resolve(ctx, r.Client, task.Namespace, ref)
	var nf *revisions.NotFoundError
	if errors.As(err, &nf) {
		return ctrl.Result{RequeueAfter: resolveRetry}, r.setCondition(ctx, task, ecsv1alpha1.TaskConditionResolved, metav1.ConditionFalse,
			ecsv1alpha1.TaskReasonTaskDefinitionNotFound, nf.Error())
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	before := task.DeepCopy()
	if err := revisions.ApplyToTask(task, rev); err != nil {
		return ctrl.Result{}, r.setCondition(ctx, task, ecsv1alpha1.TaskConditionResolved, metav1.ConditionFalse,
			ecsv1alpha1.TaskReasonTaskDefinitionNotFound, err.Error())
	}
	if err := r.Patch(ctx, task, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ctrl.LoggerFrom(ctx).V(1).Info("resolved task", "revision", rev.Name)
	return ctrl.Result{}, nil
}

// reconcileStopped deletes the task once its retention has passed.
func (r *Reconciler) reconcileStopped(ctx context.Context, task *ecsv1alpha1.Task) (ctrl.Result, error) {
	retention := r.StoppedTaskRetention
	if retention == 0 {
		retention = DefaultStoppedTaskRetention
	}
	stoppedAt := task.CreationTimestamp.Time
	if task.Status.StoppedAt != nil {
		stoppedAt = task.Status.StoppedAt.Time
	}
	if left := stoppedAt.Add(retention).Sub(r.now()); left > 0 {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	rv := task.ResourceVersion
	err := r.Delete(ctx, task, client.Preconditions{UID: &task.UID, ResourceVersion: &rv})
	return ctrl.Result{}, client.IgnoreNotFound(err)
}

func (r *Reconciler) instanceGone(ctx context.Context, task *ecsv1alpha1.Task) (bool, error) {
	ci := &ecsv1alpha1.ContainerInstance{}
	err := r.Get(ctx, client.ObjectKey{Namespace: task.Namespace, Name: task.Spec.ContainerInstance}, ci)
	if apierrors.IsNotFound(err) {
		// The cache may lag a just-registered instance: believe only a live read.
		err = r.APIReader.Get(ctx, client.ObjectKey{Namespace: task.Namespace, Name: task.Spec.ContainerInstance}, ci)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	}
	return false, err
}

// markStopped records the task as STOPPED in its status.
func (r *Reconciler) markStopped(ctx context.Context, task *ecsv1alpha1.Task, code ecsv1alpha1.TaskStopCode, reason string) error {
	before := task.DeepCopy()
	now := metav1.NewTime(r.now())
	task.Status.LastStatus = ecsv1alpha1.TaskStateStopped
	if code != "" {
		task.Status.StopCode = code
	}
	task.Status.StoppedReason = reason
	task.Status.StoppedAt = &now
	if task.Status.ExecutionStoppedAt == nil {
		task.Status.ExecutionStoppedAt = &now
	}
	if err := r.Status().Patch(ctx, task, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return client.IgnoreNotFound(err)
	}
	if r.Recorder != nil {
		r.Recorder.Event(task, "Normal", "Stopped", reason)
	}
	return nil
}

// setCondition writes one condition, conditional on the resourceVersion it was read at: a merge
// patch replaces the whole conditions list, and the placement controller writes the Placed
// condition too, so a write from a stale copy would erase the other's condition. A conflict is
// retried on the task as it is now.
func (r *Reconciler) setCondition(ctx context.Context, task *ecsv1alpha1.Task, typ string, status metav1.ConditionStatus, reason, msg string) error {
	before := task.DeepCopy()
	meta.SetStatusCondition(&task.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: task.Generation})
	if apiequality.Semantic.DeepEqual(before.Status, task.Status) {
		return nil
	}
	return client.IgnoreNotFound(r.Status().Patch(ctx, task, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})))
}

func stoppedReasonOr(task *ecsv1alpha1.Task, reason string) string {
	if task.Status.StoppedReason != "" {
		return task.Status.StoppedReason
	}
	return reason
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
