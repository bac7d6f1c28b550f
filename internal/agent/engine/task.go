package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	rt "github.com/drover-dev/drover/internal/agent/runtime"
)

// Stopped reasons, as ECS words them where ECS has one.
const (
	reasonEssentialExited = "Essential container in task exited"
	reasonUserStopped     = "Task stopped by user"
	reasonSchedulerStop   = "Task stopped by its service"
	reasonGone            = "Task deleted from the control plane"
)

// syncTask makes one pass over a task and returns when to look at it again (0: on the next event
// or resync).
func (e *Engine) syncTask(ctx context.Context, uid string) (time.Duration, error) {
	rec, err := e.load(ctx, uid)
	if err != nil || rec == nil {
		return 0, err
	}
	log := klog.FromContext(ctx).WithValues("task", taskKey(&rec.Task))
	ctx = klog.NewContext(ctx, log)
	st := &rec.Task.Status

	if st.LastStatus == ecsv1alpha1.TaskStateStopped {
		return e.cleanup(ctx, rec)
	}
	if rec.Gone {
		e.stopTask(ctx, rec, "", reasonGone)
		return 0, e.save(rec)
	}
	if rec.Task.Spec.DesiredStatus == ecsv1alpha1.TaskDesiredStopped {
		code, reason := ecsv1alpha1.StopCodeUserInitiated, reasonUserStopped
		if rec.Task.Labels[ecsv1alpha1.LabelService] != "" || strings.HasPrefix(rec.Task.Spec.Group, "service:") {
			code, reason = ecsv1alpha1.StopCodeServiceSchedulerInitiated, reasonSchedulerStop
		}
		if st.StopCode == "" {
			st.StopCode, st.StoppedReason = code, reason
		}
		e.stopTask(ctx, rec, st.StopCode, st.StoppedReason)
		return 0, e.save(rec)
	}
	if len(rec.Task.Spec.Containers) == 0 {
		// Bound before it was resolved (a task created with spec.containerInstance): the task
		// controller fills spec.containers in shortly.
		return 0, nil
	}
	after := e.runTask(ctx, rec)
	return after, e.save(rec)
}

// load returns the task's record with the control plane's latest word merged in, creating the
// record for a task seen for the first time. It returns nil for a task there is nothing to do for.
func (e *Engine) load(ctx context.Context, uid string) (*taskRecord, error) {
	api, gone := e.apiTask(uid)
	e.mu.Lock()
	rec, err := e.store.getTask(uid)
	e.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("reading the state of task %s: %w", uid, err)
	}
	if rec == nil {
		if api == nil || api.Status.LastStatus == ecsv1alpha1.TaskStateStopped {
			return nil, nil
		}
		rec = &taskRecord{Task: *api, Containers: map[string]*containerRecord{}}
		rec.Task.Status = ecsv1alpha1.TaskStatus{}
		if api.Spec.DesiredStatus == ecsv1alpha1.TaskDesiredStopped {
			// Stopped before the agent ever ran it: nothing to stop, only the report.
			rec.Task.Status.StopCode, rec.Task.Status.StoppedReason = api.Status.StopCode, api.Status.StoppedReason
		}
		return rec, nil
	}
	if rec.Containers == nil {
		rec.Containers = map[string]*containerRecord{}
	}
	switch {
	case api != nil:
		// Take what may change: desiredStatus (only ever to STOPPED), labels, and the spec the
		// task controller resolves after binding. A task the control plane already marked
		// STOPPED (its instance was deregistered, say) is stopped here without a report.
		status := rec.Task.Status
		rec.Task.ObjectMeta = api.ObjectMeta
		if len(rec.Task.Spec.Containers) == 0 || api.Spec.DesiredStatus == ecsv1alpha1.TaskDesiredStopped {
			rec.Task.Spec = api.Spec
		}
		rec.Task.Status = status
		if api.Status.LastStatus == ecsv1alpha1.TaskStateStopped && status.LastStatus != ecsv1alpha1.TaskStateStopped {
			rec.Gone = true
		}
	case gone:
		rec.Gone = true
	}
	return rec, nil
}

// save writes rec and queues a report when its status changed.
func (e *Engine) save(rec *taskRecord) error {
	e.mu.Lock()
	cur, err := e.store.getTask(string(rec.Task.UID))
	if err == nil && cur != nil && equality.Semantic.DeepEqual(cur.Task.Status, rec.Task.Status) {
		rec.Reported = cur.Reported
	} else {
		rec.Reported = false
	}
	if err == nil {
		err = e.store.putTask(rec)
	}
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("saving the state of task %s: %w", taskKey(&rec.Task), err)
	}
	if !rec.Reported && !rec.Gone {
		e.reports.Add(string(rec.Task.UID))
	}
	return nil
}

// containerName is the runtime name of a task's container: unique per task and stable, so that a
// create repeated after a crash finds the container made the first time.
func containerName(t *ecsv1alpha1.Task, c string) string {
	name := t.Name
	if len(name) > 100 {
		name = name[:100]
	}
	uid := string(t.UID)
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return fmt.Sprintf("drover-%s-%s-%s", name, c, uid)
}

// observe returns the runtime's view of each of the task's containers that exists, by name. A
// container created but not yet recorded (the agent stopped in between) is found by its labels.
func (e *Engine) observe(ctx context.Context, rec *taskRecord) (map[string]rt.Container, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer cancel()
	labels := e.ownLabels()
	labels[LabelTaskUID] = string(rec.Task.UID)
	list, err := e.cfg.Runtime.ListContainers(ctx, labels)
	if err != nil {
		return nil, fmt.Errorf("listing the task's containers: %w", err)
	}
	out := map[string]rt.Container{}
	for _, c := range list {
		name := c.Labels[LabelContainerName]
		cr := rec.Containers[name]
		if cr == nil {
			cr = &containerRecord{}
			rec.Containers[name] = cr
		}
		if cr.ID != "" && cr.ID != c.ID {
			continue
		}
		full, err := e.cfg.Runtime.InspectContainer(ctx, c.ID)
		if errors.Is(err, rt.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("inspecting container %s: %w", c.Name, err)
		}
		cr.ID = c.ID
		out[name] = full
	}
	return out, nil
}

func essential(c *ecsv1alpha1.ContainerDefinition) bool {
	return c.Essential == nil || *c.Essential
}

// runTask moves a task that should run towards running: it creates and starts its containers in
// dependency order, restarts the ones that exited under their restartPolicy, and stops the task
// when an essential container exits for good or a container cannot start.
func (e *Engine) runTask(ctx context.Context, rec *taskRecord) time.Duration {
	st := &rec.Task.Status
	now := time.Now()
	if st.LastStatus == "" {
		st.LastStatus = ecsv1alpha1.TaskStatePending
	}
	obs, err := e.observe(ctx, rec)
	if err != nil {
		// The runtime is unreachable: nothing can be known or done; the status stays as it was.
		klog.FromContext(ctx).Error(err, "Cannot look at the task's containers")
		return 5 * time.Second
	}
	var after time.Duration
	waitFor := func(d time.Duration) {
		if after == 0 || d < after {
			after = d
		}
	}
	for i := range rec.Task.Spec.Containers {
		c := &rec.Task.Spec.Containers[i]
		cr := rec.Containers[c.Name]
		if cr == nil {
			cr = &containerRecord{}
			rec.Containers[c.Name] = cr
		}
		if cr.Final {
			continue
		}
		o, exists := obs[c.Name]
		switch {
		case !exists && cr.ID != "":
			// Removed behind the agent's back.
			cr.Final, cr.Reason = true, "Container removed from the host outside the agent"
			if essential(c) {
				e.stopTask(ctx, rec, ecsv1alpha1.StopCodeEssentialContainerExited, reasonEssentialExited)
				return 0
			}
		case !exists || o.State == rt.StateCreated:
			ready, failure := dependenciesMet(c, rec, obs)
			if failure != "" {
				e.failTask(ctx, rec, failure)
				return 0
			}
			if !ready {
				waitFor(time.Second)
				continue
			}
			if !exists {
				if st.PullStartedAt == nil {
					st.PullStartedAt = ptrTime(now)
				}
				digest, err := e.ensureImage(ctx, c.Image)
				st.PullStoppedAt = ptrTime(time.Now())
				if err != nil {
					e.failTask(ctx, rec, fmt.Sprintf("CannotPullContainerError: %v", err))
					return 0
				}
				cr.ImageDigest = digest
				id, err := e.createContainer(ctx, rec, c)
				if err != nil {
					e.failTask(ctx, rec, fmt.Sprintf("CannotCreateContainerError: container %s: %v", c.Name, err))
					return 0
				}
				cr.ID = id
				// Recorded before it starts: a crash from here on finds the container again.
				if err := e.save(rec); err != nil {
					klog.FromContext(ctx).Error(err, "Saving the task state")
				}
			}
			if err := e.startContainer(ctx, cr.ID); err != nil {
				e.failTask(ctx, rec, fmt.Sprintf("CannotStartContainerError: container %s: %v", c.Name, err))
				return 0
			}
			klog.FromContext(ctx).V(1).Info("Started container", "container", c.Name, "id", shortID(cr.ID))
			if o2, err := e.inspect(ctx, cr.ID); err == nil {
				obs[c.Name] = o2
			}
			waitFor(time.Second)
		case o.State == rt.StateExited && stoppedByReboot(o, e.cfg.BootTime):
			// The host went down under the container; it runs again, as before the reboot,
			// whether or not the control plane can be reached.
			if err := e.startContainer(ctx, cr.ID); err != nil {
				e.failTask(ctx, rec, fmt.Sprintf("CannotStartContainerError: container %s after the host restarted: %v", c.Name, err))
				return 0
			}
			klog.FromContext(ctx).Info("Started container again after the host restarted", "container", c.Name)
			if o2, err := e.inspect(ctx, cr.ID); err == nil {
				obs[c.Name] = o2
			}
		case o.State == rt.StateExited:
			if restartable(c, cr, o, now) {
				if err := e.startContainer(ctx, cr.ID); err != nil {
					klog.FromContext(ctx).Error(err, "Restarting container failed", "container", c.Name)
				} else {
					cr.RestartCount++
					cr.LastRestartAt = time.Now()
					klog.FromContext(ctx).Info("Restarted container under its restartPolicy", "container", c.Name,
						"exitCode", o.ExitCode, "restartCount", cr.RestartCount)
					if o2, err := e.inspect(ctx, cr.ID); err == nil {
						obs[c.Name] = o2
					}
					continue
				}
			}
			cr.Final = true
			cr.ExitCode = ptrInt32(int32(o.ExitCode))
			cr.Reason = exitReason(o)
			if essential(c) {
				e.stopTask(ctx, rec, ecsv1alpha1.StopCodeEssentialContainerExited, reasonEssentialExited)
				return 0
			}
		}
	}
	e.fillStatus(rec, obs)
	if st.LastStatus == ecsv1alpha1.TaskStatePending && allStarted(rec, obs) {
		st.LastStatus = ecsv1alpha1.TaskStateRunning
		st.StartedAt = ptrTime(time.Now())
	}
	if hasHealthCheck(rec) {
		waitFor(e.cfg.ResyncInterval)
	}
	return after
}

// allStarted reports whether every essential container runs and every other one has run or runs.
func allStarted(rec *taskRecord, obs map[string]rt.Container) bool {
	for i := range rec.Task.Spec.Containers {
		c := &rec.Task.Spec.Containers[i]
		o, ok := obs[c.Name]
		cr := rec.Containers[c.Name]
		switch {
		case essential(c) && (!ok || o.State != rt.StateRunning):
			return false
		case !essential(c) && !(cr != nil && cr.Final) && (!ok || o.State == rt.StateCreated):
			return false
		}
	}
	return true
}

func hasHealthCheck(rec *taskRecord) bool {
	for i := range rec.Task.Spec.Containers {
		if rec.Task.Spec.Containers[i].HealthCheck != nil {
			return true
		}
	}
	return false
}

// dependenciesMet tells whether c's dependsOn conditions hold, or why they never will.
func dependenciesMet(c *ecsv1alpha1.ContainerDefinition, rec *taskRecord, obs map[string]rt.Container) (bool, string) {
	for _, d := range c.DependsOn {
		dep := rec.Containers[d.ContainerName]
		o, exists := obs[d.ContainerName]
		started := exists && o.State != rt.StateCreated
		final := dep != nil && dep.Final
		switch d.Condition {
		case ecsv1alpha1.ContainerConditionStart:
			if !started && !final {
				return false, ""
			}
		case ecsv1alpha1.ContainerConditionComplete:
			if !final {
				return false, ""
			}
		case ecsv1alpha1.ContainerConditionSuccess:
			if !final {
				return false, ""
			}
			if dep.ExitCode == nil || *dep.ExitCode != 0 {
				code := "none"
				if dep.ExitCode != nil {
					code = fmt.Sprint(*dep.ExitCode)
				}
				return false, fmt.Sprintf("DependencyError: container %s depends on %s exiting with code 0 (SUCCESS); it exited with %s", c.Name, d.ContainerName, code)
			}
		case ecsv1alpha1.ContainerConditionHealthy:
			if final {
				return false, fmt.Sprintf("DependencyError: container %s depends on %s being HEALTHY; it exited", c.Name, d.ContainerName)
			}
			if !exists || o.Health != rt.HealthHealthy {
				return false, ""
			}
		}
	}
	return true, ""
}

// stoppedByReboot tells whether a container stopped before the host last booted.
func stoppedByReboot(o rt.Container, boot time.Time) bool {
	return !boot.IsZero() && !o.FinishedAt.IsZero() && o.FinishedAt.Before(boot)
}

// restartable tells whether an exited container is restarted under its restartPolicy.
func restartable(c *ecsv1alpha1.ContainerDefinition, cr *containerRecord, o rt.Container, now time.Time) bool {
	p := c.RestartPolicy
	if p == nil || !p.Enabled || slices.Contains(p.IgnoredExitCodes, int32(o.ExitCode)) {
		return false
	}
	period := 300 * time.Second
	if p.RestartAttemptPeriod > 0 {
		period = time.Duration(p.RestartAttemptPeriod) * time.Second
	}
	// As ECS: a container restarts only after it ran for the attempt period, counted from its
	// last restart or its first start. One that exits sooner is not restarted.
	since := o.StartedAt
	if !cr.LastRestartAt.IsZero() {
		since = cr.LastRestartAt
	}
	ran := o.FinishedAt.Sub(since)
	if o.FinishedAt.IsZero() {
		ran = now.Sub(since)
	}
	return ran >= period
}

func exitReason(o rt.Container) string {
	switch {
	case o.OOMKilled:
		return "OutOfMemoryError: Container killed due to memory usage"
	case o.Error != "":
		return o.Error
	}
	return ""
}

// failTask stops a task that cannot start.
func (e *Engine) failTask(ctx context.Context, rec *taskRecord, reason string) {
	klog.FromContext(ctx).Info("Task cannot start", "reason", reason)
	e.stopTask(ctx, rec, ecsv1alpha1.StopCodeTaskFailedToStart, reason)
}

// stopTask stops every container of the task, each with SIGTERM and SIGKILL after its
// stopTimeout, all at once, and marks the task STOPPED. A stop that fails leaves the task as it
// is, to be tried again.
func (e *Engine) stopTask(ctx context.Context, rec *taskRecord, code ecsv1alpha1.TaskStopCode, reason string) {
	st := &rec.Task.Status
	if st.StoppingAt == nil {
		st.StoppingAt = ptrTime(time.Now())
	}
	if st.StopCode == "" {
		st.StopCode = code
	}
	if st.StoppedReason == "" {
		st.StoppedReason = reason
	}
	obs, err := e.observe(ctx, rec)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Cannot look at the task's containers to stop them")
		return
	}
	for _, o := range obs {
		if o.State == rt.StateRunning && st.LastStatus.Before(ecsv1alpha1.TaskStateStopping) {
			// Said before the containers get their stopTimeout, so that the control plane knows
			// the task is on its way out.
			st.LastStatus = ecsv1alpha1.TaskStateStopping
			if err := e.save(rec); err != nil {
				klog.FromContext(ctx).Error(err, "Saving the task state")
			}
			break
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range rec.Task.Spec.Containers {
		c := &rec.Task.Spec.Containers[i]
		o, ok := obs[c.Name]
		if !ok || o.State != rt.StateRunning {
			continue
		}
		timeout := e.cfg.DefaultStopTimeout
		if c.StopTimeout != nil {
			timeout = time.Duration(*c.StopTimeout) * time.Second
		}
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, timeout+e.cfg.RequestTimeout)
			defer cancel()
			if err := e.cfg.Runtime.StopContainer(sctx, o.ID, timeout); err != nil && !errors.Is(err, rt.ErrNotFound) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("container %s: %w", c.Name, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		klog.FromContext(ctx).Error(errors.Join(errs...), "Stopping the task's containers failed; trying again")
		return
	}
	if obs, err = e.observe(ctx, rec); err != nil {
		klog.FromContext(ctx).Error(err, "Cannot look at the task's stopped containers")
		return
	}
	for i := range rec.Task.Spec.Containers {
		c := &rec.Task.Spec.Containers[i]
		cr := rec.Containers[c.Name]
		if cr == nil {
			cr = &containerRecord{}
			rec.Containers[c.Name] = cr
		}
		if o, ok := obs[c.Name]; ok && !cr.Final && o.State == rt.StateExited {
			cr.Final = true
			cr.ExitCode = ptrInt32(int32(o.ExitCode))
			cr.Reason = exitReason(o)
		}
		cr.Final = true
	}
	e.fillStatus(rec, obs)
	now := time.Now()
	if st.ExecutionStoppedAt == nil {
		st.ExecutionStoppedAt = ptrTime(now)
	}
	st.LastStatus = ecsv1alpha1.TaskStateStopped
	st.StoppedAt = ptrTime(now)
	klog.FromContext(ctx).Info("Task stopped", "stopCode", st.StopCode, "reason", st.StoppedReason)
}

// cleanup removes the containers and volumes of a task stopped for CleanupDelay, once its final
// status has been reported, and then forgets the task.
func (e *Engine) cleanup(ctx context.Context, rec *taskRecord) (time.Duration, error) {
	st := rec.Task.Status
	if !rec.Reported && !rec.Gone {
		return 0, nil
	}
	stoppedAt := time.Now()
	if st.StoppedAt != nil {
		stoppedAt = st.StoppedAt.Time
	}
	if wait := e.cfg.CleanupDelay - time.Since(stoppedAt); wait > 0 {
		return wait, nil
	}
	cctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer cancel()
	labels := e.ownLabels()
	labels[LabelTaskUID] = string(rec.Task.UID)
	list, err := e.cfg.Runtime.ListContainers(cctx, labels)
	if err != nil {
		return 0, fmt.Errorf("listing the stopped task's containers: %w", err)
	}
	for _, c := range list {
		if err := e.cfg.Runtime.RemoveContainer(cctx, c.ID); err != nil && !errors.Is(err, rt.ErrNotFound) {
			return 0, fmt.Errorf("removing container %s: %w", c.Name, err)
		}
	}
	for _, v := range rec.Task.Spec.Volumes {
		if v.Host == nil {
			if err := e.cfg.Runtime.RemoveVolume(cctx, taskVolumeName(&rec.Task, v.Name)); err != nil {
				return 0, fmt.Errorf("removing volume %s: %w", v.Name, err)
			}
		}
	}
	e.mu.Lock()
	err = e.store.deleteTask(string(rec.Task.UID))
	e.mu.Unlock()
	klog.FromContext(ctx).V(1).Info("Removed the stopped task's containers")
	return 0, err
}

func (e *Engine) inspect(ctx context.Context, id string) (rt.Container, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer cancel()
	return e.cfg.Runtime.InspectContainer(ctx, id)
}

func (e *Engine) startContainer(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*e.cfg.RequestTimeout)
	defer cancel()
	return e.cfg.Runtime.StartContainer(ctx, id)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func ptrTime(t time.Time) *metav1.Time { mt := metav1.NewTime(t); return &mt }
func ptrInt32(v int32) *int32          { return &v }
