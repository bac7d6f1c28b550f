package service

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// maxDeployments is how many deployments status lists.
const maxDeployments = 10

// patchStatus computes the status from what this pass observed and writes it once, if it changed.
func (r *Reconciler) patchStatus(ctx context.Context, before *ecsv1alpha1.Service, s *scope, passErr error) error {
	svc := s.svc
	computeStatus(svc, s, metav1.NewTime(r.now()))
	if passErr == nil {
		svc.Status.ObservedGeneration = svc.Generation
	}
	wasSteady := meta.IsStatusConditionTrue(before.Status.Conditions, ecsv1alpha1.ServiceConditionSteadyState)
	if !wasSteady && meta.IsStatusConditionTrue(svc.Status.Conditions, ecsv1alpha1.ServiceConditionSteadyState) {
		r.Recorder.Eventf(svc, corev1.EventTypeNormal, ecsv1alpha1.ServiceReasonSteadyState, "(service %s) has reached a steady state.", svc.Name)
	}
	if apiequality.Semantic.DeepEqual(before.Status, svc.Status) {
		return nil
	}
	// Conditional on the resourceVersion the pass read: status carries what the controller
	// remembers (failed deployments, a promoted canary), which a write from a stale cache would lose.
	return client.IgnoreNotFound(r.Status().Patch(ctx, svc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})))
}

// computeStatus fills in counts, deployments and conditions.
func computeStatus(svc *ecsv1alpha1.Service, s *scope, now metav1.Time) {
	desired := s.desired
	st := &svc.Status
	st.Selector = ecsv1alpha1.LabelService + "=" + svc.Name
	st.DesiredCount = desired
	st.RunningCount, st.PendingCount = 0, 0
	healthy := int32(0)
	for _, t := range activeTasks(s.tasks) {
		if t.Status.LastStatus == ecsv1alpha1.TaskStateRunning {
			st.RunningCount++
			if t.Status.HealthStatus != ecsv1alpha1.HealthStatusUnhealthy {
				healthy++
			}
		} else {
			st.PendingCount++
		}
	}
	if s.revision == nil {
		return
	}
	st.TaskDefinitionRevision = s.revision.Name
	st.Deployments = deployments(svc, s, now)
	primary := st.Deployments[0]

	steady := primary.RolloutState == ecsv1alpha1.RolloutStateCompleted && st.RunningCount == desired && st.PendingCount == 0
	if msg := unplacedMessage(s); msg != "" {
		setCondition(svc, ecsv1alpha1.ServiceConditionSteadyState, metav1.ConditionFalse, ecsv1alpha1.ServiceReasonUnableToPlace, msg)
	} else if steady {
		setCondition(svc, ecsv1alpha1.ServiceConditionSteadyState, metav1.ConditionTrue, ecsv1alpha1.ServiceReasonSteadyState,
			fmt.Sprintf("%d of %d tasks running", st.RunningCount, desired))
	} else {
		setCondition(svc, ecsv1alpha1.ServiceConditionSteadyState, metav1.ConditionFalse, ecsv1alpha1.ServiceReasonTasksPending,
			fmt.Sprintf("%d of %d tasks running, %d pending", st.RunningCount, desired, st.PendingCount))
	}
	floor := ceilPercent(desired, svc.Spec.MinimumHealthyPercent())
	if healthy >= floor && (desired == 0 || healthy > 0) {
		setCondition(svc, ecsv1alpha1.ServiceConditionReady, metav1.ConditionTrue, ecsv1alpha1.ServiceReasonSteadyState,
			fmt.Sprintf("%d healthy running tasks, at least %d required", healthy, floor))
	} else {
		setCondition(svc, ecsv1alpha1.ServiceConditionReady, metav1.ConditionFalse, ecsv1alpha1.ServiceReasonTasksUnhealthy,
			fmt.Sprintf("%d healthy running tasks, %d required", healthy, max(floor, 1)))
	}
}

// deployments lists the primary deployment (the service's revision) first, then older revisions
// that still have tasks (ACTIVE), keeping each deployment's createdAt.
func deployments(svc *ecsv1alpha1.Service, s *scope, now metav1.Time) []ecsv1alpha1.Deployment {
	prev := map[string]ecsv1alpha1.Deployment{}
	for _, d := range svc.Status.Deployments {
		prev[d.ID] = d
	}
	byRev := map[string]*ecsv1alpha1.Deployment{}
	get := func(rev string) *ecsv1alpha1.Deployment {
		if d, ok := byRev[rev]; ok {
			return d
		}
		d := &ecsv1alpha1.Deployment{ID: rev, TaskDefinitionRevision: rev, Status: ecsv1alpha1.DeploymentStatusActive}
		if p, ok := prev[rev]; ok {
			d.CreatedAt, d.UpdatedAt, d.CanaryPromotedAt = p.CreatedAt, p.UpdatedAt, p.CanaryPromotedAt
		}
		byRev[rev] = d
		return d
	}
	primary := get(s.revision.Name)
	primary.Status = ecsv1alpha1.DeploymentStatusPrimary
	if primary.CanaryPromotedAt == nil && (s.promoted || promotedByTasks(s.tasks, s.revision.Name)) {
		primary.CanaryPromotedAt = &now
	}
	primary.DesiredCount = s.desired
	othersActive := false
	for i := range s.tasks {
		t := &s.tasks[i]
		d := get(t.Spec.TaskDefinitionRevision)
		switch {
		case active(t) && t.Status.LastStatus == ecsv1alpha1.TaskStateRunning:
			d.RunningCount++
		case active(t):
			d.PendingCount++
		case (t.Status.StartedAt == nil && t.Spec.DesiredStatus != ecsv1alpha1.TaskDesiredStopped) || failedHealthChecks(t):
			// As ECS's failedTasks: tasks that never ran, and tasks stopped for failing health checks.
			d.FailedTasks++
		}
		if d != primary && active(t) {
			othersActive = true
		}
	}
	// Deployments that failed or completed are remembered: a failed revision is not deployed again
	// and the last completed one is what a rollback returns to.
	keep := lastCompleted(svc, primary.ID)
	for _, p := range svc.Status.Deployments {
		if p.RolloutState == ecsv1alpha1.RolloutStateFailed || (keep != nil && p.ID == keep.ID) {
			get(p.TaskDefinitionRevision)
		}
	}
	for rev, d := range byRev {
		if d == primary {
			continue
		}
		p, had := prev[rev]
		switch {
		case s.failed[rev] != "":
			d.RolloutState, d.RolloutStateReason = ecsv1alpha1.RolloutStateFailed, s.failed[rev]
		case had && (p.RolloutState == ecsv1alpha1.RolloutStateFailed || (keep != nil && p.ID == keep.ID)):
			d.RolloutState, d.RolloutStateReason = p.RolloutState, p.RolloutStateReason
			d.FailedTasks = max(d.FailedTasks, p.FailedTasks)
		}
		if d.RunningCount+d.PendingCount == 0 {
			d.Status = ecsv1alpha1.DeploymentStatusInactive
		}
	}
	done := primary.RunningCount == primary.DesiredCount && primary.PendingCount == 0 && !othersActive
	if p, ok := prev[primary.ID]; ok && p.Status == ecsv1alpha1.DeploymentStatusPrimary && p.RolloutState == ecsv1alpha1.RolloutStateCompleted {
		done = true // a completed rollout stays completed while the service replaces tasks
	}
	switch {
	case s.failed[primary.ID] != "" || s.halted:
		primary.RolloutState = ecsv1alpha1.RolloutStateFailed
		primary.RolloutStateReason = s.failed[primary.ID]
		if p, ok := prev[primary.ID]; ok && primary.RolloutStateReason == "" {
			primary.RolloutStateReason = p.RolloutStateReason
		}
	case done:
		primary.RolloutState = ecsv1alpha1.RolloutStateCompleted
		primary.RolloutStateReason = "ECS deployment " + primary.ID + " completed."
		if s.rolledBackFrom != "" {
			primary.RolloutStateReason = "ECS deployment " + primary.ID + " completed after rolling back from " + s.rolledBackFrom + "."
		}
	default:
		primary.RolloutState = ecsv1alpha1.RolloutStateInProgress
		primary.RolloutStateReason = s.progress
		if s.rolledBackFrom != "" {
			primary.RolloutStateReason = "Rolling back from failed deployment " + s.rolledBackFrom + "."
		}
	}
	ordered := []*ecsv1alpha1.Deployment{primary}
	ids := make([]string, 0, len(byRev))
	for id, d := range byRev {
		// Older deployments are listed while they have tasks, failed, or completed last.
		if d != primary && (d.RunningCount+d.PendingCount > 0 || d.RolloutState != "") {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		ordered = append(ordered, byRev[id])
	}
	out := make([]ecsv1alpha1.Deployment, 0, len(ordered))
	for _, d := range ordered[:min(len(ordered), maxDeployments)] {
		if p, ok := prev[d.ID]; !ok || p.RunningCount != d.RunningCount || p.PendingCount != d.PendingCount ||
			p.RolloutState != d.RolloutState || p.Status != d.Status || p.FailedTasks != d.FailedTasks {
			d.UpdatedAt = &now
		}
		if d.CreatedAt == nil {
			d.CreatedAt = &now
		}
		out = append(out, *d)
	}
	return out
}

// unplacedMessage is why a task of the service waits for an instance, from its Placed condition.
func unplacedMessage(s *scope) string {
	for _, t := range activeTasks(s.tasks) {
		if t.Spec.ContainerInstance != "" {
			continue
		}
		if c := meta.FindStatusCondition(t.Status.Conditions, ecsv1alpha1.TaskConditionPlaced); c != nil && c.Status == metav1.ConditionFalse {
			return fmt.Sprintf("task %s cannot be placed: %s", t.Name, c.Message)
		}
	}
	return ""
}

// setNotFound records that the service's task definition does not resolve.
func setNotFound(svc *ecsv1alpha1.Service, msg string) {
	setCondition(svc, ecsv1alpha1.ServiceConditionSteadyState, metav1.ConditionFalse, ecsv1alpha1.ServiceReasonTaskDefinitionNotFound, msg)
	setCondition(svc, ecsv1alpha1.ServiceConditionReady, metav1.ConditionFalse, ecsv1alpha1.ServiceReasonTaskDefinitionNotFound, msg)
}

func setCondition(svc *ecsv1alpha1.Service, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&svc.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: svc.Generation,
	})
}

// floorPercent is p percent of n, rounded down.
func floorPercent(n, p int32) int32 {
	return int32(int64(n) * int64(p) / 100)
}

// ceilPercent is p percent of n, rounded up.
func ceilPercent(n, p int32) int32 {
	return int32((int64(n)*int64(p) + 99) / 100)
}
