package admission

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/placement/query"
)

// constraintPaths are where each kind keeps placement constraints.
var constraintPaths = map[string][]string{
	"Service":                {"spec", "placementConstraints"},
	"Task":                   {"spec", "placementConstraints"},
	"TaskDefinition":         {"spec", "placementConstraints"},
	"TaskDefinitionRevision": {"spec", "taskDefinition", "placementConstraints"},
}

// PlacementExpressions refuses memberOf expressions that do not parse, naming the field, the column
// and what was expected, so a bad expression is refused on apply instead of leaving tasks unplaced.
type PlacementExpressions struct{}

var _ admission.ValidationInterface = PlacementExpressions{}

// Handles implements admission.Interface.
func (PlacementExpressions) Handles(op admission.Operation) bool {
	return op == admission.Create || op == admission.Update
}

// Validate implements admission.ValidationInterface.
func (PlacementExpressions) Validate(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	kind := a.GetKind()
	path, ok := constraintPaths[kind.Kind]
	if kind.Group != ecsv1alpha1.GroupName || !ok || a.GetSubresource() != "" {
		return nil
	}
	u, ok := a.GetObject().(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	list, found, err := unstructured.NestedSlice(u.Object, path...)
	if err != nil || !found {
		return nil // the schema reports malformed lists
	}
	base := field.NewPath(path[0], path[1:]...)
	var errs field.ErrorList
	for i, item := range list {
		m, ok := item.(map[string]interface{})
		if !ok || m["type"] != string(ecsv1alpha1.PlacementConstraintMemberOf) {
			continue
		}
		expr, _ := m["expression"].(string)
		if expr == "" {
			continue // required by the schema's own rule
		}
		if _, err := query.Parse(expr); err != nil {
			errs = append(errs, field.Invalid(base.Index(i).Child("expression"), expr, err.Error()))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return apierrors.NewInvalid(kind.GroupKind(), a.GetName(), errs)
}
