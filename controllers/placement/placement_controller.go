package placement

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/cacheview"
	"github.com/drover-dev/drover/internal/placement"
)

// assumeTTL bounds how long a binding is assumed before the cache must show it.
const assumeTTL = time.Minute

// unplaceableRetry is how soon a cluster with tasks that could not be placed is tried again even
// if nothing in it changes.
const unplaceableRetry = 30 * time.Second

// +kubebuilder:rbac:groups=ecs.drover.dev,resources=tasks,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=ecs.drover.dev,resources=tasks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=ecs.drover.dev,resources=containerinstances;services,verbs=get;list;watch

// Reconciler places the tasks of one cluster per pass.
type Reconciler struct {
	client.Client
	Recorder record.EventRecorder

	mu      sync.Mutex
	rnd     *rand.Rand
	assumed map[types.UID]assumedBinding
	// inflight holds a slot for each bind being written; retry receives the clusters of binds that
	// failed, to place their tasks again.
	inflight chan struct{}
	retry    chan event.GenericEvent
	// requests caches, per cluster and task UID, what each task holds, for the generation it was
	// computed from: a pass accounts for every bound task of its cluster, and most have not changed
	// since the last pass.
	requests map[types.NamespacedName]map[types.UID]cachedRequest
	// lastPass is when each cluster's last pass began.
	lastPass map[types.NamespacedName]time.Time
	// instanceView and taskView read the manager's cache in place; nil when it does not allow that.
	instanceView *cacheview.View[*ecsv1alpha1.ContainerInstance]
	taskView     *cacheview.View[*ecsv1alpha1.Task]
}

// minPassInterval is the least time between two passes over one cluster. Every task event asks
// for a pass and each pass reads every task of the cluster, so while tasks arrive quickly the
// events of this long are placed together by one pass.
const minPassInterval = 100 * time.Millisecond

type cachedRequest struct {
	generation int64
	req        placement.Request
	err        error
}

type assumedBinding struct {
	instance string
	task     *ecsv1alpha1.Task
	at       time.Time
}

// Setup adds the reconciler to mgr.
func Setup(mgr ctrl.Manager) error {
	return (&Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorderFor("placement-controller")}).SetupWithManager(mgr)
}

// SetupWithManager registers the reconciler; tasks and instances map to their cluster.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.rnd = rand.New(rand.NewSource(time.Now().UnixNano()))
	r.assumed = map[types.UID]assumedBinding{}
	r.requests = map[types.NamespacedName]map[types.UID]cachedRequest{}
	r.lastPass = map[types.NamespacedName]time.Time{}
	r.inflight = make(chan struct{}, bindWorkers)
	r.retry = make(chan event.GenericEvent, 64)
	if err := r.setUpViews(mgr); err != nil {
		ctrl.Log.WithName("placement").Info("reading the cache through its client", "reason", err.Error())
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("placement").
		Watches(&ecsv1alpha1.Task{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return clusterRequest(o.GetNamespace(), o.(*ecsv1alpha1.Task).Spec.Cluster)
		})).
		Watches(&ecsv1alpha1.ContainerInstance{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return clusterRequest(o.GetNamespace(), o.(*ecsv1alpha1.ContainerInstance).Spec.Cluster)
		}), builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			// An agent's periodic status report changes nothing placement reads and starts no pass.
			return placement.CandidateChanged(e.ObjectOld.(*ecsv1alpha1.ContainerInstance), e.ObjectNew.(*ecsv1alpha1.ContainerInstance))
		}})).
		WatchesRawSource(source.Channel(r.retry, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(o)}}
		}))).
		Complete(r)
}

func (r *Reconciler) setUpViews(mgr ctrl.Manager) error {
	instances, err := cacheview.New(context.Background(), mgr.GetCache(), &ecsv1alpha1.ContainerInstance{})
	if err != nil {
		return err
	}
	tasks, err := cacheview.New(context.Background(), mgr.GetCache(), &ecsv1alpha1.Task{})
	if err != nil {
		return err
	}
	r.instanceView, r.taskView = instances, tasks
	return nil
}

func clusterRequest(namespace, cluster string) []reconcile.Request {
	if cluster == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: namespace, Name: cluster}}}
}

// Reconcile places every waiting task of the cluster req names.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	r.mu.Lock()
	wait := minPassInterval - time.Since(r.lastPass[req.NamespacedName])
	if wait <= 0 {
		r.lastPass[req.NamespacedName] = time.Now()
	}
	r.mu.Unlock()
	if wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	// A pass reads every instance and task of its cluster in the cache, in place, and copies only
	// the few tasks it writes (see decide and unplaceable).
	instances, tasks, err := r.read(ctx, req.Namespace)
	if err != nil {
		return ctrl.Result{}, err
	}
	cands, waiting := r.snapshot(req.Namespace, req.Name, instances, tasks)
	if len(waiting) == 0 {
		return ctrl.Result{}, nil
	}
	// Decide every placement in memory, each seeing the ones before it, and hand each binding to
	// be written in the background as soon as it is decided. A binding holds its instance's
	// resources (it is assumed) from the moment it is decided, so the next pass can start while
	// binds are still being written without placing anything on the same room twice.
	var errs []error
	unplaced := 0
	for _, task := range waiting {
		b, err := r.decide(ctx, task, cands)
		if err != nil {
			errs = append(errs, err)
		}
		if b == nil {
			unplaced++
			continue
		}
		if err := r.startBind(ctx, *b); err != nil {
			errs = append(errs, err)
			break
		}
	}
	if unplaced > 0 && len(errs) == 0 {
		return ctrl.Result{RequeueAfter: unplaceableRetry}, nil
	}
	return ctrl.Result{}, kerrors.NewAggregate(errs)
}

// bindWorkers is how many binds are written at once. Each is one round trip to the API server,
// so throughput is about bindWorkers divided by the latency of one write.
const bindWorkers = 64

// binding is a placement decided in memory and not yet written.
type binding struct {
	task     *ecsv1alpha1.Task
	instance string
}

// read returns the namespace's instances and tasks as the cache holds them, not to be modified.
func (r *Reconciler) read(ctx context.Context, namespace string) ([]*ecsv1alpha1.ContainerInstance, []*ecsv1alpha1.Task, error) {
	instances, err := cacheview.List(ctx, r.instanceView, r.Client, &ecsv1alpha1.ContainerInstanceList{}, namespace)
	if err != nil {
		return nil, nil, err
	}
	tasks, err := cacheview.List(ctx, r.taskView, r.Client, &ecsv1alpha1.TaskList{}, namespace)
	return instances, tasks, err
}

// snapshot builds the candidates of a cluster from its instances and the tasks bound to them
// (including bindings assumed but not yet in the cache), and lists the tasks waiting for placement
// in creation order.
func (r *Reconciler) snapshot(namespace, cluster string, instances []*ecsv1alpha1.ContainerInstance, tasks []*ecsv1alpha1.Task) (*candidates, []*ecsv1alpha1.Task) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cands := &candidates{index: map[string]int{}}
	for _, ci := range instances {
		if ci.Spec.Cluster != cluster || !ci.DeletionTimestamp.IsZero() {
			continue
		}
		cands.list = append(cands.list, placement.NewCandidate(ci))
	}
	sort.Slice(cands.list, func(i, j int) bool { return cands.list[i].ID < cands.list[j].ID })
	for i := range cands.list {
		cands.index[cands.list[i].ID] = i
	}

	key := types.NamespacedName{Namespace: namespace, Name: cluster}
	cached, fresh := r.requests[key], make(map[types.UID]cachedRequest, len(tasks))
	seen := map[types.UID]bool{}
	var waiting []*ecsv1alpha1.Task
	for _, t := range tasks {
		if t.Spec.Cluster != cluster {
			continue
		}
		seen[t.UID] = true
		instance := t.Spec.ContainerInstance
		if a, ok := r.assumed[t.UID]; ok {
			if instance != "" || time.Since(a.at) > assumeTTL {
				delete(r.assumed, t.UID) // the cache caught up
			} else {
				instance = a.instance
			}
		}
		if !holdsResources(t) {
			continue
		}
		if instance == "" {
			if t.Spec.DesiredStatus != ecsv1alpha1.TaskDesiredStopped && len(t.Spec.Containers) > 0 {
				waiting = append(waiting, t)
			}
			continue
		}
		if c := cands.get(instance); c != nil {
			if req, err := requestFor(t, cached, fresh); err == nil {
				placement.Assign(c, req)
			}
		}
	}
	r.requests[key] = fresh // tasks deleted or gone from the cluster drop out
	for uid, a := range r.assumed {
		if !seen[uid] && time.Since(a.at) > assumeTTL {
			delete(r.assumed, uid) // deleted before the cache ever showed it bound
			continue
		}
		if !seen[uid] && a.task.Namespace == namespace && a.task.Spec.Cluster == cluster {
			// Bound a moment ago and not in the cache at all yet: still holds its resources.
			if c := cands.get(a.instance); c != nil {
				if req, err := placement.RequestFor(a.task); err == nil {
					placement.Assign(c, req)
				}
			}
		}
	}
	sort.SliceStable(waiting, func(i, j int) bool {
		if !waiting[i].CreationTimestamp.Equal(&waiting[j].CreationTimestamp) {
			return waiting[i].CreationTimestamp.Before(&waiting[j].CreationTimestamp)
		}
		return waiting[i].Name < waiting[j].Name
	})
	return cands, waiting
}

// requestFor returns placement.RequestFor(t) from the previous pass's cache when the task's
// generation is unchanged, and records it in this pass's.
func requestFor(t *ecsv1alpha1.Task, cached, fresh map[types.UID]cachedRequest) (placement.Request, error) {
	cr, ok := cached[t.UID]
	if !ok || cr.generation != t.Generation {
		cr.req, cr.err = placement.RequestFor(t)
		cr.generation = t.Generation
	}
	fresh[t.UID] = cr
	return cr.req, cr.err
}

// candidates are a cluster's instances, sorted by name, as placement sees them during one pass.
type candidates struct {
	list  []placement.Candidate
	index map[string]int
}

func (c *candidates) get(id string) *placement.Candidate {
	if i, ok := c.index[id]; ok {
		return &c.list[i]
	}
	return nil
}

// holdsResources reports whether a task occupies (or will occupy) capacity on its instance.
func holdsResources(t *ecsv1alpha1.Task) bool {
	return t.Status.LastStatus != ecsv1alpha1.TaskStateStopped && t.DeletionTimestamp.IsZero()
}

// decide places one task in memory, reserving its resources on the chosen candidate; nil means
// the task cannot be placed now, and why has been recorded.
func (r *Reconciler) decide(ctx context.Context, task *ecsv1alpha1.Task, cands *candidates) (*binding, error) {
	req, err := placement.RequestFor(task)
	if err != nil {
		return nil, r.unplaceable(ctx, task, err.Error())
	}
	r.mu.Lock()
	id, err := placement.Place(req, cands.list, r.rnd)
	r.mu.Unlock()
	var up *placement.Unplaceable
	if errors.As(err, &up) {
		return nil, r.unplaceable(ctx, task, up.Error())
	}
	if err != nil {
		return nil, err
	}
	placement.Assign(cands.get(id), req)
	return &binding{task: task, instance: id}, nil
}

// startBind assumes b and writes it in the background, waiting while bindWorkers binds are in
// flight. A bind that fails drops its assumption and sends its cluster to be placed again.
func (r *Reconciler) startBind(ctx context.Context, b binding) error {
	select {
	case r.inflight <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.mu.Lock()
	r.assumed[b.task.UID] = assumedBinding{instance: b.instance, task: b.task, at: time.Now()}
	r.mu.Unlock()
	go func() {
		defer func() { <-r.inflight }()
		// A task that waited has its Placed condition turned True by the task controller, which
		// retries that write until it lands.
		err := r.bind(ctx, b)
		if err == nil {
			return
		}
		r.mu.Lock()
		delete(r.assumed, b.task.UID)
		r.mu.Unlock()
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			ctrl.LoggerFrom(ctx).Error(err, "binding a task failed; placing it again", "task", b.task.Name, "instance", b.instance)
		}
		// A conflict or a deletion comes with a watch event for the task; this is for the rest.
		select {
		case r.retry <- event.GenericEvent{Object: &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: b.task.Namespace, Name: b.task.Spec.Cluster}}}:
		default: // full: a retry of the cluster is already on its way
		}
	}()
	return nil
}

// bind writes one binding, conditional on the resourceVersion the decision was made on.
func (r *Reconciler) bind(ctx context.Context, b binding) error {
	before, id := b.task, b.instance // before is the cache's object: written to only through a copy
	task := before.DeepCopy()
	task.Spec.ContainerInstance = id
	if err := r.Patch(ctx, task, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		// A conflict or NotFound: changed or gone since the pass looked; the next pass sees it afresh.
		return fmt.Errorf("binding task %s to %s: %w", task.Name, id, err)
	}
	return nil
}

// unplaceable records why a task could not be placed, on the task and its service. The write is
// conditional on the resourceVersion the pass read: a merge patch replaces the whole conditions
// list, and the task controller writes the task's conditions too. After a conflict the task's
// watch event brings a new pass.
func (r *Reconciler) unplaceable(ctx context.Context, task *ecsv1alpha1.Task, reason string) error {
	before := task // the cache's object: written to only through a copy
	task = task.DeepCopy()
	meta.SetStatusCondition(&task.Status.Conditions, metav1.Condition{
		Type: ecsv1alpha1.TaskConditionPlaced, Status: metav1.ConditionFalse,
		Reason: ecsv1alpha1.TaskReasonNoInstanceAvailable, Message: reason, ObservedGeneration: task.Generation,
	})
	if apiequality.Semantic.DeepEqual(before.Status, task.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, task, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return client.IgnoreNotFound(err)
	}
	if name := task.Labels[ecsv1alpha1.LabelService]; name != "" {
		svc := &ecsv1alpha1.Service{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: task.Namespace, Name: name}, svc); err == nil {
			r.Recorder.Eventf(svc, corev1.EventTypeWarning, ecsv1alpha1.ServiceReasonUnableToPlace,
				"(service %s) was unable to place a task because %s", name, reason)
		}
	} else {
		r.Recorder.Eventf(task, corev1.EventTypeWarning, ecsv1alpha1.TaskReasonNoInstanceAvailable, "Unable to place the task because %s", reason)
	}
	return nil
}
