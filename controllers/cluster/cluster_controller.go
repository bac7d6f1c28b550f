package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// MeteringInterval is how often the usage meter is brought up to date while nothing else changes.
const MeteringInterval = time.Minute

// MinInterval is the least time between two counts of one cluster: every task and instance event
// asks for a count, and a busy cluster has many.
const MinInterval = 2 * time.Second

// +kubebuilder:rbac:groups=ecs.drover.dev,resources=clusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=ecs.drover.dev,resources=clusters/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=ecs.drover.dev,resources=containerinstances;tasks;services,verbs=get;list;watch

// Reconciler aggregates a cluster's status.
type Reconciler struct {
	client.Client
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// MinInterval overrides the package's MinInterval; negative means none.
	MinInterval time.Duration

	mu      sync.Mutex
	counted map[types.NamespacedName]time.Time
}

// Setup adds the reconciler to mgr.
func Setup(mgr ctrl.Manager) error {
	return (&Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr)
}

// SetupWithManager registers the reconciler; instances, tasks and services map to their cluster.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	byCluster := func(cluster func(client.Object) string) handler.EventHandler {
		return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if name := cluster(o); name != "" {
				return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
			}
			return nil
		})
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&ecsv1alpha1.Cluster{}).
		Watches(&ecsv1alpha1.ContainerInstance{}, byCluster(func(o client.Object) string { return o.(*ecsv1alpha1.ContainerInstance).Spec.Cluster })).
		Watches(&ecsv1alpha1.Task{}, byCluster(func(o client.Object) string { return o.(*ecsv1alpha1.Task).Spec.Cluster })).
		Watches(&ecsv1alpha1.Service{}, byCluster(func(o client.Object) string { return o.(*ecsv1alpha1.Service).Spec.Cluster })).
		Named("cluster").
		Complete(r)
}

// Reconcile counts what belongs to the cluster and advances the usage meter.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	now := r.now()
	if wait := r.throttle(req.NamespacedName, now); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	cl := &ecsv1alpha1.Cluster{}
	if err := r.Get(ctx, req.NamespacedName, cl); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	instances := &ecsv1alpha1.ContainerInstanceList{}
	tasks := &ecsv1alpha1.TaskList{}
	services := &ecsv1alpha1.ServiceList{}
	for _, l := range []client.ObjectList{instances, tasks, services} {
		// Counting only reads: skip the cache's copy of every object.
		if err := r.List(ctx, l, client.InNamespace(cl.Namespace), client.UnsafeDisableDeepCopy); err != nil {
			return ctrl.Result{}, err
		}
	}
	before := cl.DeepCopy()
	st := &cl.Status
	// The connected count in status held since lastMeteredAt: every change reconciles.
	if st.LastMeteredAt == nil {
		st.LastMeteredAt = &metav1.Time{Time: now}
	} else if elapsed := now.Sub(st.LastMeteredAt.Time); elapsed >= time.Second {
		secs := int64(elapsed / time.Second)
		st.ConnectedInstanceSeconds += secs * int64(st.ConnectedContainerInstancesCount)
		st.LastMeteredAt = &metav1.Time{Time: st.LastMeteredAt.Add(time.Duration(secs) * time.Second)}
	}
	st.RegisteredContainerInstancesCount, st.ConnectedContainerInstancesCount = 0, 0
	for _, ci := range instances.Items {
		if ci.Spec.Cluster != cl.Name || !ci.DeletionTimestamp.IsZero() {
			continue
		}
		st.RegisteredContainerInstancesCount++
		if ci.Status.AgentConnected {
			st.ConnectedContainerInstancesCount++
		}
	}
	st.RunningTasksCount, st.PendingTasksCount = 0, 0
	for _, t := range tasks.Items {
		if t.Spec.Cluster != cl.Name || t.Status.LastStatus == ecsv1alpha1.TaskStateStopped {
			continue
		}
		if t.Status.LastStatus == ecsv1alpha1.TaskStateRunning {
			st.RunningTasksCount++
		} else if t.Spec.DesiredStatus != ecsv1alpha1.TaskDesiredStopped {
			st.PendingTasksCount++
		}
	}
	st.ActiveServicesCount = 0
	for _, s := range services.Items {
		if s.Spec.Cluster == cl.Name && s.DeletionTimestamp.IsZero() {
			st.ActiveServicesCount++
		}
	}
	setConnectedCondition(cl)
	st.ObservedGeneration = cl.Generation

	// The meter alone moves every second; write it only once per interval unless a count changed.
	countsChanged := !apiequality.Semantic.DeepEqual(withoutMeter(before.Status), withoutMeter(cl.Status))
	due := before.Status.LastMeteredAt == nil || now.Sub(before.Status.LastMeteredAt.Time) >= MeteringInterval
	if countsChanged || due {
		if err := r.Status().Patch(ctx, cl, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	return ctrl.Result{RequeueAfter: MeteringInterval}, nil
}

func withoutMeter(s ecsv1alpha1.ClusterStatus) ecsv1alpha1.ClusterStatus {
	s.ConnectedInstanceSeconds, s.LastMeteredAt = 0, nil
	return s
}

func setConnectedCondition(cl *ecsv1alpha1.Cluster) {
	st := &cl.Status
	c := metav1.Condition{Type: ecsv1alpha1.ClusterConditionInstancesConnected, ObservedGeneration: cl.Generation}
	switch {
	case st.RegisteredContainerInstancesCount == 0:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ecsv1alpha1.ClusterReasonNoInstances, "no container instance is registered"
	case st.ConnectedContainerInstancesCount < st.RegisteredContainerInstancesCount:
		c.Status, c.Reason = metav1.ConditionFalse, ecsv1alpha1.ClusterReasonSomeDisconnected
		c.Message = fmt.Sprintf("%d of %d container instances are disconnected",
			st.RegisteredContainerInstancesCount-st.ConnectedContainerInstancesCount, st.RegisteredContainerInstancesCount)
	default:
		c.Status, c.Reason = metav1.ConditionTrue, ecsv1alpha1.ClusterReasonAllConnected
		c.Message = fmt.Sprintf("all %d container instances are connected", st.RegisteredContainerInstancesCount)
	}
	meta.SetStatusCondition(&st.Conditions, c)
}

// throttle says how long to wait before counting the cluster again, and records the count when it
// may go ahead now.
func (r *Reconciler) throttle(key types.NamespacedName, now time.Time) time.Duration {
	interval := r.MinInterval
	if interval == 0 {
		interval = MinInterval
	}
	if interval < 0 {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counted == nil {
		r.counted = map[types.NamespacedName]time.Time{}
	}
	if last, ok := r.counted[key]; ok && now.Sub(last) < interval && now.After(last) {
		return interval - now.Sub(last)
	}
	r.counted[key] = now
	return 0
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
