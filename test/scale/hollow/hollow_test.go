package hollow_test

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	servicecontroller "github.com/drover-dev/drover/controllers/service"
	"github.com/drover-dev/drover/internal/placement"
	"github.com/drover-dev/drover/test/framework"
	"github.com/drover-dev/drover/test/scale/hollow"
)

const (
	namespace = metav1.NamespaceDefault
	cluster   = "scale"
	// instances hollow agents register; each offers room for 16 tasks of taskCPU and taskMemory.
	instances              = 200
	instanceCPU, taskCPU   = 1024, 64
	instanceMem, taskMem   = 1024, 64
	registrationWorkers    = 8
	replaceDesired         = 1500 // tasks of the service whose disconnectPolicy is Replace
	keepDesired            = 500  // tasks of the service that keeps the default policy, Keep
	killed                 = 4    // instances that die once the services are steady
	convergeWait           = 4 * time.Minute
	serviceReplace         = "web"
	serviceKeep            = "batch"
	failingFamily          = "broken"
	failingRevision        = failingFamily + "-1"
	hollowStartedWait      = time.Minute
	instancesConnectedWait = time.Minute
)

// TestServicesConvergeOnHollowAgents runs 200 hollow agents (simulated container instances that
// run no containers) against an in-process droverd. Each registers through the real registration
// endpoint with its own key and certificate, renews its own Lease and watches its own Tasks over
// its own TLS connection. Two services of 2,000 tasks in all must converge: every desired task
// RUNNING, bound to a connected instance, no instance holding more than it registered, no slot of
// a service held twice. Then four instances die: the tasks of the service whose disconnectPolicy
// is Replace move elsewhere, those of the service left at the default (Keep) stay where they are.
// Last, tasks of a revision the agents fail to start stop with TaskFailedToStart.
//
// It asserts outcomes only; the waits bound how long it may take to get there.
func TestServicesConvergeOnHollowAgents(t *testing.T) {
	s := framework.Start(t)
	c, ctx := s.Client, t.Context()
	require.NoError(t, c.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cluster, Namespace: namespace}}))

	caPEM, err := os.ReadFile(filepath.Join(s.DataDir, "pki", "ca.crt"))
	require.NoError(t, err)
	ca := x509.NewCertPool()
	require.True(t, ca.AppendCertsFromPEM(caPEM))
	acts, err := hollow.CreateActivations(ctx, c, namespace, cluster, instances)
	require.NoError(t, err)
	reg := &hollow.Registrar{Server: s.URL, CA: ca, Activations: acts}
	regs := reg.RegisterMany(ctx, 0, instances, registrationWorkers)
	require.Len(t, regs.Identities, instances, "registrations failed: %v", regs.FirstErr)
	t.Logf("%d hollow instances registered in %s", instances, regs.Wall.Round(time.Millisecond))

	fleet, err := hollow.NewFleet(hollow.Config{Server: s.URL, CA: ca, CPU: instanceCPU, Memory: instanceMem}, regs.Identities)
	require.NoError(t, err)
	fleet.Start(ctx)
	t.Cleanup(fleet.Stop)
	startCtx, cancel := context.WithTimeout(ctx, hollowStartedWait)
	defer cancel()
	require.NoError(t, fleet.WaitStarted(startCtx))
	// droverd runs in this process too, so this is only a rough figure; hack/bench/scale measures it alone.
	mem := fleet.PerInstance()
	t.Logf("hollow instances started; heap %.0f KiB and stacks %.0f KiB per instance (droverd included)", mem.Heap/1024, mem.Stacks/1024)
	waitFor(t, instancesConnectedWait, func() error { return allConnected(t, c, instances) })

	createTaskDefinition(t, c, serviceReplace)
	createTaskDefinition(t, c, serviceKeep)
	createService(t, c, serviceReplace, replaceDesired, &ecsv1alpha1.DisconnectPolicy{Action: ecsv1alpha1.DisconnectActionReplace, GracePeriodSeconds: ptr.To[int32](0)})
	createService(t, c, serviceKeep, keepDesired, nil)

	var w world
	t0 := time.Now()
	waitFor(t, convergeWait, func() error {
		w = observe(t, c)
		return errors.Join(w.converged(serviceReplace, replaceDesired, nil), w.converged(serviceKeep, keepDesired, nil), w.withinResources())
	})
	t.Logf("converged after %s: %d tasks RUNNING; hollow instances: %+v", time.Since(t0).Round(time.Second), replaceDesired+keepDesired, fleet.Stats())

	// Kill the instances that hold the most tasks of both services.
	victims := w.busiestWithBoth(serviceReplace, serviceKeep, killed)
	require.Len(t, victims, killed)
	dead := map[string]bool{}
	for _, v := range victims {
		dead[v] = true
	}
	keptBefore := w.activeOn(serviceKeep, dead)
	replacedBefore := w.activeOn(serviceReplace, dead)
	require.NotEmpty(t, keptBefore)
	require.NotEmpty(t, replacedBefore)
	require.NoError(t, fleet.Kill(victims...))
	t.Logf("killed %v, which ran %d tasks of %s and %d of %s", victims, len(replacedBefore), serviceReplace, len(keptBefore), serviceKeep)
	t0 = time.Now()

	waitFor(t, convergeWait, func() error {
		w = observe(t, c)
		var errs []error
		for _, v := range victims {
			if w.instances[v].Status.AgentConnected {
				errs = append(errs, fmt.Errorf("dead instance %s is still connected", v))
			}
		}
		for _, name := range replacedBefore {
			if task := w.tasks[name]; task != nil && task.Spec.DesiredStatus != ecsv1alpha1.TaskDesiredStopped {
				errs = append(errs, fmt.Errorf("task %s on a dead instance is not told to stop", name))
			}
		}
		return errors.Join(append(errs, w.converged(serviceReplace, replaceDesired, nil), w.withinResources())...)
	})
	t.Logf("replaced after %s", time.Since(t0).Round(time.Second))
	// The Keep service counts the tasks on the dead instances as its own and starts no others.
	require.NoError(t, w.converged(serviceKeep, keepDesired, dead))
	require.ElementsMatch(t, keptBefore, w.activeOn(serviceKeep, dead), "tasks of %s on dead instances", serviceKeep)

	// A revision the agents fail to start: its task stops with TaskFailedToStart.
	fleet.FailRevision(failingRevision)
	createTaskDefinition(t, c, failingFamily)
	failing := &ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{Name: "fails", Namespace: namespace},
		Spec:       ecsv1alpha1.TaskSpec{Cluster: cluster, TaskDefinition: failingFamily},
	}
	require.NoError(t, c.Create(ctx, failing))
	waitFor(t, time.Minute, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(failing), failing); err != nil {
			return err
		}
		if failing.Status.LastStatus != ecsv1alpha1.TaskStateStopped || failing.Status.StopCode != ecsv1alpha1.StopCodeTaskFailedToStart {
			return fmt.Errorf("task %s is %q with stop code %q", failing.Name, failing.Status.LastStatus, failing.Status.StopCode)
		}
		return nil
	})
	require.Equal(t, failingRevision, failing.Spec.TaskDefinitionRevision)
	require.False(t, dead[failing.Spec.ContainerInstance], "a task was placed on a dead instance")
	st := fleet.Stats()
	t.Logf("hollow instances: %+v", st)
	require.Positive(t, st.Failed)
}

// waitFor calls cond every second until it returns nil, and fails the test with its last error
// when that does not happen within limit.
func waitFor(t *testing.T, limit time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %s: %v", limit, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(time.Second):
		}
	}
}

func allConnected(t *testing.T, c client.Client, n int) error {
	list := &ecsv1alpha1.ContainerInstanceList{}
	if err := c.List(t.Context(), list, client.InNamespace(namespace)); err != nil {
		return err
	}
	connected := 0
	for _, ci := range list.Items {
		if ci.Status.AgentConnected && ci.Status.RegisteredResources != nil && ci.Status.AgentVersion == hollow.AgentVersion {
			connected++
		}
	}
	if connected != n {
		return fmt.Errorf("%d of %d instances connected and reported", connected, n)
	}
	return nil
}

func createTaskDefinition(t *testing.T, c client.Client, family string) {
	t.Helper()
	require.NoError(t, c.Create(t.Context(), &ecsv1alpha1.TaskDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: family, Namespace: namespace},
		Spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
			Name: "app", Image: "registry.example.com/" + family + ":1", CPU: taskCPU, Memory: ptr.To[int32](taskMem),
		}}},
	}))
}

func createService(t *testing.T, c client.Client, name string, desired int32, policy *ecsv1alpha1.DisconnectPolicy) {
	t.Helper()
	require.NoError(t, c.Create(t.Context(), &ecsv1alpha1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: ecsv1alpha1.ServiceSpec{Cluster: cluster, TaskDefinition: name, DesiredCount: ptr.To(desired),
			DisconnectPolicy: policy},
	}))
}

// world is what the API says at one moment.
type world struct {
	tasks     map[string]*ecsv1alpha1.Task
	instances map[string]*ecsv1alpha1.ContainerInstance
	services  map[string]*ecsv1alpha1.Service
}

func observe(t *testing.T, c client.Client) world {
	t.Helper()
	ctx := t.Context()
	w := world{tasks: map[string]*ecsv1alpha1.Task{}, instances: map[string]*ecsv1alpha1.ContainerInstance{}, services: map[string]*ecsv1alpha1.Service{}}
	tasks := &ecsv1alpha1.TaskList{}
	require.NoError(t, c.List(ctx, tasks, client.InNamespace(namespace)))
	for i := range tasks.Items {
		w.tasks[tasks.Items[i].Name] = &tasks.Items[i]
	}
	cis := &ecsv1alpha1.ContainerInstanceList{}
	require.NoError(t, c.List(ctx, cis, client.InNamespace(namespace)))
	for i := range cis.Items {
		w.instances[cis.Items[i].Name] = &cis.Items[i]
	}
	svcs := &ecsv1alpha1.ServiceList{}
	require.NoError(t, c.List(ctx, svcs, client.InNamespace(namespace)))
	for i := range svcs.Items {
		w.services[svcs.Items[i].Name] = &svcs.Items[i]
	}
	return w
}

func active(t *ecsv1alpha1.Task) bool {
	return t.Spec.DesiredStatus != ecsv1alpha1.TaskDesiredStopped && t.Status.LastStatus != ecsv1alpha1.TaskStateStopped
}

// converged says what keeps a service from its steady state: desired active tasks, each RUNNING
// on a connected instance (or on one of the instances in disconnectedOK), one per slot, and a
// status that counts them.
func (w world) converged(service string, desired int, disconnectedOK map[string]bool) error {
	var errs []error
	slots := map[string]string{}
	n, notRunning, offline := 0, 0, 0
	for _, task := range w.tasks {
		if task.Labels[ecsv1alpha1.LabelService] != service || !active(task) {
			continue
		}
		n++
		if task.Status.LastStatus != ecsv1alpha1.TaskStateRunning {
			notRunning++
		}
		ci := w.instances[task.Spec.ContainerInstance]
		if ci == nil || (!ci.Status.AgentConnected && !disconnectedOK[ci.Name]) {
			offline++
		}
		key := task.Labels[ecsv1alpha1.LabelTaskDefinitionRevision] + "/" + task.Labels[servicecontroller.LabelSlot]
		if other, dup := slots[key]; dup {
			errs = append(errs, fmt.Errorf("service %s: tasks %s and %s both hold slot %s", service, other, task.Name, key))
		}
		slots[key] = task.Name
	}
	if n != desired || notRunning > 0 || offline > 0 {
		errs = append(errs, fmt.Errorf("service %s: %d active tasks of %d desired, %d not RUNNING, %d not on a connected instance",
			service, n, desired, notRunning, offline))
	}
	if svc := w.services[service]; svc == nil || int(svc.Status.RunningCount) != desired {
		running := int32(-1)
		if svc != nil {
			running = svc.Status.RunningCount
		}
		errs = append(errs, fmt.Errorf("service %s: status.runningCount %d, want %d", service, running, desired))
	}
	return errors.Join(errs...)
}

// withinResources reports the instances whose tasks (all that are not STOPPED) reserve more CPU or
// memory than the instance registered.
func (w world) withinResources() error {
	cpu, mem := map[string]int64{}, map[string]int64{}
	for _, task := range w.tasks {
		if task.Spec.ContainerInstance == "" || task.Status.LastStatus == ecsv1alpha1.TaskStateStopped {
			continue
		}
		req, err := placement.RequestFor(task)
		if err != nil {
			return fmt.Errorf("task %s: %w", task.Name, err)
		}
		cpu[task.Spec.ContainerInstance] += req.CPU
		mem[task.Spec.ContainerInstance] += req.Memory
	}
	var errs []error
	for name, ci := range w.instances {
		res := ci.Status.RegisteredResources
		if res == nil {
			if cpu[name] > 0 {
				errs = append(errs, fmt.Errorf("instance %s has tasks but no registered resources", name))
			}
			continue
		}
		if cpu[name] > int64(res.CPU) || mem[name] > int64(res.Memory) {
			errs = append(errs, fmt.Errorf("instance %s holds %d CPU units and %d MiB, registered %d and %d",
				name, cpu[name], mem[name], res.CPU, res.Memory))
		}
	}
	return errors.Join(errs...)
}

// activeOn lists the active tasks of a service on the given instances, by name.
func (w world) activeOn(service string, on map[string]bool) []string {
	var out []string
	for _, task := range w.tasks {
		if task.Labels[ecsv1alpha1.LabelService] == service && active(task) && on[task.Spec.ContainerInstance] {
			out = append(out, task.Name)
		}
	}
	slices.Sort(out)
	return out
}

// busiestWithBoth picks n instances that run tasks of both services, those with the most first.
func (w world) busiestWithBoth(a, b string, n int) []string {
	count := map[string][2]int{}
	for _, task := range w.tasks {
		if !active(task) {
			continue
		}
		cnt := count[task.Spec.ContainerInstance]
		switch task.Labels[ecsv1alpha1.LabelService] {
		case a:
			cnt[0]++
		case b:
			cnt[1]++
		}
		count[task.Spec.ContainerInstance] = cnt
	}
	var names []string
	for name, cnt := range count {
		if cnt[0] > 0 && cnt[1] > 0 {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, func(x, y string) int {
		if d := (count[y][0] + count[y][1]) - (count[x][0] + count[x][1]); d != 0 {
			return d
		}
		return cmp.Compare(x, y)
	})
	return names[:min(n, len(names))]
}
