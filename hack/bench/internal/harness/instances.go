package harness

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// Instances describes container instances to register without an agent behind them.
type Instances struct {
	Namespace, Cluster string
	// Count instances are registered by Workers concurrent clients.
	Count, Workers int
	// CPU (units) and Memory (MiB) each instance registers.
	CPU, Memory int32
	// AgentVersion is what the instances report as their agent's version.
	AgentVersion string
	// RenewTime is the renewal time written to each heartbeat Lease. A time past the end of the run
	// keeps the instances connected without heartbeat traffic.
	RenewTime time.Time
	// Attributes returns the custom attributes (spec.attributes) of instance i; nil for none.
	Attributes func(i int) []ecsv1alpha1.Attribute
}

// InstanceName is the name of the i-th registered instance.
func InstanceName(i int) string { return fmt.Sprintf("host-%05d", i) }

// RegisterInstances creates the instances, each with a heartbeat Lease and a status that reports the
// agent connected with the given resources.
func RegisterInstances(ctx context.Context, c client.Client, in Instances) error {
	renew := metav1.NewMicroTime(in.RenewTime)
	return Parallel(in.Count, in.Workers, func(i int) error {
		name := InstanceName(i)
		lease := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: in.Namespace},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](10), RenewTime: &renew},
		}
		if err := c.Create(ctx, lease); err != nil {
			return fmt.Errorf("creating Lease %s: %w", name, err)
		}
		ci := &ecsv1alpha1.ContainerInstance{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: in.Namespace},
			Spec:       ecsv1alpha1.ContainerInstanceSpec{Cluster: in.Cluster},
		}
		if in.Attributes != nil {
			ci.Spec.Attributes = in.Attributes(i)
		}
		if err := c.Create(ctx, ci); err != nil {
			return fmt.Errorf("creating ContainerInstance %s: %w", name, err)
		}
		now := metav1.Now()
		res := &ecsv1alpha1.InstanceResources{CPU: in.CPU, Memory: in.Memory}
		ci.Status = ecsv1alpha1.ContainerInstanceStatus{
			AgentConnected: true, AgentVersion: in.AgentVersion, OSType: "linux", CPUArchitecture: "x86_64",
			RegisteredAt: &now, LastHeartbeatTime: &now, RegisteredResources: res, RemainingResources: res.DeepCopy(),
			Attributes: []ecsv1alpha1.Attribute{{Name: "ecs.os-type", Value: "linux"}, {Name: "ecs.cpu-architecture", Value: "x86_64"}},
		}
		// The containerinstance controller may write the status first (from the Lease); retry on conflict.
		for {
			err := c.Status().Update(ctx, ci)
			if !apierrors.IsConflict(err) {
				if err != nil {
					return fmt.Errorf("reporting ContainerInstance %s: %w", name, err)
				}
				return nil
			}
			st := ci.Status
			if err := c.Get(ctx, client.ObjectKeyFromObject(ci), ci); err != nil {
				return err
			}
			st.Conditions = ci.Status.Conditions
			ci.Status = st
		}
	})
}

// WaitConnected waits until n instances of the namespace report agentConnected and the
// containerinstance controller has recorded them Connected, so that its writes are over before
// what the benchmark measures begins.
func WaitConnected(ctx context.Context, c client.Client, namespace string, n int) error {
	return Poll(ctx, 2*time.Minute, func() (bool, error) {
		list := &ecsv1alpha1.ContainerInstanceList{}
		if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
			return false, err
		}
		connected := 0
		for _, ci := range list.Items {
			if ci.Status.AgentConnected && ci.Status.RegisteredResources != nil &&
				meta.IsStatusConditionTrue(ci.Status.Conditions, ecsv1alpha1.ContainerInstanceConditionConnected) {
				connected++
			}
		}
		return connected == n, nil
	})
}
