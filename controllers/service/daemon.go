package service

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kerrors "k8s.io/apimachinery/pkg/util/errors"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/placement"
)

// reconcileDaemon keeps one task of the service's revision on every ACTIVE, connected instance of
// the cluster that meets the placement constraints. Tasks on instances that stop matching are
// stopped; on a DRAINING instance the daemon task stops last, once no other service task runs there.
// A task of an older revision is stopped before its replacement starts on the same instance.
func (r *Reconciler) reconcileDaemon(ctx context.Context, s *scope) (ctrl.Result, error) {
	constraints, err := placement.CompileConstraints(append(
		append([]ecsv1alpha1.PlacementConstraint(nil), s.revision.Spec.TaskDefinition.PlacementConstraints...),
		s.svc.Spec.PlacementConstraints...))
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("service %s: %w", s.svc.Name, err)
	}
	onInstance := map[string][]*ecsv1alpha1.Task{}
	for _, t := range activeTasks(s.tasks) {
		onInstance[t.Spec.ContainerInstance] = append(onInstance[t.Spec.ContainerInstance], t)
	}
	others, err := r.otherServiceTasksByInstance(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}

	var errs []error
	stop := func(t *ecsv1alpha1.Task, reason string) {
		if err := r.stopTask(ctx, t, reason); err != nil {
			errs = append(errs, err)
		}
	}
	names := make([]string, 0, len(s.instances))
	for name := range s.instances {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ci := s.instances[name]
		tasks := onInstance[name]
		delete(onInstance, name)
		eligible, why := daemonEligible(ci, constraints)
		if ci.Spec.State == ecsv1alpha1.ContainerInstanceDraining {
			if others[name] == 0 {
				for _, t := range tasks {
					stop(t, fmt.Sprintf("Task stopped because container instance %s is draining", name))
				}
			}
			continue
		}
		if !eligible {
			for _, t := range tasks {
				stop(t, fmt.Sprintf("Task stopped because container instance %s %s", name, why))
			}
			continue
		}
		s.desired++
		current := 0
		for _, t := range tasks {
			if t.Spec.TaskDefinitionRevision != s.revision.Name || current > 0 {
				stop(t, fmt.Sprintf("Task replaced by deployment %s", deploymentID(s.revision)))
				continue
			}
			current++
		}
		if len(tasks) == 0 && ci.Status.AgentConnected {
			if err := r.createTask(ctx, s, 0, daemonAttempt(s, name), name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// Tasks on instances that left the cluster or were deregistered.
	for name, tasks := range onInstance {
		for _, t := range tasks {
			stop(t, fmt.Sprintf("Task stopped because container instance %s is no longer in cluster %s", name, s.svc.Spec.Cluster))
		}
	}
	return ctrl.Result{}, kerrors.NewAggregate(errs)
}

// daemonEligible reports whether a daemon task belongs on the instance, and if not, why.
func daemonEligible(ci *ecsv1alpha1.ContainerInstance, constraints []placement.Constraint) (bool, string) {
	c := placement.NewCandidate(ci)
	for _, con := range constraints {
		if con.Type == ecsv1alpha1.PlacementConstraintMemberOf && !con.Expr.Matches(&c.Instance) {
			return false, "does not match constraint " + con.Expr.String()
		}
	}
	return true, ""
}

// daemonAttempt is the next attempt number for the service's revision on an instance.
func daemonAttempt(s *scope, instance string) int {
	next := 0
	for i := range s.tasks {
		t := &s.tasks[i]
		if t.Spec.TaskDefinitionRevision != s.revision.Name || t.Labels[LabelSlot] != instance {
			continue
		}
		if a, err := strconv.Atoi(t.Labels[LabelAttempt]); err == nil && a+1 > next {
			next = a + 1
		}
	}
	return next
}

// otherServiceTasksByInstance counts, per instance of the cluster, the active tasks of other
// services, which a DRAINING instance must shed before its daemon tasks stop.
func (r *Reconciler) otherServiceTasksByInstance(ctx context.Context, s *scope) (map[string]int, error) {
	tasks := &ecsv1alpha1.TaskList{}
	if err := r.List(ctx, tasks, client.InNamespace(s.svc.Namespace)); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for i := range tasks.Items {
		t := &tasks.Items[i]
		svc := t.Labels[ecsv1alpha1.LabelService]
		if svc == "" || svc == s.svc.Name || !active(t) || s.instances[t.Spec.ContainerInstance] == nil {
			continue
		}
		out[t.Spec.ContainerInstance]++
	}
	return out, nil
}
