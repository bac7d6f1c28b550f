// Package revisions resolves task definition references (web, web:3) to TaskDefinitionRevisions and
// copies a revision into a Task, for the service and task controllers.
package revisions

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// NotFoundError says a reference names no existing revision.
type NotFoundError struct {
	Ref, Reason string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("task definition %q: %s", e.Ref, e.Reason)
}

// Resolve returns the revision ref names in namespace: family:n is revision n; a bare family is
// its TaskDefinition's newest revision.
func Resolve(ctx context.Context, c client.Reader, namespace, ref string) (*ecsv1alpha1.TaskDefinitionRevision, error) {
	family, n, err := ecsv1alpha1.ParseTaskDefinitionRef(ref)
	if err != nil {
		return nil, &NotFoundError{Ref: ref, Reason: err.Error()}
	}
	name := ""
	if n > 0 {
		name = ecsv1alpha1.RevisionName(family, n)
	} else {
		td := &ecsv1alpha1.TaskDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: family}, td); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, &NotFoundError{Ref: ref, Reason: fmt.Sprintf("no TaskDefinition %s in namespace %s", family, namespace)}
			}
			return nil, err
		}
		if td.Status.LatestRevisionName == "" {
			return nil, &NotFoundError{Ref: ref, Reason: "the TaskDefinition has no revision yet"}
		}
		name = td.Status.LatestRevisionName
	}
	rev := &ecsv1alpha1.TaskDefinitionRevision{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, rev); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &NotFoundError{Ref: ref, Reason: fmt.Sprintf("no TaskDefinitionRevision %s in namespace %s", name, namespace)}
		}
		return nil, err
	}
	return rev, nil
}

// ApplyToTask copies what the agent and the placer need from rev into task.spec: the containers,
// network mode, volumes, task-level cpu and memory, and the revision's placement constraints
// ahead of the task's own. It does nothing to a task that is already resolved.
func ApplyToTask(task *ecsv1alpha1.Task, rev *ecsv1alpha1.TaskDefinitionRevision) error {
	if task.Spec.TaskDefinitionRevision != "" && len(task.Spec.Containers) > 0 {
		return nil
	}
	td := rev.Spec.TaskDefinition.DeepCopy()
	constraints := append(td.PlacementConstraints, task.Spec.PlacementConstraints...)
	if len(constraints) > 10 {
		return fmt.Errorf("the task definition's %d placement constraints and the task's %d exceed the limit of 10",
			len(td.PlacementConstraints), len(task.Spec.PlacementConstraints))
	}
	task.Spec.TaskDefinitionRevision = rev.Name
	task.Spec.Containers = td.ContainerDefinitions
	task.Spec.NetworkMode = td.NetworkMode
	task.Spec.Volumes = td.Volumes
	task.Spec.CPU = td.CPU
	task.Spec.Memory = td.Memory
	task.Spec.PlacementConstraints = constraints
	if task.Spec.Group == "" {
		task.Spec.Group = "family:" + rev.Spec.Family
	}
	return nil
}
