package framework

import (
	"context"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// SimulatedInstance describes a host for SimulatedAgents.
type SimulatedInstance struct {
	Name        string
	CPU, Memory int32
	// Attributes are custom attributes (spec.attributes).
	Attributes map[string]string
}

// SimulatedAgents stand in for drover-agent in control-plane tests. They register ContainerInstances
// with an admin client, report them with the given capacity, renew their heartbeat Leases, and move
// the Tasks bound to them to RUNNING, and to STOPPED once desiredStatus is STOPPED. They run no
// containers; task health is simulated too (see UnhealthyRevision).
type SimulatedAgents struct {
	c         client.Client
	namespace string
	cluster   string

	mu           sync.Mutex
	instances    map[string]bool
	failRevs     map[string]bool
	sickRevs     map[string]bool
	disconnected map[string]bool
	lastRenew    time.Time
}

// StartSimulatedAgents registers the instances in cluster and runs their agents until the test ends.
func StartSimulatedAgents(t testing.TB, c client.Client, namespace, cluster string, instances ...SimulatedInstance) *SimulatedAgents {
	t.Helper()
	a := &SimulatedAgents{c: c, namespace: namespace, cluster: cluster, instances: map[string]bool{},
		failRevs: map[string]bool{}, sickRevs: map[string]bool{}, disconnected: map[string]bool{}}
	for _, in := range instances {
		a.AddInstance(t, in)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			a.step(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

// AddInstance registers one more simulated host.
func (a *SimulatedAgents) AddInstance(t testing.TB, in SimulatedInstance) {
	t.Helper()
	ctx := t.Context()
	ci := &ecsv1alpha1.ContainerInstance{
		ObjectMeta: metav1.ObjectMeta{Name: in.Name, Namespace: a.namespace},
		Spec:       ecsv1alpha1.ContainerInstanceSpec{Cluster: a.cluster},
	}
	for k, v := range in.Attributes {
		ci.Spec.Attributes = append(ci.Spec.Attributes, ecsv1alpha1.Attribute{Name: k, Value: v})
	}
	// The Lease first: the containerinstance controller reads it as soon as the instance exists.
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: in.Name, Namespace: a.namespace},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(in.Name), LeaseDurationSeconds: ptr.To[int32](10),
			RenewTime: &metav1.MicroTime{Time: time.Now()}},
	}
	if err := a.c.Create(ctx, lease); err != nil {
		t.Fatalf("creating lease of simulated instance %s: %v", in.Name, err)
	}
	if err := a.c.Create(ctx, ci); err != nil {
		t.Fatalf("registering simulated instance %s: %v", in.Name, err)
	}
	before := ci.DeepCopy()
	now := metav1.Now()
	res := &ecsv1alpha1.InstanceResources{CPU: in.CPU, Memory: in.Memory}
	ci.Status = ecsv1alpha1.ContainerInstanceStatus{
		AgentConnected: true, AgentVersion: "0.1.0-simulated", OSType: "linux", CPUArchitecture: "x86_64",
		RegisteredAt: &now, LastHeartbeatTime: &now, RegisteredResources: res, RemainingResources: res.DeepCopy(),
		Attributes: []ecsv1alpha1.Attribute{
			{Name: "ecs.os-type", Value: "linux"}, {Name: "ecs.cpu-architecture", Value: "x86_64"},
			{Name: "ecs.capability.external", Value: ""},
		},
	}
	// A merge patch: the containerinstance controller may write the Connected condition meanwhile.
	if err := a.c.Status().Patch(ctx, ci, client.MergeFrom(before)); err != nil {
		t.Fatalf("reporting simulated instance %s: %v", in.Name, err)
	}
	a.mu.Lock()
	a.instances[in.Name] = true
	a.mu.Unlock()
}

// FailRevision makes tasks of the revision stop at start with TaskFailedToStart.
func (a *SimulatedAgents) FailRevision(revision string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failRevs[revision] = true
}

// UnhealthyRevision simulates a container health check that fails for every task of the revision:
// its tasks reach RUNNING and then report UNHEALTHY, as an agent does once an essential
// container's health check has failed retries times in a row. No check runs.
func (a *SimulatedAgents) UnhealthyRevision(revision string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sickRevs[revision] = true
}

// step moves every bound task one step towards its desired status.
func (a *SimulatedAgents) step(ctx context.Context) {
	tasks := &ecsv1alpha1.TaskList{}
	if err := a.c.List(ctx, tasks, client.InNamespace(a.namespace)); err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if time.Since(a.lastRenew) > time.Second {
		a.lastRenew = time.Now()
		for name := range a.instances {
			if !a.disconnected[name] {
				a.renew(ctx, name, time.Now())
			}
		}
	}
	for i := range tasks.Items {
		task := &tasks.Items[i]
		if !a.instances[task.Spec.ContainerInstance] || a.disconnected[task.Spec.ContainerInstance] || task.Status.LastStatus == ecsv1alpha1.TaskStateStopped {
			continue
		}
		before := task.DeepCopy()
		now := metav1.Now()
		switch {
		case task.Spec.DesiredStatus == ecsv1alpha1.TaskDesiredStopped:
			task.Status.LastStatus = ecsv1alpha1.TaskStateStopped
			task.Status.StoppedAt, task.Status.ExecutionStoppedAt = &now, &now
			if task.Status.StopCode == "" {
				task.Status.StopCode = ecsv1alpha1.StopCodeServiceSchedulerInitiated
			}
			if task.Status.StoppedReason == "" {
				task.Status.StoppedReason = "Task stopped as requested"
			}
			// As drover-agent: no health is reported for containers that no longer run.
			task.Status.HealthStatus = ecsv1alpha1.HealthStatusUnknown
		case a.failRevs[task.Spec.TaskDefinitionRevision]:
			task.Status.LastStatus = ecsv1alpha1.TaskStateStopped
			task.Status.StopCode = ecsv1alpha1.StopCodeTaskFailedToStart
			task.Status.StoppedReason = "simulated failure of revision " + task.Spec.TaskDefinitionRevision
			task.Status.StoppedAt, task.Status.ExecutionStoppedAt = &now, &now
		case task.Status.LastStatus != ecsv1alpha1.TaskStateRunning:
			task.Status.LastStatus = ecsv1alpha1.TaskStateRunning
			task.Status.HealthStatus = ecsv1alpha1.HealthStatusUnknown
			task.Status.StartedAt = &now
		case a.sickRevs[task.Spec.TaskDefinitionRevision] && task.Status.HealthStatus != ecsv1alpha1.HealthStatusUnhealthy:
			task.Status.HealthStatus = ecsv1alpha1.HealthStatusUnhealthy
		default:
			continue
		}
		if err := a.c.Status().Patch(ctx, task, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			continue
		}
	}
}

// StopTask reports the task as exited on its host, as an agent does when its essential container exits.
func (a *SimulatedAgents) StopTask(t testing.TB, name string) {
	t.Helper()
	task := &ecsv1alpha1.Task{}
	if err := a.c.Get(t.Context(), client.ObjectKey{Namespace: a.namespace, Name: name}, task); err != nil {
		t.Fatalf("getting task %s: %v", name, err)
	}
	now := metav1.Now()
	task.Status.LastStatus = ecsv1alpha1.TaskStateStopped
	task.Status.StopCode = ecsv1alpha1.StopCodeEssentialContainerExited
	task.Status.StoppedReason = "Essential container in task exited"
	task.Status.StoppedAt, task.Status.ExecutionStoppedAt = &now, &now
	if err := a.c.Status().Update(t.Context(), task); err != nil {
		t.Fatalf("stopping task %s: %v", name, err)
	}
}

// Disconnect makes an instance's agent go quiet: the instance is reported disconnected with its
// last heartbeat `ago` in the past, and its tasks are left as they are.
func (a *SimulatedAgents) Disconnect(t testing.TB, name string, ago time.Duration) {
	t.Helper()
	a.mu.Lock()
	a.disconnected[name] = true
	a.mu.Unlock()
	a.setConnected(t, name, false, time.Now().Add(-ago))
}

// Reconnect brings an instance's agent back.
func (a *SimulatedAgents) Reconnect(t testing.TB, name string) {
	t.Helper()
	a.setConnected(t, name, true, time.Now())
	a.mu.Lock()
	delete(a.disconnected, name)
	a.mu.Unlock()
}

func (a *SimulatedAgents) setConnected(t testing.TB, name string, connected bool, heartbeat time.Time) {
	t.Helper()
	if err := a.renew(t.Context(), name, heartbeat); err != nil {
		t.Fatalf("renewing lease of %s: %v", name, err)
	}
	// The containerinstance controller turns the Lease into agentConnected.
	ci := &ecsv1alpha1.ContainerInstance{}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if err := a.c.Get(t.Context(), client.ObjectKey{Namespace: a.namespace, Name: name}, ci); err == nil && ci.Status.AgentConnected == connected {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("instance %s did not become connected=%v", name, connected)
}

// renew sets the instance's Lease renewal time.
func (a *SimulatedAgents) renew(ctx context.Context, name string, at time.Time) error {
	lease := &coordinationv1.Lease{}
	if err := a.c.Get(ctx, client.ObjectKey{Namespace: a.namespace, Name: name}, lease); err != nil {
		return err
	}
	lease.Spec.RenewTime = &metav1.MicroTime{Time: at}
	return a.c.Update(ctx, lease)
}
