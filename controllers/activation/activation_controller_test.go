package activation_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/controllers/activation"
	"github.com/drover-dev/drover/test/framework"
)

func TestActivationReportsExpiryAndLimit(t *testing.T) {
	s := framework.Start(t, framework.WithoutControllers())
	c, ctx := s.Client, t.Context()
	expires := time.Now().Add(time.Hour).Truncate(time.Second)
	act := &ecsv1alpha1.Activation{
		ObjectMeta: metav1.ObjectMeta{Name: "stores", Namespace: "default"},
		Spec: ecsv1alpha1.ActivationSpec{Cluster: "stores", CodeHash: "sha256:" + string(make64('a')),
			ExpiresAt: metav1.NewTime(expires), RegistrationLimit: 2},
	}
	require.NoError(t, c.Create(ctx, act))
	now := time.Now()
	r := &activation.Reconciler{Client: c, Now: func() time.Time { return now }}
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(act)}
	reason := func() (string, bool) {
		_, err := r.Reconcile(ctx, req)
		require.NoError(t, err)
		require.NoError(t, c.Get(ctx, req.NamespacedName, act))
		return meta.FindStatusCondition(act.Status.Conditions, ecsv1alpha1.ActivationConditionReady).Reason, act.Status.Expired
	}
	got, expired := reason()
	require.Equal(t, ecsv1alpha1.ActivationReasonUsable, got)
	require.False(t, expired)

	// Registration claims both registrations; the controller never overwrites the count.
	act.Status.RegistrationsCount = 2
	require.NoError(t, c.Status().Update(ctx, act))
	got, _ = reason()
	require.Equal(t, ecsv1alpha1.ActivationReasonLimitReached, got)
	require.EqualValues(t, 2, act.Status.RegistrationsCount)

	now = expires.Add(time.Second)
	got, expired = reason()
	require.Equal(t, ecsv1alpha1.ActivationReasonExpired, got)
	require.True(t, expired)
	require.EqualValues(t, 2, act.Status.RegistrationsCount)
}

func make64(c byte) []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return b
}
