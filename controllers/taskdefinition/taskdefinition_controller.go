package taskdefinition

import (
	"context"
	"fmt"
	"sort"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// conflictRetry is how soon a pass that lost a race with a stale cache is retried.
const conflictRetry = time.Second

// RevisionHistory is how many of a family's newest revisions are always kept. Older revisions are
// deleted once nothing uses them: no task that has not stopped runs them, and no service pins
// them, runs them or could roll back to them.
const RevisionHistory = 10

// Setup adds the reconciler to mgr.
func Setup(mgr ctrl.Manager) error {
	return (&Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr)
}

// +kubebuilder:rbac:groups=ecs.drover.dev,resources=taskdefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups=ecs.drover.dev,resources=taskdefinitions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=ecs.drover.dev,resources=taskdefinitionrevisions,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=ecs.drover.dev,resources=tasks;services,verbs=get;list;watch

// Reconciler keeps a TaskDefinition's newest revision equal to its spec.
type Reconciler struct {
	client.Client
}

// SetupWithManager registers the reconciler; revisions map back to their TaskDefinition.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&ecsv1alpha1.TaskDefinition{}).
		Watches(&ecsv1alpha1.TaskDefinitionRevision{}, handler.EnqueueRequestsFromMapFunc(familyOf)).
		Named("taskdefinition").
		Complete(r)
}

// Reconcile creates the next revision when the spec differs from the newest one, then records the
// newest revision in status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	td := &ecsv1alpha1.TaskDefinition{}
	if err := r.Get(ctx, req.NamespacedName, td); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !td.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	before := td.DeepCopy()
	defer func() {
		if apiequality.Semantic.DeepEqual(before.Status, td.Status) {
			return
		}
		if err := r.Status().Patch(ctx, td, client.MergeFrom(before)); err != nil && retErr == nil {
			retErr = client.IgnoreNotFound(err)
		}
	}()

	latest, err := r.latestRevision(ctx, td)
	if err != nil {
		return ctrl.Result{}, err
	}
	if latest != nil && apiequality.Semantic.DeepEqual(latest.Spec.TaskDefinition, td.Spec) {
		setCurrent(td, latest)
		return ctrl.Result{}, r.pruneRevisions(ctx, td)
	}
	next := int32(1)
	if latest != nil {
		next = latest.Spec.Revision + 1
	}
	rev := newRevision(td, next)
	switch err := r.Create(ctx, rev); {
	case apierrors.IsAlreadyExists(err):
		// The revision list was stale: that name is taken. Look again shortly.
		setPending(td, fmt.Sprintf("revision %s already exists; waiting for the cache to catch up", rev.Name))
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	case err != nil:
		setFailed(td, fmt.Sprintf("creating revision %s: %v", rev.Name, err))
		return ctrl.Result{}, err
	}
	ctrl.LoggerFrom(ctx).Info("created task definition revision", "revision", rev.Name)
	setCurrent(td, rev)
	return ctrl.Result{}, nil
}

// pruneRevisions deletes the family's revisions older than the newest RevisionHistory that
// nothing uses.
func (r *Reconciler) pruneRevisions(ctx context.Context, td *ecsv1alpha1.TaskDefinition) error {
	revs := &ecsv1alpha1.TaskDefinitionRevisionList{}
	if err := r.List(ctx, revs, client.InNamespace(td.Namespace), client.MatchingLabels{ecsv1alpha1.LabelTaskDefinitionFamily: td.Name}); err != nil {
		return err
	}
	if len(revs.Items) <= RevisionHistory {
		return nil
	}
	sort.Slice(revs.Items, func(i, j int) bool { return revs.Items[i].Spec.Revision > revs.Items[j].Spec.Revision })
	inUse, err := r.revisionsInUse(ctx, td)
	if err != nil {
		return err
	}
	for _, rev := range revs.Items[RevisionHistory:] {
		if inUse[rev.Name] || rev.Spec.Family != td.Name {
			continue
		}
		if err := r.Delete(ctx, &rev, client.Preconditions{UID: &rev.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting old revision %s: %w", rev.Name, err)
		}
		ctrl.LoggerFrom(ctx).Info("deleted an old task definition revision nothing uses", "revision", rev.Name)
	}
	return nil
}

// revisionsInUse names the family's revisions that tasks run or services pin, run or may roll
// back to.
func (r *Reconciler) revisionsInUse(ctx context.Context, td *ecsv1alpha1.TaskDefinition) (map[string]bool, error) {
	used := map[string]bool{}
	tasks := &ecsv1alpha1.TaskList{}
	if err := r.List(ctx, tasks, client.InNamespace(td.Namespace)); err != nil {
		return nil, err
	}
	for _, t := range tasks.Items {
		if t.Status.LastStatus == ecsv1alpha1.TaskStateStopped {
			continue
		}
		used[t.Spec.TaskDefinitionRevision] = true
		if family, n, err := ecsv1alpha1.ParseTaskDefinitionRef(t.Spec.TaskDefinition); err == nil && n > 0 {
			used[ecsv1alpha1.RevisionName(family, n)] = true
		}
	}
	svcs := &ecsv1alpha1.ServiceList{}
	if err := r.List(ctx, svcs, client.InNamespace(td.Namespace)); err != nil {
		return nil, err
	}
	for _, svc := range svcs.Items {
		if family, n, err := ecsv1alpha1.ParseTaskDefinitionRef(svc.Spec.TaskDefinition); err == nil && n > 0 {
			used[ecsv1alpha1.RevisionName(family, n)] = true
		}
		used[svc.Status.TaskDefinitionRevision] = true
		for _, d := range svc.Status.Deployments {
			used[d.TaskDefinitionRevision] = true
		}
	}
	return used, nil
}

// latestRevision returns the family's highest-numbered revision, or nil when it has none.
func (r *Reconciler) latestRevision(ctx context.Context, td *ecsv1alpha1.TaskDefinition) (*ecsv1alpha1.TaskDefinitionRevision, error) {
	revs := &ecsv1alpha1.TaskDefinitionRevisionList{}
	if err := r.List(ctx, revs, client.InNamespace(td.Namespace), client.MatchingLabels{ecsv1alpha1.LabelTaskDefinitionFamily: td.Name}); err != nil {
		return nil, err
	}
	var latest *ecsv1alpha1.TaskDefinitionRevision
	for i := range revs.Items {
		rev := &revs.Items[i]
		if rev.Spec.Family == td.Name && (latest == nil || rev.Spec.Revision > latest.Spec.Revision) {
			latest = rev
		}
	}
	return latest, nil
}

func newRevision(td *ecsv1alpha1.TaskDefinition, n int32) *ecsv1alpha1.TaskDefinitionRevision {
	rev := &ecsv1alpha1.TaskDefinitionRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:      ecsv1alpha1.RevisionName(td.Name, n),
			Namespace: td.Namespace,
			Labels:    map[string]string{ecsv1alpha1.LabelTaskDefinitionFamily: td.Name},
		},
		Spec: ecsv1alpha1.TaskDefinitionRevisionSpec{Family: td.Name, Revision: n, TaskDefinition: *td.Spec.DeepCopy()},
	}
	return rev
}

// familyOf maps a revision to its TaskDefinition. Revisions carry no owner reference on purpose:
// deleting a TaskDefinition must not delete revisions that services and tasks still run.
func familyOf(_ context.Context, obj client.Object) []reconcile.Request {
	family := obj.GetLabels()[ecsv1alpha1.LabelTaskDefinitionFamily]
	if family == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: family}}}
}
