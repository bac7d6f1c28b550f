package integration

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/test/framework"
)

// Every case runs in its own namespace, with a task definition and a service of these names.
const (
	placementFamily  = "web"
	placementService = "web"
	// placementTaskMemory is what each task reserves, in MiB.
	placementTaskMemory = 512
	// placementWait bounds each wait for the server to reach a state.
	placementWait = 45 * time.Second
)

var placementServicesGVR = schema.GroupVersionResource{Group: ecsv1alpha1.GroupName, Version: "v1alpha1", Resource: "services"}

// placementRow is one strategy or constraint: a service of 6 tasks on the instances given, and where
// its tasks end up.
type placementRow struct {
	name        string
	instances   []framework.SimulatedInstance
	hostPort    int32
	strategy    []ecsv1alpha1.PlacementStrategy
	constraints []ecsv1alpha1.PlacementConstraint
	// database, when set, is the instance on which a standalone task of group "database" runs before
	// the service starts, for task:group expressions.
	database string
	// by names the attribute the placed tasks are counted by; empty counts them by instance.
	by string
	// want is the number of placed tasks per instance (or per value of the attribute by).
	want map[string]int
	// unplaced tasks stay without an instance, with Placed=False and a message containing reason.
	unplaced int
	reason   string
}

func simHost(name string, memory int32, attrs ...string) framework.SimulatedInstance {
	in := framework.SimulatedInstance{Name: name, CPU: 4096, Memory: memory, Attributes: map[string]string{}}
	for i := 0; i+1 < len(attrs); i += 2 {
		in.Attributes[attrs[i]] = attrs[i+1]
	}
	return in
}

func simHosts(memory int32, names ...string) []framework.SimulatedInstance {
	var out []framework.SimulatedInstance
	for _, n := range names {
		out = append(out, simHost(n, memory))
	}
	return out
}

func spreadOn(field string) ecsv1alpha1.PlacementStrategy {
	return ecsv1alpha1.PlacementStrategy{Type: ecsv1alpha1.PlacementStrategySpread, Field: field}
}

func binpackOn(field string) ecsv1alpha1.PlacementStrategy {
	return ecsv1alpha1.PlacementStrategy{Type: ecsv1alpha1.PlacementStrategyBinpack, Field: field}
}

func memberOfExpr(expr string) ecsv1alpha1.PlacementConstraint {
	return ecsv1alpha1.PlacementConstraint{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: expr}
}

var distinctInstanceConstraint = ecsv1alpha1.PlacementConstraint{Type: ecsv1alpha1.PlacementConstraintDistinctInstance}

func perEach(n int, names ...string) map[string]int {
	m := map[string]int{}
	for _, name := range names {
		m[name] = n
	}
	return m
}

var placementRows = []placementRow{{
	// Store a has three hosts and store c one: spreading over the store still gives each store two.
	name: "spread attribute:store",
	instances: []framework.SimulatedInstance{
		simHost("a1", 4096, "store", "a"), simHost("a2", 4096, "store", "a"), simHost("a3", 4096, "store", "a"),
		simHost("b1", 4096, "store", "b"), simHost("b2", 4096, "store", "b"), simHost("c1", 4096, "store", "c"),
	},
	strategy: []ecsv1alpha1.PlacementStrategy{spreadOn("attribute:store")},
	by:       "store",
	want:     map[string]int{"a": 2, "b": 2, "c": 2},
}, {
	name:      "spread instanceId",
	instances: simHosts(4096, "i1", "i2", "i3"),
	strategy:  []ecsv1alpha1.PlacementStrategy{spreadOn("instanceId")},
	want:      perEach(2, "i1", "i2", "i3"),
}, {
	// 512 MiB tasks: small (1024) fills first, then medium (2048); large is never needed.
	name:      "binpack memory",
	instances: []framework.SimulatedInstance{simHost("large", 4096), simHost("small", 1024), simHost("medium", 2048)},
	strategy:  []ecsv1alpha1.PlacementStrategy{binpackOn("memory")},
	want:      map[string]int{"small": 2, "medium": 4},
}, {
	// binpack alone would stack the tasks; distinctInstance allows one per instance.
	name:        "distinctInstance, 6 instances",
	instances:   simHosts(4096, "i1", "i2", "i3", "i4", "i5", "i6"),
	strategy:    []ecsv1alpha1.PlacementStrategy{binpackOn("memory")},
	constraints: []ecsv1alpha1.PlacementConstraint{distinctInstanceConstraint},
	want:        perEach(1, "i1", "i2", "i3", "i4", "i5", "i6"),
}, {
	name:        "distinctInstance, 4 instances",
	instances:   simHosts(4096, "i1", "i2", "i3", "i4"),
	strategy:    []ecsv1alpha1.PlacementStrategy{binpackOn("memory")},
	constraints: []ecsv1alpha1.PlacementConstraint{distinctInstanceConstraint},
	want:        perEach(1, "i1", "i2", "i3", "i4"),
	unplaced:    2,
	reason:      "already runs a task of group service:web (distinctInstance)",
}, {
	name: "memberOf attribute:zone == a",
	instances: []framework.SimulatedInstance{
		simHost("a1", 4096, "zone", "a"), simHost("a2", 4096, "zone", "a"), simHost("b1", 4096, "zone", "b"), simHost("b2", 4096, "zone", "b"),
	},
	constraints: []ecsv1alpha1.PlacementConstraint{memberOfExpr("attribute:zone == a")},
	want:        map[string]int{"a1": 3, "a2": 3},
}, {
	name:        "memberOf task:group affinity",
	instances:   simHosts(4096, "i1", "i2", "i3", "i4"),
	database:    "i2",
	constraints: []ecsv1alpha1.PlacementConstraint{memberOfExpr("task:group == database")},
	want:        map[string]int{"i2": 6},
}, {
	name:        "memberOf not(task:group) anti-affinity",
	instances:   simHosts(4096, "i1", "i2", "i3", "i4"),
	database:    "i2",
	constraints: []ecsv1alpha1.PlacementConstraint{memberOfExpr("not(task:group == database)")},
	want:        perEach(2, "i1", "i3", "i4"),
}, {
	// binpack alone would put every task on one instance; the static host port allows one each.
	name:      "static hostPort 8080",
	instances: simHosts(4096, "i1", "i2", "i3", "i4"),
	hostPort:  8080,
	strategy:  []ecsv1alpha1.PlacementStrategy{binpackOn("memory")},
	want:      perEach(1, "i1", "i2", "i3", "i4"),
	unplaced:  2,
	reason:    "is already using a port required by your task (8080/tcp)",
}, {
	// Two tasks per store, each store's pair on its instance with the least memory.
	name: "spread attribute:store then binpack memory",
	instances: []framework.SimulatedInstance{
		simHost("a1", 1024, "store", "a"), simHost("a2", 4096, "store", "a"),
		simHost("b1", 4096, "store", "b"), simHost("b2", 1536, "store", "b"),
		simHost("c1", 8192, "store", "c"),
	},
	strategy: []ecsv1alpha1.PlacementStrategy{spreadOn("attribute:store"), binpackOn("memory")},
	want:     map[string]int{"a1": 2, "b2": 2, "c1": 2},
}}

// TestPlacement runs one droverd with its controllers and simulated hosts, each case in its own
// namespace, and asserts where tasks end up, as read back from the server.
func TestPlacement(t *testing.T) {
	s := framework.Start(t)
	dyn, err := dynamic.NewForConfig(s.Config)
	require.NoError(t, err)
	e := &placementEnv{c: s.Client, dyn: dyn}

	t.Run("strategies and constraints", func(t *testing.T) {
		for i, row := range placementRows {
			t.Run(row.name, func(t *testing.T) {
				t.Parallel()
				e.runRow(t, fmt.Sprintf("placement-%d", i), row)
			})
		}
	})
	t.Run("scale spread", func(t *testing.T) { t.Parallel(); e.scaleSpread(t) })
	t.Run("scale binpack", func(t *testing.T) { t.Parallel(); e.scaleBinpack(t) })
	t.Run("unplaceable memory", func(t *testing.T) { t.Parallel(); e.unplaceableMemory(t) })
	t.Run("unplaceable port", func(t *testing.T) { t.Parallel(); e.unplaceablePort(t) })
	t.Run("unplaceable attribute", func(t *testing.T) { t.Parallel(); e.unplaceableAttribute(t) })
	t.Run("standalone task", func(t *testing.T) { t.Parallel(); e.standaloneTask(t) })
	t.Run("conditions after a late resolve and placement", func(t *testing.T) { t.Parallel(); e.conditionsCatchUp(t) })
	t.Run("namespaces sharing a cluster name share no capacity", func(t *testing.T) { t.Parallel(); e.namespacesApart(t) })
}

// clusterIn names the cluster of a case's namespace: the namespace's own name, so that no two cases
// share a cluster name, except in the two namespaces of namespacesApart, whose clusters are both edge.
func clusterIn(ns string) string {
	if strings.HasPrefix(ns, "placement-apart-") {
		return "edge"
	}
	return ns
}

type placementEnv struct {
	c   client.Client
	dyn dynamic.Interface
}

// namespace creates a namespace holding the cluster and, when memory > 0, the web task definition
// whose single container reserves memory MiB and 128 CPU units and binds hostPort when it is set.
func (e *placementEnv) namespace(t *testing.T, ns string, memory, hostPort int32) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, e.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	require.NoError(t, e.c.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: clusterIn(ns), Namespace: ns}}))
	if memory > 0 {
		require.NoError(t, e.c.Create(ctx, placementTaskDefinition(ns, placementFamily, memory, hostPort)))
	}
}

func placementTaskDefinition(ns, family string, memory, hostPort int32) *ecsv1alpha1.TaskDefinition {
	ctr := ecsv1alpha1.ContainerDefinition{Name: "app", Image: "example.com/" + family + ":1", CPU: 128, Memory: ptr.To(memory)}
	if hostPort != 0 {
		ctr.PortMappings = []ecsv1alpha1.PortMapping{{ContainerPort: 80, HostPort: hostPort}}
	}
	return &ecsv1alpha1.TaskDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: family, Namespace: ns},
		Spec:       ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{ctr}},
	}
}

func (e *placementEnv) createService(t *testing.T, ns, name string, desired int32, strategy []ecsv1alpha1.PlacementStrategy,
	constraints []ecsv1alpha1.PlacementConstraint) {
	t.Helper()
	require.NoError(t, e.c.Create(t.Context(), &ecsv1alpha1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: ecsv1alpha1.ServiceSpec{Cluster: clusterIn(ns), TaskDefinition: placementFamily, DesiredCount: ptr.To(desired),
			PlacementStrategy: strategy, PlacementConstraints: constraints},
	}))
}

// runTask creates a standalone task as a user does (ECS RunTask), or on a chosen instance (ECS
// StartTask) when instance is set.
func (e *placementEnv) runTask(t *testing.T, ns, name, family, group, instance string) {
	t.Helper()
	require.NoError(t, e.c.Create(t.Context(), &ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: ecsv1alpha1.TaskSpec{Cluster: clusterIn(ns), TaskDefinition: family, Group: group,
			ContainerInstance: instance},
	}))
}

func (e *placementEnv) runRow(t *testing.T, ns string, row placementRow) {
	e.namespace(t, ns, placementTaskMemory, row.hostPort)
	framework.StartSimulatedAgents(t, e.c, ns, clusterIn(ns), row.instances...)
	if row.database != "" {
		// The service starts once the database task is resolved and runs, so that task:group sees it.
		e.runTask(t, ns, "database", placementFamily, "database", row.database)
		e.waitTask(t, ns, "database", func(task *ecsv1alpha1.Task) bool {
			return len(task.Spec.Containers) > 0 && task.Status.LastStatus == ecsv1alpha1.TaskStateRunning
		})
	}
	e.createService(t, ns, placementService, 6, row.strategy, row.constraints)
	tasks := e.waitService(t, ns, placementService, 6-row.unplaced, row.unplaced)

	key := func(task ecsv1alpha1.Task) string { return task.Spec.ContainerInstance }
	if row.by != "" {
		attrs := map[string]string{}
		for _, in := range row.instances {
			attrs[in.Name] = in.Attributes[row.by]
		}
		key = func(task ecsv1alpha1.Task) string { return attrs[task.Spec.ContainerInstance] }
	}
	got := map[string]int{}
	for _, task := range tasks {
		if task.Spec.ContainerInstance == "" {
			cond := meta.FindStatusCondition(task.Status.Conditions, ecsv1alpha1.TaskConditionPlaced)
			require.Equal(t, ecsv1alpha1.TaskReasonNoInstanceAvailable, cond.Reason, "task %s", task.Name)
			require.Contains(t, cond.Message, row.reason, "task %s", task.Name)
			continue
		}
		got[key(task)]++
	}
	require.Equal(t, row.want, got, "placed tasks per %s", cmp.Or(row.by, "instance"))
}

// scaleSpread scales a service spread over instances out and in with the scale subresource, as
// kubectl scale does: the service converges to exactly the count asked for, scale-in stops tasks
// (it starts none) and the spread stays even.
func (e *placementEnv) scaleSpread(t *testing.T) {
	const ns = "placement-scale-spread"
	e.namespace(t, ns, placementTaskMemory, 0)
	framework.StartSimulatedAgents(t, e.c, ns, clusterIn(ns), simHosts(8192, "i1", "i2", "i3")...)
	e.createService(t, ns, placementService, 6, []ecsv1alpha1.PlacementStrategy{spreadOn("instanceId")}, nil)

	require.Equal(t, perEach(2, "i1", "i2", "i3"), tasksPerInstance(e.waitService(t, ns, placementService, 6, 0)))
	e.scale(t, ns, placementService, 9)
	nine := e.waitService(t, ns, placementService, 9, 0)
	require.Equal(t, perEach(3, "i1", "i2", "i3"), tasksPerInstance(nine))

	e.scale(t, ns, placementService, 4)
	four := e.waitService(t, ns, placementService, 4, 0)
	counts := tasksPerInstance(four)
	require.Len(t, counts, 3, "scale-in keeps a task on every instance: %v", counts)
	require.LessOrEqual(t, slices.Max(slices.Collect(maps.Values(counts)))-slices.Min(slices.Collect(maps.Values(counts))), 1,
		"scale-in keeps the spread even: %v", counts)
	require.Subset(t, taskNames(nine), taskNames(four), "scale-in only stops tasks")

	e.scale(t, ns, placementService, 6)
	require.Equal(t, perEach(2, "i1", "i2", "i3"), tasksPerInstance(e.waitService(t, ns, placementService, 6, 0)))
	e.scale(t, ns, placementService, 0)
	e.waitService(t, ns, placementService, 0, 0)

	scale, err := e.dyn.Resource(placementServicesGVR).Namespace(ns).Get(t.Context(), placementService, metav1.GetOptions{}, "scale")
	require.NoError(t, err)
	replicas, _, _ := unstructured.NestedInt64(scale.Object, "spec", "replicas")
	running, _, _ := unstructured.NestedInt64(scale.Object, "status", "replicas")
	require.Equal(t, [2]int64{0, 0}, [2]int64{replicas, running}, "scale spec.replicas and status.replicas")
}

// scaleBinpack scales in a binpacked service: tasks stop on the instance with the most memory left.
func (e *placementEnv) scaleBinpack(t *testing.T) {
	const ns = "placement-scale-binpack"
	e.namespace(t, ns, placementTaskMemory, 0)
	framework.StartSimulatedAgents(t, e.c, ns, clusterIn(ns), simHost("big", 4096), simHost("small", 1024))
	e.createService(t, ns, placementService, 6, []ecsv1alpha1.PlacementStrategy{binpackOn("memory")}, nil)
	require.Equal(t, map[string]int{"small": 2, "big": 4}, tasksPerInstance(e.waitService(t, ns, placementService, 6, 0)))

	e.scale(t, ns, placementService, 3)
	require.Equal(t, map[string]int{"small": 2, "big": 1}, tasksPerInstance(e.waitService(t, ns, placementService, 3, 0)))
	e.scale(t, ns, placementService, 2)
	require.Equal(t, map[string]int{"small": 2}, tasksPerInstance(e.waitService(t, ns, placementService, 2, 0)))
	e.scale(t, ns, placementService, 5)
	require.Equal(t, map[string]int{"small": 2, "big": 3}, tasksPerInstance(e.waitService(t, ns, placementService, 5, 0)))
}

// unplaceableMemory: no instance has the memory; the service's event and the tasks' condition name
// the instance that came closest, in ECS's words.
func (e *placementEnv) unplaceableMemory(t *testing.T) {
	const ns = "placement-unplaceable-memory"
	e.namespace(t, ns, placementTaskMemory, 0)
	framework.StartSimulatedAgents(t, e.c, ns, clusterIn(ns), simHost("m1", 256), simHost("m2", 384))
	e.createService(t, ns, "api", 2, nil, nil)
	e.requireUnplaceable(t, ns, "api", 0, 2,
		"no container instance met all of its requirements. The closest matching container-instance m2 has insufficient memory available.")
}

// unplaceablePort: the only instance that could take the second task already binds its host port,
// and the other reserves it for its agent.
func (e *placementEnv) unplaceablePort(t *testing.T) {
	const ns = "placement-unplaceable-port"
	e.namespace(t, ns, placementTaskMemory, 8080)
	framework.StartSimulatedAgents(t, e.c, ns, clusterIn(ns), simHost("p1", 4096))
	// p2 has plenty of memory, but its agent reserves port 8080.
	p2 := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: "p2", Namespace: ns},
		Spec: ecsv1alpha1.ContainerInstanceSpec{Cluster: clusterIn(ns)}}
	require.NoError(t, e.c.Create(t.Context(), p2))
	before := p2.DeepCopy()
	now := metav1.Now()
	res := &ecsv1alpha1.InstanceResources{CPU: 8192, Memory: 8192, Ports: []int32{22, 8080}}
	p2.Status = ecsv1alpha1.ContainerInstanceStatus{AgentConnected: true, AgentVersion: "0.1.0", RegisteredAt: &now,
		RegisteredResources: res, RemainingResources: res.DeepCopy()}
	// A merge patch: the containerinstance controller writes this status too.
	require.NoError(t, e.c.Status().Patch(t.Context(), p2, client.MergeFrom(before)))

	e.createService(t, ns, "api", 2, nil, nil)
	tasks := e.requireUnplaceable(t, ns, "api", 1, 1,
		"no container instance met all of its requirements. The closest matching container-instance p1 is already using a port required by your task (8080/tcp).")
	require.Equal(t, map[string]int{"p1": 1}, tasksPerInstance(tasks))
}

// unplaceableAttribute: no instance matches the memberOf expression.
func (e *placementEnv) unplaceableAttribute(t *testing.T) {
	const ns = "placement-unplaceable-attribute"
	e.namespace(t, ns, placementTaskMemory, 0)
	framework.StartSimulatedAgents(t, e.c, ns, clusterIn(ns), simHost("z1", 4096, "zone", "b"), simHost("z2", 4096, "zone", "c"))
	e.createService(t, ns, "api", 2, nil, []ecsv1alpha1.PlacementConstraint{memberOfExpr("attribute:zone == a")})
	e.requireUnplaceable(t, ns, "api", 0, 2,
		"no container instance met all of its requirements. The closest matching container-instance z1 does not match constraint attribute:zone == a.")
}

// requireUnplaceable waits for placed running tasks and unplaced ones whose Placed condition is False
// with message, and for the service's event saying the same; it returns the active tasks.
func (e *placementEnv) requireUnplaceable(t *testing.T, ns, svc string, placed, unplaced int, message string) []ecsv1alpha1.Task {
	t.Helper()
	tasks := e.waitService(t, ns, svc, placed, unplaced)
	for _, task := range tasks {
		if task.Spec.ContainerInstance != "" {
			continue
		}
		cond := meta.FindStatusCondition(task.Status.Conditions, ecsv1alpha1.TaskConditionPlaced)
		require.Equal(t, metav1.ConditionFalse, cond.Status)
		require.Equal(t, ecsv1alpha1.TaskReasonNoInstanceAvailable, cond.Reason)
		require.Equal(t, message, cond.Message, "task %s", task.Name)
	}
	want := fmt.Sprintf("(service %s) was unable to place a task because %s", svc, message)
	placementEventually(t, func() (bool, string) {
		msgs := e.events(t, ns, "Service", svc)
		return slices.Contains(msgs, want), fmt.Sprintf("events of service %s: %q", svc, msgs)
	})
	return tasks
}

// standaloneTask: a task created with only a cluster and a task definition family is resolved to the
// latest revision and placed.
func (e *placementEnv) standaloneTask(t *testing.T) {
	const ns = "placement-standalone"
	e.namespace(t, ns, placementTaskMemory, 0)
	framework.StartSimulatedAgents(t, e.c, ns, clusterIn(ns), simHosts(4096, "s1", "s2")...)
	e.runTask(t, ns, "run-1", placementFamily, "", "")
	task := e.waitTask(t, ns, "run-1", func(task *ecsv1alpha1.Task) bool {
		return task.Spec.ContainerInstance != "" && task.Status.LastStatus == ecsv1alpha1.TaskStateRunning
	})
	require.Equal(t, "web-1", task.Spec.TaskDefinitionRevision)
	require.Equal(t, "family:web", task.Spec.Group)
	require.Len(t, task.Spec.Containers, 1)
	require.Equal(t, "example.com/web:1", task.Spec.Containers[0].Image)
	require.Equal(t, int32(placementTaskMemory), *task.Spec.Containers[0].Memory)
	require.Contains(t, []string{"s1", "s2"}, task.Spec.ContainerInstance)
}

// conditionsCatchUp: a task whose task definition did not exist yet, and which then found no
// instance, reports Resolved and Placed True once it is resolved and placed, as the Task API
// documents them, instead of keeping the old False conditions.
func (e *placementEnv) conditionsCatchUp(t *testing.T) {
	const ns = "placement-conditions"
	e.namespace(t, ns, 0, 0)
	agents := framework.StartSimulatedAgents(t, e.c, ns, clusterIn(ns), simHost("tiny", 128))
	e.runTask(t, ns, "run-1", "late", "", "")
	e.waitTask(t, ns, "run-1", func(task *ecsv1alpha1.Task) bool {
		return meta.IsStatusConditionFalse(task.Status.Conditions, ecsv1alpha1.TaskConditionResolved)
	})
	require.NoError(t, e.c.Create(t.Context(), placementTaskDefinition(ns, "late", placementTaskMemory, 0)))
	e.waitTask(t, ns, "run-1", func(task *ecsv1alpha1.Task) bool {
		return len(task.Spec.Containers) > 0 && meta.IsStatusConditionFalse(task.Status.Conditions, ecsv1alpha1.TaskConditionPlaced)
	})
	agents.AddInstance(t, simHost("roomy", 4096))
	// The conditions are written after the binding, as the agent starts the task: they are waited
	// for, not read at the moment the task runs.
	e.waitTask(t, ns, "run-1", func(task *ecsv1alpha1.Task) bool {
		return task.Spec.ContainerInstance == "roomy" && task.Status.LastStatus == ecsv1alpha1.TaskStateRunning &&
			meta.IsStatusConditionTrue(task.Status.Conditions, ecsv1alpha1.TaskConditionResolved) &&
			meta.IsStatusConditionTrue(task.Status.Conditions, ecsv1alpha1.TaskConditionPlaced)
	})
}

// namespacesApart runs a large service and a small one in two namespaces whose clusters and instances
// have the same names, scaling both out together a few times. The small one always fits its instance
// exactly; it must never find it short of memory because of the other namespace's tasks.
func (e *placementEnv) namespacesApart(t *testing.T) {
	const big, small = "placement-apart-big", "placement-apart-small"
	e.namespace(t, big, 64, 0)
	e.namespace(t, small, placementTaskMemory, 0)
	framework.StartSimulatedAgents(t, e.c, big, clusterIn(big), framework.SimulatedInstance{Name: "i1", CPU: 65536, Memory: 65536})
	framework.StartSimulatedAgents(t, e.c, small, clusterIn(small), simHost("i1", 4*placementTaskMemory))
	e.createService(t, big, placementService, 0, nil, nil)
	e.createService(t, small, placementService, 0, nil, nil)
	for round := 1; round <= 4; round++ {
		e.scale(t, big, placementService, 50*round)
		e.scale(t, small, placementService, 4)
		require.Equal(t, map[string]int{"i1": 4}, tasksPerInstance(e.waitService(t, small, placementService, 4, 0)))
		e.waitService(t, big, placementService, 50*round, 0)
		e.scale(t, small, placementService, 0)
		e.waitService(t, small, placementService, 0, 0)
	}
	var unable []string
	for _, msg := range e.events(t, small, "Service", placementService) {
		if strings.Contains(msg, "unable to place") {
			unable = append(unable, msg)
		}
	}
	require.Empty(t, unable, "the small service's instance always has room for its 4 tasks")
}

// scale sets desiredCount through the scale subresource with a merge patch, as kubectl scale does.
func (e *placementEnv) scale(t *testing.T, ns, svc string, n int) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n)
	_, err := e.dyn.Resource(placementServicesGVR).Namespace(ns).Patch(t.Context(), svc, types.MergePatchType, patch, metav1.PatchOptions{}, "scale")
	require.NoError(t, err)
}

// waitService waits until the service has exactly placed+unplaced active tasks: placed of them RUNNING
// on an instance, the others unplaced with Placed=False, and every task it stopped STOPPED. With
// nothing unplaced the service must also report a steady state. It returns the active tasks.
func (e *placementEnv) waitService(t *testing.T, ns, svc string, placed, unplaced int) []ecsv1alpha1.Task {
	t.Helper()
	var active []ecsv1alpha1.Task
	placementEventually(t, func() (bool, string) {
		list := &ecsv1alpha1.TaskList{}
		require.NoError(t, e.c.List(t.Context(), list, client.InNamespace(ns), client.MatchingLabels{ecsv1alpha1.LabelService: svc}))
		active = active[:0]
		running, waiting, stopping := 0, 0, 0
		for _, task := range list.Items {
			switch {
			case task.Status.LastStatus == ecsv1alpha1.TaskStateStopped:
			case task.Spec.DesiredStatus == ecsv1alpha1.TaskDesiredStopped:
				stopping++
			default:
				active = append(active, task)
				if task.Spec.ContainerInstance != "" && task.Status.LastStatus == ecsv1alpha1.TaskStateRunning {
					running++
				}
				if task.Spec.ContainerInstance == "" && meta.IsStatusConditionFalse(task.Status.Conditions, ecsv1alpha1.TaskConditionPlaced) {
					waiting++
				}
			}
		}
		s := &ecsv1alpha1.Service{}
		require.NoError(t, e.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: svc}, s))
		steady := unplaced > 0 || meta.IsStatusConditionTrue(s.Status.Conditions, ecsv1alpha1.ServiceConditionSteadyState)
		return len(active) == placed+unplaced && running == placed && waiting == unplaced && stopping == 0 && steady,
			fmt.Sprintf("%d active (%d running, %d unplaced), %d stopping; service running %d pending %d, conditions %v",
				len(active), running, waiting, stopping, s.Status.RunningCount, s.Status.PendingCount, conditionSummary(s.Status.Conditions))
	})
	return active
}

// waitTask waits until the task satisfies ok and returns it.
func (e *placementEnv) waitTask(t *testing.T, ns, name string, ok func(*ecsv1alpha1.Task) bool) *ecsv1alpha1.Task {
	t.Helper()
	task := &ecsv1alpha1.Task{}
	placementEventually(t, func() (bool, string) {
		require.NoError(t, e.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, task))
		return ok(task), fmt.Sprintf("task %s: instance %q, lastStatus %q, containers %d, conditions %v", name,
			task.Spec.ContainerInstance, task.Status.LastStatus, len(task.Spec.Containers), conditionSummary(task.Status.Conditions))
	})
	return task
}

// events returns the messages of the events about an object.
func (e *placementEnv) events(t *testing.T, ns, kind, name string) []string {
	t.Helper()
	list := &corev1.EventList{}
	require.NoError(t, e.c.List(t.Context(), list, client.InNamespace(ns)))
	var out []string
	for _, ev := range list.Items {
		if ev.InvolvedObject.Kind == kind && ev.InvolvedObject.Name == name {
			out = append(out, ev.Message)
		}
	}
	return out
}

// placementEventually polls cond until it holds, failing with its last description after placementWait.
func placementEventually(t *testing.T, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(placementWait)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached after %s: %s", placementWait, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tasksPerInstance(tasks []ecsv1alpha1.Task) map[string]int {
	m := map[string]int{}
	for _, task := range tasks {
		if task.Spec.ContainerInstance != "" {
			m[task.Spec.ContainerInstance]++
		}
	}
	return m
}

func taskNames(tasks []ecsv1alpha1.Task) []string {
	var out []string
	for _, task := range tasks {
		out = append(out, task.Name)
	}
	return out
}

func conditionSummary(cs []metav1.Condition) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	return strings.Join(parts, "; ")
}
