package service

import (
	"context"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// defaultBakeTime is the canary's bake time when bakeTimeSeconds is absent.
const defaultBakeTime = 300 * time.Second

func canaryOf(svc *ecsv1alpha1.Service) *ecsv1alpha1.Canary {
	if svc.Spec.DeploymentConfiguration == nil || svc.Spec.SchedulingStrategy == ecsv1alpha1.SchedulingStrategyDaemon {
		return nil
	}
	return svc.Spec.DeploymentConfiguration.Canary
}

func bakeTime(c *ecsv1alpha1.Canary) time.Duration {
	if c.BakeTimeSeconds == nil {
		return defaultBakeTime
	}
	return time.Duration(*c.BakeTimeSeconds) * time.Second
}

// inCanary tells whether the deployment of revision is in its canary phase: the service has a
// canary, the deployment has not been promoted or completed, and tasks of other revisions still
// run (a first deployment has nothing to protect).
func inCanary(svc *ecsv1alpha1.Service, revision string, tasks []ecsv1alpha1.Task) bool {
	if canaryOf(svc) == nil {
		return false
	}
	if d := deploymentOf(svc, revision); d != nil && (d.CanaryPromotedAt != nil || d.RolloutState == ecsv1alpha1.RolloutStateCompleted) {
		return false
	}
	if promotedByTasks(tasks, revision) {
		return false
	}
	for i := range tasks {
		if t := &tasks[i]; active(t) && t.Spec.TaskDefinitionRevision != revision {
			return true
		}
	}
	return false
}

// newTaskFailure says why a canary or wave of revision failed (what names it), or "": one of its
// tasks stopped without the service asking (it failed to start or exited), or turned UNHEALTHY.
func newTaskFailure(tasks []ecsv1alpha1.Task, revision, what string) string {
	for i := range tasks {
		t := &tasks[i]
		if t.Spec.TaskDefinitionRevision != revision {
			continue
		}
		switch {
		case t.Status.LastStatus == ecsv1alpha1.TaskStateStopped && t.Spec.DesiredStatus != ecsv1alpha1.TaskDesiredStopped:
			return fmt.Sprintf("%s failed: task %s stopped (%s: %s).", what, t.Name, t.Status.StopCode, t.Status.StoppedReason)
		case t.Status.HealthStatus == ecsv1alpha1.HealthStatusUnhealthy:
			return fmt.Sprintf("%s failed: task %s is UNHEALTHY.", what, t.Name)
		}
	}
	return ""
}

// reconcileCanary runs the canary phase of a deployment: it starts canary.count tasks of the new
// revision beside the running ones and leaves those alone. Once every canary task has been RUNNING
// and healthy for the bake time the canary is promoted (s.promoted) and the pass goes on to replace
// the rest; until then it returns done with when to look again.
func (r *Reconciler) reconcileCanary(ctx context.Context, s *scope) (ctrl.Result, bool, error) {
	c := canaryOf(s.svc)
	var canaries []*ecsv1alpha1.Task
	for _, t := range activeTasks(s.tasks) {
		if t.Spec.TaskDefinitionRevision == s.revision.Name {
			canaries = append(canaries, t)
		}
	}
	want := int(c.Count)
	if len(canaries) < want {
		s.startingCanary = true
		defer func() { s.startingCanary = false }()
		for _, slot := range slotPlan(s.tasks, s.revision.Name, want-len(canaries)) {
			if err := r.createTask(ctx, s, slot[0], slot[1], ""); err != nil {
				return ctrl.Result{}, true, err
			}
		}
		s.progress = fmt.Sprintf("Canary: starting %d tasks of %s.", want, s.revision.Name)
		return ctrl.Result{}, true, nil
	}
	var since time.Time
	for _, t := range canaries {
		if !r.healthyRunning(s, t) || t.Status.StartedAt == nil {
			s.progress = fmt.Sprintf("Canary: waiting for %d tasks of %s to run and be healthy.", want, s.revision.Name)
			return ctrl.Result{}, true, nil
		}
		if t.Status.StartedAt.After(since) {
			since = t.Status.StartedAt.Time
		}
	}
	until := since.Add(bakeTime(c))
	if wait := until.Sub(r.now()); wait > 0 {
		s.progress = fmt.Sprintf("Canary: %d tasks of %s baking until %s.", want, s.revision.Name, until.UTC().Format(time.RFC3339))
		return ctrl.Result{RequeueAfter: wait}, true, nil
	}
	s.promoted = true
	r.Recorder.Eventf(s.svc, "Normal", "CanaryPromoted",
		"(service %s) promoted the canary of deployment %s after %s; replacing the other tasks.", s.svc.Name, s.revision.Name, bakeTime(c))
	return ctrl.Result{}, false, nil
}

// LabelCanary marks the tasks a deployment started as its canary.
const LabelCanary = "ecs.drover.dev/canary"

// promotedByTasks tells whether the deployment of revision has promoted its canary, from its tasks:
// it has canary tasks and tasks started after them, which only a promotion starts. The tasks say
// so even when the status the pass read is stale.
func promotedByTasks(tasks []ecsv1alpha1.Task, revision string) bool {
	canary, other := false, false
	for i := range tasks {
		t := &tasks[i]
		if t.Spec.TaskDefinitionRevision != revision {
			continue
		}
		if t.Labels[LabelCanary] == "true" {
			canary = true
		} else {
			other = true
		}
	}
	return canary && other
}
