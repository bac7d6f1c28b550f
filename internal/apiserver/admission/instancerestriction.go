package admission

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apiserver/pkg/admission"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/identity"
)

// InstanceRestriction limits what a container instance's identity may change beyond what the
// authorizer can see: it may report status only for the Tasks bound to it.
type InstanceRestriction struct{}

var _ admission.ValidationInterface = InstanceRestriction{}

// Handles implements admission.Interface.
func (InstanceRestriction) Handles(op admission.Operation) bool { return op == admission.Update }

// Validate implements admission.ValidationInterface.
func (InstanceRestriction) Validate(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	u := a.GetUserInfo()
	if u == nil {
		return nil
	}
	in, ok := identity.FromUser(u.GetName(), u.GetGroups())
	if !ok {
		return nil
	}
	if a.GetResource().GroupResource() != ecsv1alpha1.Resource("tasks") {
		return nil
	}
	old, ok := a.GetOldObject().(*unstructured.Unstructured)
	if !ok {
		return apierrors.NewForbidden(a.GetResource().GroupResource(), a.GetName(), fmt.Errorf("cannot check the task's container instance"))
	}
	bound, _, _ := unstructured.NestedString(old.Object, "spec", "containerInstance")
	if bound != in.Name {
		return apierrors.NewForbidden(a.GetResource().GroupResource(), a.GetName(),
			fmt.Errorf("container instance %s may only report on tasks bound to it", in.Name))
	}
	return nil
}
