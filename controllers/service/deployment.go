package service

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// breakerThreshold is how many failed tasks trip a deployment's circuit breaker: half of
// desiredCount, at least 10 and at most 200, as ECS counts.
func breakerThreshold(desired int32) int32 {
	return min(max((desired+1)/2, 10), 200)
}

// AnnotationFailedHealthChecks marks a task the service stopped because it failed its container
// health checks. The mark outlives the task's health: an agent reports UNKNOWN once the containers
// have stopped, and the circuit breaker still has to count the task.
const AnnotationFailedHealthChecks = "ecs.drover.dev/failed-health-checks"

// failedHealthChecks tells whether the service stopped the task for failing its health checks.
func failedHealthChecks(t *ecsv1alpha1.Task) bool {
	return t.Annotations[AnnotationFailedHealthChecks] == "true"
}

// failedToStart tells whether the task stopped without the service asking before it ever ran.
func failedToStart(t *ecsv1alpha1.Task) bool {
	return t.Status.LastStatus == ecsv1alpha1.TaskStateStopped && t.Status.StartedAt == nil && t.Spec.DesiredStatus != ecsv1alpha1.TaskDesiredStopped
}

// breakerFailures counts the failures of the revision's tasks that its circuit breaker weighs, in
// ECS's two stages. Until one of its tasks has reached RUNNING (stage 1) those are the tasks that
// stopped before ever running; from then on (stage 2) the tasks the service stopped because they
// failed their container health checks.
func breakerFailures(tasks []ecsv1alpha1.Task, revision string) (failed int32, stage2 bool) {
	var starts, checks int32
	for i := range tasks {
		t := &tasks[i]
		if t.Spec.TaskDefinitionRevision != revision {
			continue
		}
		if t.Status.StartedAt != nil {
			stage2 = true
		}
		switch {
		case failedToStart(t):
			starts++
		case failedHealthChecks(t):
			checks++
		}
	}
	if stage2 {
		return checks, true
	}
	return starts, false
}

// deploymentOf returns the service's recorded deployment of a revision, or nil.
func deploymentOf(svc *ecsv1alpha1.Service, revision string) *ecsv1alpha1.Deployment {
	for i := range svc.Status.Deployments {
		if d := &svc.Status.Deployments[i]; d.TaskDefinitionRevision == revision {
			return d
		}
	}
	return nil
}

// lastCompleted returns the newest COMPLETED deployment other than revision, or nil.
func lastCompleted(svc *ecsv1alpha1.Service, revision string) *ecsv1alpha1.Deployment {
	var best *ecsv1alpha1.Deployment
	for i := range svc.Status.Deployments {
		d := &svc.Status.Deployments[i]
		if d.TaskDefinitionRevision == revision || d.RolloutState != ecsv1alpha1.RolloutStateCompleted {
			continue
		}
		if best == nil || (d.UpdatedAt != nil && best.UpdatedAt != nil && d.UpdatedAt.After(best.UpdatedAt.Time)) {
			best = d
		}
	}
	return best
}

// chooseRevision decides which revision the service runs in this pass. Normally that is the one
// spec.taskDefinition resolves to. When that revision's deployment has FAILED - or fails now,
// because its circuit breaker trips - and rollback is on, the service returns to its last
// COMPLETED revision; without rollback it keeps the failed deployment and starts no more of its
// tasks (s.halted).
func (r *Reconciler) chooseRevision(ctx context.Context, s *scope, resolved *ecsv1alpha1.TaskDefinitionRevision) error {
	s.revision = resolved
	svc := s.svc
	cb := breakerConfig(svc)
	d := deploymentOf(svc, resolved.Name)
	failedBefore := d != nil && d.RolloutState == ecsv1alpha1.RolloutStateFailed
	// A failed canary always rolls back: it exists to protect the running tasks.
	rollback := (cb != nil && cb.Enable && cb.Rollback) || (canaryOf(svc) != nil && (failedBefore || inCanary(svc, resolved.Name, s.tasks)))
	canaryFailed := ""
	switch {
	case failedBefore:
	case inCanary(svc, resolved.Name, s.tasks):
		canaryFailed = newTaskFailure(s.tasks, resolved.Name, "Canary")
	case wavesOf(svc) != nil && hasOtherRevisions(s.tasks, resolved.Name):
		// The first failure halts a rollout across waves; the later groups stay as they are.
		canaryFailed = newTaskFailure(s.tasks, resolved.Name, "Wave")
	}
	switch {
	case canaryFailed != "":
		s.failed = map[string]string{resolved.Name: canaryFailed}
		r.Recorder.Eventf(svc, corev1.EventTypeWarning, ecsv1alpha1.ServiceReasonDeploymentFailed,
			"(service %s) deployment %s failed: %s", svc.Name, resolved.Name, canaryFailed)
	case failedBefore:
	case cb == nil || !cb.Enable:
		return nil
	default:
		failed, stage2 := breakerFailures(s.tasks, resolved.Name)
		threshold := breakerThreshold(desiredCount(svc))
		if failed < threshold {
			return nil
		}
		what := "failed to start"
		if stage2 {
			what = "failed container health checks"
		}
		s.failed = map[string]string{resolved.Name: fmt.Sprintf(
			"ECS deployment circuit breaker: %d tasks of %s %s (threshold %d).", failed, resolved.Name, what, threshold)}
		r.Recorder.Eventf(svc, corev1.EventTypeWarning, ecsv1alpha1.ServiceReasonDeploymentFailed,
			"(service %s) deployment %s failed: %d tasks %s; the circuit breaker tripped at %d.",
			svc.Name, resolved.Name, failed, what, threshold)
	}
	if !rollback {
		s.halted = true
		return nil
	}
	back := lastCompleted(svc, resolved.Name)
	if failedBefore && len(svc.Status.Deployments) > 0 {
		// Already rolling back: stay with the deployment that replaced the failed one.
		if p := &svc.Status.Deployments[0]; p.Status == ecsv1alpha1.DeploymentStatusPrimary && p.TaskDefinitionRevision != resolved.Name {
			back = p
		}
	}
	if back == nil {
		s.halted = true
		return nil
	}
	rev := &ecsv1alpha1.TaskDefinitionRevision{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: svc.Namespace, Name: back.TaskDefinitionRevision}, rev); err != nil {
		s.halted = true
		return client.IgnoreNotFound(err)
	}
	if !failedBefore {
		r.Recorder.Eventf(svc, corev1.EventTypeNormal, "RollingBack",
			"(service %s) is rolling back from deployment %s to %s, its last completed deployment.", svc.Name, resolved.Name, rev.Name)
	}
	s.revision = rev
	s.rolledBackFrom = resolved.Name
	return nil
}

func breakerConfig(svc *ecsv1alpha1.Service) *ecsv1alpha1.DeploymentCircuitBreaker {
	if svc.Spec.DeploymentConfiguration == nil {
		return nil
	}
	return svc.Spec.DeploymentConfiguration.DeploymentCircuitBreaker
}

// hasOtherRevisions tells whether tasks of other revisions than revision still run.
func hasOtherRevisions(tasks []ecsv1alpha1.Task, revision string) bool {
	for i := range tasks {
		if t := &tasks[i]; active(t) && t.Spec.TaskDefinitionRevision != revision {
			return true
		}
	}
	return false
}
