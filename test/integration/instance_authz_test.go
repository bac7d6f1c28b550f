package integration

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/identity"
	"github.com/drover-dev/drover/internal/manager"
	"github.com/drover-dev/drover/internal/pki"
	"github.com/drover-dev/drover/test/framework"
)

// instanceClient returns a client authenticated as the given container instance.
func instanceClient(t *testing.T, s *framework.Server, ci *ecsv1alpha1.ContainerInstance) client.Client {
	t.Helper()
	c, err := client.New(instanceConfig(t, s, ci), client.Options{Scheme: manager.Scheme})
	require.NoError(t, err)
	return c
}

// instanceConfig returns a client configuration with a certificate of the given container
// instance, issued by droverd's CA.
func instanceConfig(t *testing.T, s *framework.Server, ci *ecsv1alpha1.ContainerInstance) *rest.Config {
	t.Helper()
	dir := filepath.Join(s.DataDir, "pki")
	ca, err := pki.LoadOrCreateCA(dir, "drover-ca")
	require.NoError(t, err)
	in := identity.Instance{Namespace: ci.Namespace, Name: ci.Name, UID: string(ci.UID)}
	kp, err := ca.IssueClient(in.User(), in.Groups(), time.Hour)
	require.NoError(t, err)
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	require.NoError(t, err)
	return &rest.Config{Host: s.URL, TLSClientConfig: rest.TLSClientConfig{CAData: caPEM, CertData: kp.CertPEM, KeyData: kp.KeyPEM}}
}

func TestInstanceIdentityCanTouchOnlyItsOwnObjects(t *testing.T) {
	s := framework.Start(t, framework.WithoutControllers())
	admin, ctx := s.Client, t.Context()
	const ns = "default"
	mk := func(name string) *ecsv1alpha1.ContainerInstance {
		ci := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: ecsv1alpha1.ContainerInstanceSpec{Cluster: "stores"}}
		require.NoError(t, admin.Create(ctx, ci))
		require.NoError(t, admin.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name)}}))
		return ci
	}
	mine, theirs := mk("mine"), mk("theirs")
	task := func(name, instance string) *ecsv1alpha1.Task {
		tk := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: ecsv1alpha1.TaskSpec{Cluster: "stores", TaskDefinition: "web:1", ContainerInstance: instance}}
		require.NoError(t, admin.Create(ctx, tk))
		return tk
	}
	task("t-mine", "mine")
	task("t-theirs", "theirs")
	c := instanceClient(t, s, mine)
	forbidden := func(err error, what string) {
		t.Helper()
		require.True(t, apierrors.IsForbidden(err), "%s: %v", what, err)
	}

	// Its own objects.
	ci := &ecsv1alpha1.ContainerInstance{}
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(mine), ci))
	ci.Status.AgentVersion = "1.0.0"
	require.NoError(t, c.Status().Update(ctx, ci))
	lease := &coordinationv1.Lease{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "mine"}, lease))
	lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
	require.NoError(t, c.Update(ctx, lease))
	tasks := &ecsv1alpha1.TaskList{}
	require.NoError(t, c.List(ctx, tasks, client.InNamespace(ns), client.MatchingFields{"spec.containerInstance": "mine"}))
	require.Len(t, tasks.Items, 1)
	own := &tasks.Items[0]
	own.Status.LastStatus = ecsv1alpha1.TaskStateRunning
	require.NoError(t, c.Status().Update(ctx, own))
	require.NoError(t, c.Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "mine-", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: "ContainerInstance", Namespace: ns, Name: "mine"}, Reason: "Started", Type: "Normal"}))

	// Nothing else.
	forbidden(c.Get(ctx, client.ObjectKeyFromObject(theirs), &ecsv1alpha1.ContainerInstance{}), "another instance")
	forbidden(c.List(ctx, &ecsv1alpha1.TaskList{}, client.InNamespace(ns)), "all tasks")
	forbidden(c.List(ctx, &ecsv1alpha1.TaskList{}, client.InNamespace(ns), client.MatchingFields{"spec.containerInstance": "theirs"}), "another instance's tasks")
	other := &ecsv1alpha1.Task{}
	require.NoError(t, admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "t-theirs"}, other))
	other.Status.LastStatus = ecsv1alpha1.TaskStateStopped
	forbidden(c.Status().Update(ctx, other), "another instance's task status")
	theirLease := &coordinationv1.Lease{}
	forbidden(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "theirs"}, theirLease), "another instance's lease")
	forbidden(c.Create(ctx, &ecsv1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Name: "evil", Namespace: ns},
		Spec: ecsv1alpha1.ServiceSpec{Cluster: "stores", TaskDefinition: "web"}}), "write a Service")
	forbidden(c.List(ctx, &ecsv1alpha1.ActivationList{}, client.InNamespace(ns)), "read Activations")
	ci.Spec.Cluster = "elsewhere"
	forbidden(c.Update(ctx, ci), "change its own spec")

	unchanged := &ecsv1alpha1.Task{}
	require.NoError(t, admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "t-theirs"}, unchanged))
	require.Empty(t, unchanged.Status.LastStatus)

	// Deregistered: locked out, also when an instance of the same name registers again.
	require.NoError(t, admin.Delete(ctx, mine))
	require.Eventually(t, func() bool {
		return apierrors.IsForbidden(c.Get(ctx, client.ObjectKeyFromObject(mine), &ecsv1alpha1.ContainerInstance{}))
	}, 10*time.Second, 50*time.Millisecond, "a deregistered instance is locked out")
	again := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: ns}, Spec: ecsv1alpha1.ContainerInstanceSpec{Cluster: "stores"}}
	require.NoError(t, admin.Create(ctx, again))
	forbidden(c.Get(ctx, client.ObjectKeyFromObject(again), &ecsv1alpha1.ContainerInstance{}), "the old certificate for a re-registered name")
}
