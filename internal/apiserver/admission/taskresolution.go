package admission

import (
	"context"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/revisions"
)

// TaskResolution copies a new Task's task definition revision into its spec as the Task is
// created, exactly as the task controller would a moment later, so that the Task is stored ready
// to place: one write per task instead of two, and no round trip through a controller before
// placement can start.
//
// It reads TaskDefinitions and revisions from an informer cache. When the cache cannot answer yet
// (droverd is starting, or the TaskDefinition was created a moment ago and its revision is not in
// the cache yet) or the reference names nothing, the Task is stored as it came and the task
// controller resolves it, or reports why it cannot, in the Task's Resolved condition. Admission
// never refuses a Task for its reference: a Task may name a TaskDefinition that is applied after it.
type TaskResolution struct {
	reader atomic.Pointer[client.Reader]
}

var _ admission.MutationInterface = &TaskResolution{}

// SetReader makes the plugin resolve through r, a cache that holds TaskDefinitions and
// TaskDefinitionRevisions and has synced.
func (p *TaskResolution) SetReader(r client.Reader) { p.reader.Store(&r) }

// Handles implements admission.Interface.
func (p *TaskResolution) Handles(op admission.Operation) bool { return op == admission.Create }

// Admit implements admission.MutationInterface.
func (p *TaskResolution) Admit(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	kind := a.GetKind()
	if kind.Group != ecsv1alpha1.GroupName || kind.Kind != "Task" || a.GetSubresource() != "" {
		return nil
	}
	rp := p.reader.Load()
	if rp == nil {
		return nil
	}
	u, ok := a.GetObject().(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	task := &ecsv1alpha1.Task{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, task); err != nil {
		return nil // the schema reports what is malformed
	}
	if task.Spec.TaskDefinition == "" || (task.Spec.TaskDefinitionRevision != "" && len(task.Spec.Containers) > 0) {
		return nil
	}
	ref := task.Spec.TaskDefinition
	if task.Spec.TaskDefinitionRevision != "" {
		family, n, err := ecsv1alpha1.ParseRevisionName(task.Spec.TaskDefinitionRevision)
		if err != nil {
			return nil
		}
		ref = ecsv1alpha1.TaskDefinitionRef(family, n)
	}
	rev, err := revisions.Resolve(ctx, *rp, a.GetNamespace(), ref)
	if err != nil {
		return nil // the task controller retries and reports it
	}
	if err := revisions.ApplyToTask(task, rev); err != nil {
		return nil // likewise: too many constraints together is reported on the Task
	}
	out, err := runtime.DefaultUnstructuredConverter.ToUnstructured(task)
	if err != nil {
		return nil
	}
	spec, ok := out["spec"]
	if !ok {
		return nil
	}
	u.Object["spec"] = spec
	return nil
}
