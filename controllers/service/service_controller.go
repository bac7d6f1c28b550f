package service

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/cacheview"
	"github.com/drover-dev/drover/internal/placement"
	"github.com/drover-dev/drover/internal/revisions"
)

// Finalizer keeps a deleted Service until its tasks have been told to stop.
const Finalizer = "ecs.drover.dev/service-tasks"

const resolveRetry = 10 * time.Second

// +kubebuilder:rbac:groups=ecs.drover.dev,resources=services,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=ecs.drover.dev,resources=services/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=ecs.drover.dev,resources=tasks,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=ecs.drover.dev,resources=taskdefinitions;taskdefinitionrevisions;containerinstances,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Reconciler keeps each Service's tasks running.
type Reconciler struct {
	client.Client
	Recorder record.EventRecorder
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// instanceView reads the manager's cache in place; nil when it does not allow that.
	instanceView *cacheview.View[*ecsv1alpha1.ContainerInstance]
	// tasksIndexed is set when the manager's cache indexes Tasks by their service.
	tasksIndexed bool
}

// taskServiceIndex indexes the cached Tasks by the service label: a pass reads its service's tasks
// from the index instead of matching the label of every task in the namespace, which at tens of
// thousands of tasks made each pass take most of a second.
const taskServiceIndex = "metadata.labels.service"

// tasksOf selects the tasks of the service named name.
func (r *Reconciler) tasksOf(name string) client.ListOption {
	if r.tasksIndexed {
		return client.MatchingFields{taskServiceIndex: name}
	}
	return client.MatchingLabels{ecsv1alpha1.LabelService: name}
}

// Setup adds the reconciler to mgr.
func Setup(mgr ctrl.Manager) error {
	return (&Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorderFor("service-controller")}).SetupWithManager(mgr)
}

// SetupWithManager registers the reconciler: a service is reconciled when it, one of its tasks,
// or the TaskDefinition it follows changes.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &ecsv1alpha1.Task{}, taskServiceIndex, func(o client.Object) []string {
		if name := o.GetLabels()[ecsv1alpha1.LabelService]; name != "" {
			return []string{name}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing tasks by service: %w", err)
	}
	r.tasksIndexed = true
	if v, err := cacheview.New(context.Background(), mgr.GetCache(), &ecsv1alpha1.ContainerInstance{}); err == nil {
		r.instanceView = v
	} else {
		ctrl.Log.WithName("service").Info("reading container instances through the cache's client", "reason", err.Error())
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&ecsv1alpha1.Service{}).
		Watches(&ecsv1alpha1.Task{}, handler.EnqueueRequestsFromMapFunc(serviceOfTask)).
		Watches(&ecsv1alpha1.TaskDefinition{}, handler.EnqueueRequestsFromMapFunc(r.servicesFollowing)).
		// Every service of the cluster looks at an instance that changes in what placement or the
		// disconnect policy reads. The policy reads lastHeartbeatTime of disconnected instances
		// only, so the refresh of a connected agent's status, which moves it, queues no service.
		Watches(&ecsv1alpha1.ContainerInstance{}, handler.EnqueueRequestsFromMapFunc(r.servicesInCluster),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
				old, cur := e.ObjectOld.(*ecsv1alpha1.ContainerInstance), e.ObjectNew.(*ecsv1alpha1.ContainerInstance)
				return placement.CandidateChanged(old, cur) ||
					(!cur.Status.AgentConnected && !old.Status.LastHeartbeatTime.Equal(cur.Status.LastHeartbeatTime))
			}})).
		Named("service").
		// Services are independent and a pass keeps its state in its scope, so several run at
		// once: one at a time, thousands of services took minutes to fill a cluster.
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(r)
}

// scope is what one pass over a service works with.
type scope struct {
	svc      *ecsv1alpha1.Service
	revision *ecsv1alpha1.TaskDefinitionRevision
	tasks    []ecsv1alpha1.Task
	// instances are the container instances of the service's cluster, by name.
	instances map[string]*ecsv1alpha1.ContainerInstance
	// desired is the number of tasks the service aims for in this pass.
	desired int32
	// failed holds the revisions whose deployment failed in this pass, with the reason.
	failed map[string]string
	// halted is set when the revision's deployment has failed and no rollback applies: no more of
	// its tasks are started.
	halted bool
	// rolledBackFrom names the failed revision the service is rolling back from.
	rolledBackFrom string
	// progress explains where a canary or wave deployment is, "" when it has neither.
	progress string
	// wave is the wave the deployment replaces tasks in, nil without waves.
	wave *wave
	// promoted is set in the pass that promotes the deployment's canary.
	promoted bool
	// startingCanary is set while the pass creates canary tasks.
	startingCanary bool
}

// Reconcile observes the service's tasks afresh and makes the count right.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	svc := &ecsv1alpha1.Service{}
	if err := r.Get(ctx, req.NamespacedName, svc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	s := &scope{svc: svc, desired: desiredCount(svc)}
	if svc.Spec.SchedulingStrategy == ecsv1alpha1.SchedulingStrategyDaemon {
		s.desired = 0 // counted from the eligible instances
	}
	tasks := &ecsv1alpha1.TaskList{}
	if err := r.List(ctx, tasks, client.InNamespace(svc.Namespace), r.tasksOf(svc.Name)); err != nil {
		return ctrl.Result{}, err
	}
	s.tasks = tasks.Items
	if !svc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.reconcileDelete(ctx, s)
	}
	if controllerutil.AddFinalizer(svc, Finalizer) {
		if err := r.Update(ctx, svc); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}

	before := svc.DeepCopy()
	defer func() {
		if err := r.patchStatus(ctx, before, s, retErr); err != nil {
			retErr = kerrors.NewAggregate([]error{retErr, err})
		}
	}()

	rev, err := revisions.Resolve(ctx, r.Client, svc.Namespace, svc.Spec.TaskDefinition)
	var nf *revisions.NotFoundError
	if errors.As(err, &nf) {
		r.Recorder.Eventf(svc, corev1.EventTypeWarning, ecsv1alpha1.ServiceReasonTaskDefinitionNotFound, "(service %s) %s.", svc.Name, nf.Error())
		setNotFound(svc, nf.Error())
		return ctrl.Result{RequeueAfter: resolveRetry}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.chooseRevision(ctx, s, rev); err != nil {
		return ctrl.Result{}, err
	}
	// The pass only reads the instances, which every pass of every service in the namespace
	// lists: as the cache holds them, without copies.
	instances, err := cacheview.List(ctx, r.instanceView, r.Client, &ecsv1alpha1.ContainerInstanceList{}, svc.Namespace)
	if err != nil {
		return ctrl.Result{}, err
	}
	s.instances = make(map[string]*ecsv1alpha1.ContainerInstance, len(instances))
	for _, ci := range instances {
		if ci.Spec.Cluster == svc.Spec.Cluster && ci.DeletionTimestamp.IsZero() {
			s.instances[ci.Name] = ci
		}
	}
	if svc.Spec.SchedulingStrategy == ecsv1alpha1.SchedulingStrategyDaemon {
		return r.reconcileDaemon(ctx, s)
	}
	return r.reconcileReplica(ctx, s)
}

// reconcileReplica keeps desiredCount active tasks of the service's revision on instances that
// may keep them. Tasks of older revisions, on DRAINING instances, or on instances disconnected for
// longer than the disconnect policy allows are replaced: replacements start within maximumPercent,
// and the old tasks stop as far as minimumHealthyPercent allows.
func (r *Reconciler) reconcileReplica(ctx context.Context, s *scope) (ctrl.Result, error) {
	svc := s.svc
	var errs []error
	if err := r.stopUnhealthy(ctx, s); err != nil {
		errs = append(errs, err)
	}
	s.desired = desiredCount(svc)
	desired := int(s.desired)
	if !s.halted && s.rolledBackFrom == "" && inCanary(svc, s.revision.Name, s.tasks) {
		res, done, err := r.reconcileCanary(ctx, s)
		if err != nil {
			errs = append(errs, err)
		}
		if done {
			return res, kerrors.NewAggregate(errs)
		}
	}
	if !s.halted && s.rolledBackFrom == "" {
		w, wait := r.currentWave(s)
		if w != nil && wait > 0 {
			s.progress = fmt.Sprintf("Waves: %s starts after the previous wave bakes, at %s.",
				w.describe(wavesOf(svc).Attribute), r.now().Add(wait).UTC().Format(time.RFC3339))
			return ctrl.Result{RequeueAfter: wait}, kerrors.NewAggregate(errs)
		}
		if w != nil {
			s.wave = w
			s.progress = fmt.Sprintf("Waves: rolling %s.", w.describe(wavesOf(svc).Attribute))
		}
	}
	act := activeTasks(s.tasks)
	var keep, replace []*ecsv1alpha1.Task
	for _, t := range act {
		if reason := r.replaceReason(s, t); reason != "" {
			replace = append(replace, t)
		} else {
			keep = append(keep, t)
		}
	}
	maxTotal := int(floorPercent(s.desired, svc.Spec.MaximumPercent()))
	minHealthy := int(ceilPercent(s.desired, svc.Spec.MinimumHealthyPercent()))

	started := 0
	need := desired - len(keep)
	switch {
	case need > 0:
		start := need
		if len(replace) > 0 {
			start = min(need, maxTotal-len(act)) // replacing: stay within maximumPercent
		}
		if s.halted {
			start = 0
		}
		if start > 0 {
			if wait := r.startBackoff(s); wait > 0 {
				r.Recorder.Eventf(svc, corev1.EventTypeWarning, "TasksFailingToStart",
					"(service %s) is unable to consistently start tasks successfully. Next attempt in %s.", svc.Name, wait.Round(time.Second))
				return ctrl.Result{RequeueAfter: wait}, kerrors.NewAggregate(errs)
			}
			plan := slotPlan(s.tasks, s.revision.Name, start)
			errs = append(errs, concurrently(len(plan), func(i int) error { return r.createTask(ctx, s, plan[i][0], plan[i][1], "") })...)
			started += len(plan)
		}
	case need < 0:
		victims, err := r.scaleInOrder(ctx, s, keep, -need)
		if err != nil {
			return ctrl.Result{}, err
		}
		errs = append(errs, concurrently(len(victims), func(i int) error {
			return r.stopTask(ctx, victims[i], "Task stopped by the service to scale in")
		})...)
	}
	if len(replace) == 0 {
		return ctrl.Result{}, kerrors.NewAggregate(errs)
	}

	// Stop replaced tasks while the healthy ones stay at or above the floor. Tasks that are not
	// healthy and running cost nothing to stop, so they go first.
	allowed := 0
	for _, t := range act {
		if r.healthyRunning(s, t) {
			allowed++
		}
	}
	allowed -= minHealthy
	sort.SliceStable(replace, func(i, j int) bool { return !r.healthyRunning(s, replace[i]) && r.healthyRunning(s, replace[j]) })
	var stops []*ecsv1alpha1.Task
	for _, t := range replace {
		if r.healthyRunning(s, t) {
			if allowed <= 0 {
				continue
			}
			allowed--
		}
		stops = append(stops, t)
	}
	errs = append(errs, concurrently(len(stops), func(i int) error { return r.stopTask(ctx, stops[i], r.replaceReason(s, stops[i])) })...)
	stopped := len(stops)
	// Stuck only when waiting cannot help either: a kept task that is not yet healthy may become so
	// and let an old task stop.
	settled := true
	for _, t := range keep {
		settled = settled && r.healthyRunning(s, t)
	}
	if stopped == 0 && started == 0 && len(keep) < desired && settled {
		s.progress = fmt.Sprintf("Stuck: minimumHealthyPercent %d%% and maximumPercent %d%% of desiredCount %d allow neither starting nor stopping a task.",
			svc.Spec.MinimumHealthyPercent(), svc.Spec.MaximumPercent(), desired)
		r.Recorder.Eventf(svc, corev1.EventTypeWarning, "DeploymentStuck",
			"(service %s) cannot replace %d tasks: minimumHealthyPercent %d%% and maximumPercent %d%% of desiredCount %d allow neither starting nor stopping a task. Raise maximumPercent or lower minimumHealthyPercent.",
			svc.Name, len(replace), svc.Spec.MinimumHealthyPercent(), svc.Spec.MaximumPercent(), desired)
	}
	return ctrl.Result{RequeueAfter: r.nextDisconnectDeadline(s)}, kerrors.NewAggregate(errs)
}

// replaceReason says why an active task must make way for a replacement, or "" when it may stay.
func (r *Reconciler) replaceReason(s *scope, t *ecsv1alpha1.Task) string {
	// A halted deployment replaces nothing more; a wave replaces only the tasks in its groups.
	if t.Spec.TaskDefinitionRevision != s.revision.Name && !s.halted && s.inWave(t) {
		return fmt.Sprintf("Task replaced by deployment %s", deploymentID(s.revision))
	}
	ci := s.instances[t.Spec.ContainerInstance]
	if ci == nil {
		return ""
	}
	if ci.Spec.State == ecsv1alpha1.ContainerInstanceDraining {
		return fmt.Sprintf("Task stopped because container instance %s is draining", ci.Name)
	}
	if d, ok := r.disconnectedFor(s, ci); ok {
		return fmt.Sprintf("Task replaced because container instance %s has been disconnected for %s", ci.Name, d.Round(time.Second))
	}
	return ""
}

// disconnectedFor reports how long an instance has been disconnected when the service's disconnect
// policy says its tasks must be replaced by now.
func (r *Reconciler) disconnectedFor(s *scope, ci *ecsv1alpha1.ContainerInstance) (time.Duration, bool) {
	p := s.svc.Spec.DisconnectPolicy
	if ci.Status.AgentConnected || p == nil || p.Action != ecsv1alpha1.DisconnectActionReplace {
		return 0, false
	}
	since := ci.CreationTimestamp.Time
	if ci.Status.LastHeartbeatTime != nil {
		since = ci.Status.LastHeartbeatTime.Time
	}
	d := r.now().Sub(since)
	return d, d >= disconnectGrace(p)
}

// nextDisconnectDeadline is when a disconnected instance's tasks become due for replacement, so the
// service is looked at again then; zero when none is pending.
func (r *Reconciler) nextDisconnectDeadline(s *scope) time.Duration {
	p := s.svc.Spec.DisconnectPolicy
	if p == nil || p.Action != ecsv1alpha1.DisconnectActionReplace {
		return 0
	}
	next := time.Duration(0)
	for _, ci := range s.instances {
		if ci.Status.AgentConnected || ci.Status.LastHeartbeatTime == nil {
			continue
		}
		if left := disconnectGrace(p) - r.now().Sub(ci.Status.LastHeartbeatTime.Time); left > 0 && (next == 0 || left < next) {
			next = left
		}
	}
	return next
}

func disconnectGrace(p *ecsv1alpha1.DisconnectPolicy) time.Duration {
	if p.GracePeriodSeconds == nil {
		return 300 * time.Second
	}
	return time.Duration(*p.GracePeriodSeconds) * time.Second
}

// healthyRunning reports whether a task counts towards minimumHealthyPercent: RUNNING, HEALTHY if
// it has a health check (else not UNHEALTHY), and not on an instance whose tasks are being replaced
// for being disconnected.
func (r *Reconciler) healthyRunning(s *scope, t *ecsv1alpha1.Task) bool {
	if t.Status.LastStatus != ecsv1alpha1.TaskStateRunning || t.Status.HealthStatus == ecsv1alpha1.HealthStatusUnhealthy {
		return false
	}
	// A task with a health check counts only once it is HEALTHY.
	if hasHealthCheck(t) && t.Status.HealthStatus != ecsv1alpha1.HealthStatusHealthy {
		return false
	}
	if ci := s.instances[t.Spec.ContainerInstance]; ci != nil {
		if _, gone := r.disconnectedFor(s, ci); gone {
			return false
		}
	}
	return true
}

// createTask creates the task for a slot, resolved from the service's revision. A DAEMON task names
// its instance, which is its slot.
func (r *Reconciler) createTask(ctx context.Context, s *scope, slot, attempt int, instance string) error {
	svc, rev := s.svc, s.revision
	name := taskName(svc.Name, rev.Spec.Revision, strconv.Itoa(slot), attempt)
	slotLabel := strconv.Itoa(slot)
	if instance != "" {
		name, slotLabel = taskName(svc.Name, rev.Spec.Revision, instance, attempt), instance
	}
	task := &ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: svc.Namespace,
			Labels: map[string]string{
				ecsv1alpha1.LabelService:                svc.Name,
				ecsv1alpha1.LabelCluster:                svc.Spec.Cluster,
				ecsv1alpha1.LabelTaskDefinitionFamily:   rev.Spec.Family,
				ecsv1alpha1.LabelTaskDefinitionRevision: strconv.Itoa(int(rev.Spec.Revision)),
				LabelSlot:                               slotLabel,
				LabelAttempt:                            strconv.Itoa(attempt),
			},
		},
		Spec: ecsv1alpha1.TaskSpec{
			Cluster:              svc.Spec.Cluster,
			TaskDefinition:       ecsv1alpha1.TaskDefinitionRef(rev.Spec.Family, rev.Spec.Revision),
			PlacementConstraints: append([]ecsv1alpha1.PlacementConstraint(nil), svc.Spec.PlacementConstraints...),
			PlacementStrategy:    placement.ServiceStrategies(svc.Spec.PlacementStrategy),
			DesiredStatus:        ecsv1alpha1.TaskDesiredRunning,
			ContainerInstance:    instance,
			StartedBy:            "ecs-svc/" + deploymentID(rev),
			Group:                "service:" + svc.Name,
		},
	}
	if s.startingCanary {
		task.Labels[LabelCanary] = "true"
	}
	if s.wave != nil && s.wave.constraint.Expression != "" {
		task.Spec.PlacementConstraints = append(task.Spec.PlacementConstraints, s.wave.constraint)
		task.Labels[LabelWave] = strconv.Itoa(s.wave.index)
	}
	if err := revisions.ApplyToTask(task, rev); err != nil {
		return reconcile.TerminalError(err)
	}
	err := r.Create(ctx, task)
	if apierrors.IsAlreadyExists(err) {
		// Created in an earlier pass and not yet in the cache: nothing to do.
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating task %s: %w", task.Name, err)
	}
	ctrl.LoggerFrom(ctx).V(1).Info("started task", "task", task.Name)
	return nil
}

// hasHealthCheck tells whether an essential container of the task has a health check, from which
// the task's health is derived.
func hasHealthCheck(t *ecsv1alpha1.Task) bool {
	for _, c := range t.Spec.Containers {
		if c.HealthCheck != nil && (c.Essential == nil || *c.Essential) {
			return true
		}
	}
	return false
}

// writeConcurrency bounds the task writes one pass makes at once: each is a round trip to the API
// server, and a deployment of 1,000 tasks makes 2,000 of them.
const writeConcurrency = 16

// concurrently runs fn(0..n-1), at most writeConcurrency at a time, and returns their errors.
func concurrently(n int, fn func(i int) error) []error {
	if n == 0 {
		return nil
	}
	errs := make([]error, n)
	sem := make(chan struct{}, writeConcurrency)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = fn(i)
		})
	}
	wg.Wait()
	out := errs[:0]
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// stopTask sets desiredStatus STOPPED, conditional on the resourceVersion the decision was made on.
func (r *Reconciler) stopTask(ctx context.Context, t *ecsv1alpha1.Task, reason string) error {
	return r.stopTaskMarked(ctx, t, reason, "")
}

// stopTaskMarked is stopTask that also sets the annotation mark to "true" in the same write, when
// mark is not empty.
func (r *Reconciler) stopTaskMarked(ctx context.Context, t *ecsv1alpha1.Task, reason, mark string) error {
	before := t.DeepCopy()
	t.Spec.DesiredStatus = ecsv1alpha1.TaskDesiredStopped
	if mark != "" {
		metav1.SetMetaDataAnnotation(&t.ObjectMeta, mark, "true")
	}
	err := r.Patch(ctx, t, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stopping task %s: %w", t.Name, err)
	}
	r.Recorder.Eventf(t, corev1.EventTypeNormal, "Stopping", "%s", reason)
	return nil
}

// stopUnhealthy stops RUNNING tasks that report UNHEALTHY after the grace period, marked so that
// the circuit breaker counts them once their health is no longer reported.
func (r *Reconciler) stopUnhealthy(ctx context.Context, s *scope) error {
	grace := time.Duration(0)
	if g := s.svc.Spec.HealthCheckGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	var errs []error
	for i := range s.tasks {
		t := &s.tasks[i]
		if !active(t) || t.Status.LastStatus != ecsv1alpha1.TaskStateRunning || t.Status.HealthStatus != ecsv1alpha1.HealthStatusUnhealthy {
			continue
		}
		if t.Status.StartedAt != nil && r.now().Sub(t.Status.StartedAt.Time) < grace {
			continue
		}
		r.Recorder.Eventf(s.svc, corev1.EventTypeNormal, "TaskUnhealthy",
			"(service %s) has stopped 1 running tasks: (task %s). Task failed container health checks.", s.svc.Name, t.Name)
		if err := r.stopTaskMarked(ctx, t, "Task failed container health checks", AnnotationFailedHealthChecks); err != nil {
			errs = append(errs, err)
		}
	}
	return kerrors.NewAggregate(errs)
}

// startBackoff is how long to wait before starting tasks again when the service's recent tasks
// keep stopping before they reach RUNNING, as ECS throttles such services. Failures are counted in
// rounds of max(desiredCount, 3) tasks, since a service starts that many at once: 5 s after the
// first round that failed entirely, doubling with each further round, up to 15 minutes.
func (r *Reconciler) startBackoff(s *scope) time.Duration {
	var stopped []*ecsv1alpha1.Task
	for i := range s.tasks {
		t := &s.tasks[i]
		if t.Status.LastStatus == ecsv1alpha1.TaskStateStopped && t.Status.StoppedAt != nil &&
			t.Spec.DesiredStatus != ecsv1alpha1.TaskDesiredStopped && t.Spec.TaskDefinitionRevision == s.revision.Name {
			stopped = append(stopped, t)
		}
	}
	sort.Slice(stopped, func(i, j int) bool { return stopped[i].Status.StoppedAt.After(stopped[j].Status.StoppedAt.Time) })
	failures := 0
	for _, t := range stopped {
		if t.Status.StartedAt != nil {
			break
		}
		failures++
	}
	rounds := failures / max(int(s.desired), 3)
	if rounds < 1 {
		return 0
	}
	delay := min(5*time.Second<<min(rounds-1, 10), 15*time.Minute)
	return time.Until(stopped[0].Status.StoppedAt.Add(delay))
}

// reconcileDelete stops every task of a deleted service, then lets the service go.
func (r *Reconciler) reconcileDelete(ctx context.Context, s *scope) error {
	var errs []error
	for i := range s.tasks {
		t := &s.tasks[i]
		if t.Spec.DesiredStatus != ecsv1alpha1.TaskDesiredStopped && t.Status.LastStatus != ecsv1alpha1.TaskStateStopped {
			if err := r.stopTask(ctx, t, "Task stopped because its service was deleted"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return kerrors.NewAggregate(errs)
	}
	if controllerutil.RemoveFinalizer(s.svc, Finalizer) {
		return client.IgnoreNotFound(r.Update(ctx, s.svc))
	}
	return nil
}

// scaleInOrder picks n tasks to stop: those not yet running first, then by the service's placement
// strategies (binpack stops on the instance with the most left; spread keeps the spread even).
func (r *Reconciler) scaleInOrder(ctx context.Context, s *scope, act []*ecsv1alpha1.Task, n int) ([]*ecsv1alpha1.Task, error) {
	byName := map[string]*ecsv1alpha1.Task{}
	var pending, running []*ecsv1alpha1.Task
	for _, t := range act {
		byName[t.Name] = t
		if t.Status.LastStatus == ecsv1alpha1.TaskStateRunning {
			running = append(running, t)
		} else {
			pending = append(pending, t)
		}
	}
	sort.Slice(pending, func(i, j int) bool { return newer(pending[i], pending[j]) })
	if n <= len(pending) {
		return pending[:n], nil
	}
	instances := &ecsv1alpha1.ContainerInstanceList{}
	if err := r.List(ctx, instances, client.InNamespace(s.svc.Namespace)); err != nil {
		return nil, err
	}
	cands := map[string]*placement.Candidate{}
	for i := range instances.Items {
		if ci := &instances.Items[i]; ci.Spec.Cluster == s.svc.Spec.Cluster {
			c := placement.NewCandidate(ci)
			cands[ci.Name] = &c
		}
	}
	var rts []placement.RunningTask
	for _, t := range running {
		if c := cands[t.Spec.ContainerInstance]; c != nil {
			if req, err := placement.RequestFor(t); err == nil {
				placement.Assign(c, req)
			}
		}
		rts = append(rts, placement.RunningTask{Name: t.Name, InstanceID: t.Spec.ContainerInstance, Created: t.CreationTimestamp.Time})
	}
	out := pending
	for _, name := range placement.ScaleIn(rts, cands, placement.ServiceStrategies(s.svc.Spec.PlacementStrategy), n-len(pending)) {
		out = append(out, byName[name])
	}
	return out, nil
}

// newer orders tasks newest first.
func newer(a, b *ecsv1alpha1.Task) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return b.CreationTimestamp.Before(&a.CreationTimestamp)
	}
	return a.Name > b.Name
}

func activeTasks(tasks []ecsv1alpha1.Task) []*ecsv1alpha1.Task {
	var out []*ecsv1alpha1.Task
	for i := range tasks {
		if active(&tasks[i]) {
			out = append(out, &tasks[i])
		}
	}
	return out
}

func desiredCount(svc *ecsv1alpha1.Service) int32 {
	if svc.Spec.DesiredCount == nil {
		return 1
	}
	return *svc.Spec.DesiredCount
}

// deploymentID names the deployment of a revision in a service.
func deploymentID(rev *ecsv1alpha1.TaskDefinitionRevision) string { return rev.Name }

func serviceOfTask(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[ecsv1alpha1.LabelService]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

// servicesFollowing maps a TaskDefinition to the services that follow its family.
func (r *Reconciler) servicesFollowing(ctx context.Context, obj client.Object) []reconcile.Request {
	svcs := &ecsv1alpha1.ServiceList{}
	if err := r.List(ctx, svcs, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, svc := range svcs.Items {
		if family, _, err := ecsv1alpha1.ParseTaskDefinitionRef(svc.Spec.TaskDefinition); err == nil && family == obj.GetName() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&svc)})
		}
	}
	return out
}

// servicesInCluster maps a container instance to the services of its cluster: draining,
// disconnecting, joining or changing attributes can move their tasks.
func (r *Reconciler) servicesInCluster(ctx context.Context, obj client.Object) []reconcile.Request {
	ci, ok := obj.(*ecsv1alpha1.ContainerInstance)
	if !ok {
		return nil
	}
	svcs := &ecsv1alpha1.ServiceList{}
	if err := r.List(ctx, svcs, client.InNamespace(ci.Namespace)); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, svc := range svcs.Items {
		if svc.Spec.Cluster == ci.Spec.Cluster {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&svc)})
		}
	}
	return out
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
