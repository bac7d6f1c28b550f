package integration

import (
	"testing"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/test/framework"
)

// TestBadMemberOfExpressionsAreRefusedOnApply shows that an expression of the cluster query language
// that does not parse is refused with its field, column and what was expected, and nothing is stored.
func TestBadMemberOfExpressionsAreRefusedOnApply(t *testing.T) {
	s := framework.Start(t, framework.WithoutControllers())
	c, ctx := s.Client, t.Context()
	memberOf := func(expr string) []ecsv1alpha1.PlacementConstraint {
		return []ecsv1alpha1.PlacementConstraint{
			{Type: ecsv1alpha1.PlacementConstraintDistinctInstance},
			{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: expr},
		}
	}
	svc := &ecsv1alpha1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: ecsv1alpha1.ServiceSpec{Cluster: "stores", TaskDefinition: "web", DesiredCount: ptr.To[int32](1),
			PlacementConstraints: memberOf("attribute:ecs.os-type ==")},
	}
	err := c.Create(ctx, svc)
	require.True(t, apierrors.IsInvalid(err), "%v", err)
	require.Contains(t, err.Error(), `spec.placementConstraints[1].expression`)
	require.Contains(t, err.Error(), `at column 25: expected a value after "=="`)
	require.True(t, apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(svc), &ecsv1alpha1.Service{})))

	td := &ecsv1alpha1.TaskDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: ecsv1alpha1.TaskDefinitionSpec{
			ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{Name: "app", Image: "example.com/web:1", Memory: ptr.To[int32](64)}},
			PlacementConstraints: []ecsv1alpha1.PlacementConstraint{{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "agentConnected > 1"}},
		},
	}
	err = c.Create(ctx, td)
	require.True(t, apierrors.IsInvalid(err), "%v", err)
	require.Contains(t, err.Error(), "spec.placementConstraints[0].expression")

	// Valid expressions pass, and an update to a bad one is refused with the object unchanged.
	svc.Spec.PlacementConstraints = memberOf("(attribute:store exists or attribute:region == eu) && !(agentConnected == false)")
	require.NoError(t, c.Create(ctx, svc))
	rv := svc.ResourceVersion
	svc.Spec.PlacementConstraints = memberOf("attribute:store in [a, b")
	err = c.Update(ctx, svc)
	require.True(t, apierrors.IsInvalid(err), "%v", err)
	got := &ecsv1alpha1.Service{}
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(svc), got))
	require.Equal(t, rv, got.ResourceVersion)
}
