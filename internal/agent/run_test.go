package agent

import (
	"context"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/identity"
	"github.com/drover-dev/drover/internal/pki"
	"github.com/drover-dev/drover/test/framework"
)

// TestRunReportsTheInstance runs the agent against a real droverd with an instance identity, as
// registration would have set it up: a ContainerInstance, its Lease and a certificate from the CA.
func TestRunReportsTheInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts droverd")
	}
	srv := framework.Start(t, framework.WithoutControllers())
	ctx := t.Context()
	const ns, name = "default", "host-1"
	ci := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: ecsv1alpha1.ContainerInstanceSpec{Cluster: "prod"}}
	require.NoError(t, srv.Client.Create(ctx, ci))
	// What the containerinstance controller owns must survive the agent's reports.
	meta.SetStatusCondition(&ci.Status.Conditions, metav1.Condition{Type: ecsv1alpha1.ContainerInstanceConditionConnected,
		Status: metav1.ConditionFalse, Reason: ecsv1alpha1.ContainerInstanceReasonNeverConnected, Message: "never connected"})
	require.NoError(t, srv.Client.Status().Update(ctx, ci))
	require.NoError(t, srv.Client.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}))

	ca, err := pki.LoadOrCreateCA(filepath.Join(srv.DataDir, "pki"), "")
	require.NoError(t, err)
	in := identity.Instance{Namespace: ns, Name: name, UID: string(ci.UID)}
	kp, err := ca.IssueClient(in.User(), in.Groups(), time.Hour)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, stateDir(dir).save(&Identity{
		Config: Config{Server: srv.URL, Namespace: ns, ContainerInstance: name, Cluster: "prod"},
		CAPEM:  ca.CertPEM, CertPEM: kp.CertPEM, KeyPEM: kp.KeyPEM,
	}))

	o := NewRunOptions()
	o.StateDir = dir
	o.Hostname = "edge-box-1"
	o.HeartbeatInterval = time.Second
	o.StatusInterval = time.Hour
	o.MeminfoPath = "testdata/meminfo"
	o.Version = "v9.9.9"
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, *o) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})

	key := client.ObjectKey{Namespace: ns, Name: name}
	require.Eventually(t, func() bool {
		require.NoError(t, srv.Client.Get(ctx, key, ci))
		return ci.Status.AgentConnected
	}, 30*time.Second, 50*time.Millisecond, "the agent reports the instance connected")
	st := ci.Status
	assert.Equal(t, "v9.9.9", st.AgentVersion)
	assert.Regexp(t, `^\d+\.\d+`, st.DockerVersion, "the Docker Engine's version")
	assert.Equal(t, goruntime.GOOS, st.OSType)
	assert.Equal(t, ecsArchitecture(goruntime.GOARCH), st.CPUArchitecture)
	assert.Equal(t, "edge-box-1", st.Hostname)
	want := &ecsv1alpha1.InstanceResources{CPU: int32(goruntime.NumCPU() * 1024), Memory: 15936 - 256}
	assert.Equal(t, want, st.RegisteredResources)
	assert.Equal(t, want, st.RemainingResources)
	assert.Equal(t, builtinAttributes(goruntime.GOOS, goruntime.GOARCH), st.Attributes)
	require.NotNil(t, st.RegisteredAt)
	require.NotNil(t, st.LastHeartbeatTime)
	assert.Len(t, st.Conditions, 1, "the controller's condition is kept")
	reported := ci.ResourceVersion

	var lease coordinationv1.Lease
	require.Eventually(t, func() bool {
		require.NoError(t, srv.Client.Get(ctx, key, &lease))
		return lease.Spec.RenewTime != nil
	}, 10*time.Second, 50*time.Millisecond, "the agent renews its Lease")
	require.NotNil(t, lease.Spec.HolderIdentity)
	assert.Equal(t, name, *lease.Spec.HolderIdentity)
	require.NotNil(t, lease.Spec.LeaseDurationSeconds)
	assert.Equal(t, int32(2), *lease.Spec.LeaseDurationSeconds)
	first := lease.Spec.RenewTime.Time
	require.Eventually(t, func() bool {
		require.NoError(t, srv.Client.Get(ctx, key, &lease))
		return lease.Spec.RenewTime.After(first.Add(1500 * time.Millisecond))
	}, 10*time.Second, 50*time.Millisecond, "the agent keeps renewing its Lease")

	require.NoError(t, srv.Client.Get(ctx, key, ci))
	assert.Equal(t, reported, ci.ResourceVersion, "heartbeats do not write the ContainerInstance")
}
