package hollow

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/agent/backoff"
)

// task is what an instance keeps of a Task bound to it: enough to write its status.
type task struct {
	name       string
	uid        types.UID
	generation int64
	revision   string
	service    bool
	containers []container
	// runAt is when the task is reported RUNNING (or fails to start); zero until it is resolved.
	runAt time.Time
	// stopAt is when the task is reported STOPPED; zero until desiredStatus is STOPPED.
	stopAt time.Time
	// stopCode and stoppedReason are what the control plane set, if anything, when it asked for the stop.
	stopCode      ecsv1alpha1.TaskStopCode
	stoppedReason string
	// reported is the lastStatus last written.
	reported ecsv1alpha1.TaskState
	// retryAt holds the next report back after a failed one.
	retryAt  time.Time
	failures int
}

type container struct {
	name, image string
	healthCheck bool
}

// runTasks keeps the instance's Tasks and reports their status: a list, then a watch from the
// list's resourceVersion that resumes from the last resourceVersion seen (bookmarks included)
// whenever it ends, and a new list only when that resourceVersion has expired. Every request
// carries the field selector spec.containerInstance=<instance>, the only Tasks an instance's
// identity may read.
func (in *Instance) runTasks(ctx context.Context, spawn func(func())) {
	st := &in.fleet.stats
	b := backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
	in.tasks = map[types.UID]*task{}
	in.wake = make(chan struct{}, 1)
	spawn(func() { in.report(ctx) })
	rv := ""
	for ctx.Err() == nil {
		if rv == "" {
			var err error
			if rv, err = in.listTasks(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				st.fail(&st.watchErrors, fmt.Errorf("listing the tasks of %s: %w", in.id.Name, err))
				if !backoff.Sleep(ctx, b.Next()) {
					return
				}
				continue
			}
			st.lists.Add(1)
		}
		err := in.watchTasks(ctx, &rv)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			b.Reset()
			continue
		}
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			rv = ""
			continue
		}
		st.fail(&st.watchErrors, fmt.Errorf("watching the tasks of %s: %w", in.id.Name, err))
		if !backoff.Sleep(ctx, b.Next()) {
			return
		}
	}
}

func (in *Instance) selector() string {
	return fields.OneTermEqualSelector("spec.containerInstance", in.id.Name).String()
}

// listTasks replaces what the instance knows of its Tasks with a fresh list, keeping what it
// reported of the Tasks that are still there.
func (in *Instance) listTasks(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*in.fleet.cfg.RequestTimeout)
	defer cancel()
	var list ecsv1alpha1.TaskList
	err := in.conn.ecs.Get().Namespace(in.id.Namespace).Resource("tasks").
		VersionedParams(&metav1.ListOptions{FieldSelector: in.selector()}, metav1.ParameterCodec).Do(ctx).Into(&list)
	if err != nil {
		return "", err
	}
	seen := make(map[types.UID]bool, len(list.Items))
	in.mu.Lock()
	for i := range list.Items {
		seen[list.Items[i].UID] = true
		in.observe(&list.Items[i])
	}
	for uid := range in.tasks {
		if !seen[uid] {
			delete(in.tasks, uid)
		}
	}
	in.mu.Unlock()
	in.nudge()
	return list.ResourceVersion, nil
}

// watchTasks watches from *rv, keeping *rv at the last resourceVersion seen. It returns nil when
// the watch ends and should be resumed. It never waits for a report: droverd ends watches whose
// events are not taken in time.
func (in *Instance) watchTasks(ctx context.Context, rv *string) error {
	w, err := in.conn.ecs.Get().Namespace(in.id.Namespace).Resource("tasks").
		VersionedParams(&metav1.ListOptions{FieldSelector: in.selector(), ResourceVersion: *rv, AllowWatchBookmarks: true, Watch: true},
			metav1.ParameterCodec).Watch(ctx)
	if err != nil {
		return err
	}
	defer w.Stop()
	in.fleet.stats.watches.Add(1)
	in.markStarted(startedWatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if t, ok := ev.Object.(*ecsv1alpha1.Task); ok {
					*rv = t.ResourceVersion
					in.mu.Lock()
					in.observe(t)
					in.mu.Unlock()
					in.nudge()
				}
			case watch.Deleted:
				if t, ok := ev.Object.(*ecsv1alpha1.Task); ok {
					*rv = t.ResourceVersion
					in.mu.Lock()
					delete(in.tasks, t.UID)
					in.mu.Unlock()
				}
			case watch.Bookmark:
				if m, err := meta.Accessor(ev.Object); err == nil {
					*rv = m.GetResourceVersion()
				}
			case watch.Error:
				return apierrors.FromObject(ev.Object)
			}
		}
	}
}

// nudge tells the report goroutine to look at the tasks again.
func (in *Instance) nudge() {
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// observe takes in what the control plane says of a Task: it is new, it was resolved, or it
// should stop. A STOPPED Task needs nothing more and is forgotten. The caller holds in.mu.
func (in *Instance) observe(t *ecsv1alpha1.Task) {
	if t.Status.LastStatus == ecsv1alpha1.TaskStateStopped {
		delete(in.tasks, t.UID)
		return
	}
	cfg := &in.fleet.cfg
	now := time.Now()
	k := in.tasks[t.UID]
	if k == nil {
		k = &task{name: t.Name, uid: t.UID}
		if t.Status.LastStatus == ecsv1alpha1.TaskStateRunning {
			k.reported = ecsv1alpha1.TaskStateRunning // reported before a new list, or by another agent run
		}
		in.tasks[t.UID] = k
	}
	k.generation = t.Generation
	k.service = t.Labels[ecsv1alpha1.LabelService] != "" || strings.HasPrefix(t.Spec.Group, "service:")
	if len(k.containers) == 0 && len(t.Spec.Containers) > 0 {
		// Resolved: the task controller fills these in, possibly after the task was bound.
		k.revision = t.Spec.TaskDefinitionRevision
		k.containers = make([]container, len(t.Spec.Containers))
		for i, c := range t.Spec.Containers {
			k.containers[i] = container{name: c.Name, image: c.Image,
				healthCheck: c.HealthCheck != nil && (c.Essential == nil || *c.Essential)}
		}
		k.runAt = now.Add(cfg.StartDelay)
	}
	if t.Spec.DesiredStatus == ecsv1alpha1.TaskDesiredStopped && k.stopAt.IsZero() {
		k.stopAt = now.Add(cfg.StopDelay)
		k.stopCode, k.stoppedReason = t.Status.StopCode, t.Status.StoppedReason
	}
}

// report writes the Tasks' reports as they fall due, one at a time, as drover-agent's one report
// worker does.
func (in *Instance) report(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if next := in.reportDue(ctx); next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(time.Until(next))
		}
		select {
		case <-ctx.Done():
			return
		case <-in.wake:
		case <-timer.C:
		}
	}
}

// due is a report to write: a copy of the task as it was when the report fell due.
type due struct {
	task  task
	state ecsv1alpha1.TaskState
}

// reportDue writes every report that is due and returns when the next one is (zero for none).
func (in *Instance) reportDue(ctx context.Context) time.Time {
	now := time.Now()
	var next time.Time
	var todo []due
	in.mu.Lock()
	for _, k := range in.tasks {
		at, state := k.nextReport(in.fleet)
		if at.IsZero() {
			continue
		}
		if at = laterOf(at, k.retryAt); now.Before(at) {
			next = earlierOf(next, at)
			continue
		}
		todo = append(todo, due{task: *k, state: state})
	}
	in.mu.Unlock()
	for _, d := range todo {
		if ctx.Err() != nil {
			return time.Time{}
		}
		err := in.reportTask(ctx, &d.task, d.state)
		in.mu.Lock()
		k := in.tasks[d.task.uid]
		switch {
		case k == nil:
			// Deleted meanwhile.
		case err == nil:
			k.reported, k.failures, k.retryAt = d.state, 0, time.Time{}
			if d.state == ecsv1alpha1.TaskStateStopped {
				delete(in.tasks, k.uid)
			}
		case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			// Deleted, or replaced by a new Task of the same name (the uid precondition failed).
			delete(in.tasks, k.uid)
		default:
			in.fleet.stats.fail(&in.fleet.stats.taskReportErrors, fmt.Errorf("reporting task %s on %s: %w", k.name, in.id.Name, err))
			k.failures++
			k.retryAt = time.Now().Add(min(500*time.Millisecond<<min(k.failures-1, 5), 10*time.Second))
		}
		if k != nil && in.tasks[k.uid] != nil {
			// A report may be due again at once: a stop that was asked for while RUNNING was sent.
			if at, _ := k.nextReport(in.fleet); !at.IsZero() {
				next = earlierOf(next, laterOf(at, k.retryAt))
			}
		}
		in.mu.Unlock()
	}
	return next
}

func earlierOf(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// nextReport says what the task's next report is, and from when: STOPPED once it should stop,
// RUNNING once it has started (STOPPED instead when its revision fails), nothing otherwise.
func (k *task) nextReport(f *Fleet) (time.Time, ecsv1alpha1.TaskState) {
	switch {
	case !k.stopAt.IsZero():
		return k.stopAt, ecsv1alpha1.TaskStateStopped
	case k.reported == "" && !k.runAt.IsZero():
		if f.failing(k.revision) {
			return k.runAt, ecsv1alpha1.TaskStateStopped
		}
		return k.runAt, ecsv1alpha1.TaskStateRunning
	}
	return time.Time{}, ""
}

// reportTask writes the task's status as drover-agent reports it: a merge patch of the status
// subresource with the fields the agent owns, and the Task's uid as a precondition so that it
// never lands on a new Task of the same name.
func (in *Instance) reportTask(ctx context.Context, k *task, state ecsv1alpha1.TaskState) error {
	ctx, cancel := context.WithTimeout(ctx, in.fleet.cfg.RequestTimeout)
	defer cancel()
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": k.uid},
		"status":   in.taskStatus(k, state, metav1.Now()),
	})
	if err != nil {
		return err
	}
	err = in.conn.ecs.Patch(types.MergePatchType).Namespace(in.id.Namespace).Resource("tasks").Name(k.name).
		SubResource("status").Body(body).Do(ctx).Error()
	if err == nil {
		st := &in.fleet.stats
		switch {
		case state == ecsv1alpha1.TaskStateRunning:
			st.running.Add(1)
		case k.stopAt.IsZero():
			st.failed.Add(1)
		default:
			st.stopped.Add(1)
		}
	}
	return err
}

// taskStatus is the status drover-agent would report for a task in state, at now.
func (in *Instance) taskStatus(k *task, state ecsv1alpha1.TaskState, now metav1.Time) *ecsv1alpha1.TaskStatus {
	st := &ecsv1alpha1.TaskStatus{ObservedGeneration: k.generation, LastStatus: state}
	health := ecsv1alpha1.HealthStatusUnknown
	for _, c := range k.containers {
		cs := ecsv1alpha1.ContainerStatus{Name: c.name, Image: c.image, HealthStatus: ecsv1alpha1.HealthStatusUnknown}
		if k.reported != "" || state == ecsv1alpha1.TaskStateRunning {
			cs.RuntimeID = runtimeID(k.uid, c.name)
		}
		switch {
		case state == ecsv1alpha1.TaskStateRunning:
			cs.LastStatus = ecsv1alpha1.ContainerStateRunning
			if c.healthCheck {
				cs.HealthStatus, health = ecsv1alpha1.HealthStatusHealthy, ecsv1alpha1.HealthStatusHealthy
			}
		case k.reported == ecsv1alpha1.TaskStateRunning:
			// Stopped as asked: SIGTERM, and a clean exit.
			cs.LastStatus, cs.ExitCode = ecsv1alpha1.ContainerStateStopped, new(int32)
		default:
			cs.LastStatus = ecsv1alpha1.ContainerStateStopped
		}
		st.Containers = append(st.Containers, cs)
	}
	if state == ecsv1alpha1.TaskStateRunning {
		st.HealthStatus = health
		st.PullStartedAt, st.PullStoppedAt, st.StartedAt = &now, &now, &now
		return st
	}
	st.StoppingAt, st.ExecutionStoppedAt, st.StoppedAt = &now, &now, &now
	switch {
	case k.stopAt.IsZero():
		st.StopCode = ecsv1alpha1.StopCodeTaskFailedToStart
		st.StoppedReason = "CannotStartContainerError: the hollow instance fails every task of revision " + k.revision
		for i := range st.Containers {
			st.Containers[i].Reason = "CannotStartContainerError: failed on purpose by the hollow instance"
		}
	case k.stopCode != "":
		st.StopCode, st.StoppedReason = k.stopCode, k.stoppedReason
	case k.service:
		st.StopCode, st.StoppedReason = ecsv1alpha1.StopCodeServiceSchedulerInitiated, "Task stopped by its service"
	default:
		st.StopCode, st.StoppedReason = ecsv1alpha1.StopCodeUserInitiated, "Task stopped by user"
	}
	return st
}

// runtimeID stands in for a Docker container id: it is stable for the task's container.
func runtimeID(uid types.UID, name string) string {
	return "hollow-" + strings.ReplaceAll(string(uid), "-", "")[:min(12, len(uid))] + "-" + name
}
