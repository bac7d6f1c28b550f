package placement

import (
	"errors"
	"math/rand"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/placement/query"
)

// inst returns an ACTIVE, connected candidate with cpu CPU units and mem MiB remaining and the attributes
// given as name, value pairs.
func inst(id string, cpu, mem int64, attrs ...string) Candidate {
	c := Candidate{
		Instance:     query.Instance{ID: id, AgentConnected: true, Attributes: map[string]string{}, TaskGroups: map[string]int{}},
		Active:       true,
		RemainingCPU: cpu, RemainingMemory: mem,
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		c.Attributes[attrs[i]] = attrs[i+1]
	}
	return c
}

// withTasks records n tasks of group already on c.
func withTasks(c Candidate, group string, n int) Candidate {
	c.TaskGroups[group] += n
	c.RunningTasksCount += n
	return c
}

func withPorts(c Candidate, ports ...PortKey) Candidate {
	c.UsedHostPorts = map[PortKey]bool{}
	for _, p := range ports {
		c.UsedHostPorts[p] = true
	}
	return c
}

func draining(c Candidate) Candidate     { c.Active = false; return c }
func disconnected(c Candidate) Candidate { c.AgentConnected = false; return c }

func spread(field string) ecsv1alpha1.PlacementStrategy {
	return ecsv1alpha1.PlacementStrategy{Type: ecsv1alpha1.PlacementStrategySpread, Field: field}
}

func binpack(field string) ecsv1alpha1.PlacementStrategy {
	return ecsv1alpha1.PlacementStrategy{Type: ecsv1alpha1.PlacementStrategyBinpack, Field: field}
}

var random = ecsv1alpha1.PlacementStrategy{Type: ecsv1alpha1.PlacementStrategyRandom}

func memberOf(t *testing.T, expr string) Constraint {
	t.Helper()
	cs, err := CompileConstraints([]ecsv1alpha1.PlacementConstraint{{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: expr}})
	require.NoError(t, err)
	return cs[0]
}

var distinct = Constraint{Type: ecsv1alpha1.PlacementConstraintDistinctInstance}

// placeAll places n tasks one by one, assigning each, and returns the instance IDs in placement order. It
// stops at the first error.
func placeAll(t *testing.T, req Request, cands []Candidate, n int, rnd *rand.Rand) ([]string, error) {
	t.Helper()
	var got []string
	for range n {
		id, err := Place(req, cands, rnd)
		if err != nil {
			return got, err
		}
		got = append(got, id)
		i := slices.IndexFunc(cands, func(c Candidate) bool { return c.ID == id })
		require.GreaterOrEqual(t, i, 0, "Place returned an unknown instance %q", id)
		Assign(&cands[i], req)
	}
	return got, nil
}

func countBy(ids []string, key func(string) string) map[string]int {
	m := map[string]int{}
	for _, id := range ids {
		m[key(id)]++
	}
	return m
}

func byID(id string) string { return id }

func TestPlaceStrategies(t *testing.T) {
	store := func(cands []Candidate) func(string) string {
		return func(id string) string {
			i := slices.IndexFunc(cands, func(c Candidate) bool { return c.ID == id })
			return cands[i].Attributes["store"]
		}
	}
	tests := []struct {
		name       string
		cands      []Candidate
		strategies []ecsv1alpha1.PlacementStrategy
		group      string
		n          int
		noRand     bool
		// Exactly one of these is checked.
		wantOrder   []string       // instance IDs in placement order
		wantPerID   map[string]int // tasks placed per instance
		wantPerAttr map[string]int // tasks placed per value of attribute store
	}{{
		name: "spread attribute:store evens out stores, not instances",
		cands: []Candidate{
			inst("a1", 4096, 4096, "store", "a"), inst("a2", 4096, 4096, "store", "a"),
			inst("b1", 4096, 4096, "store", "b"), inst("c1", 4096, 4096, "store", "c"),
		},
		strategies:  []ecsv1alpha1.PlacementStrategy{spread("attribute:store")},
		n:           6,
		wantPerAttr: map[string]int{"a": 2, "b": 2, "c": 2},
	}, {
		name: "spread attribute:store counts the group's tasks already running",
		cands: []Candidate{
			withTasks(inst("a1", 4096, 4096, "store", "a"), "service:web", 2),
			withTasks(inst("b1", 4096, 4096, "store", "b"), "service:other", 5),
			inst("c1", 4096, 4096, "store", "c"),
		},
		strategies:  []ecsv1alpha1.PlacementStrategy{spread("attribute:store")},
		n:           4,
		wantPerAttr: map[string]int{"b": 2, "c": 2},
	}, {
		name: "spread attribute groups instances without the attribute as one value",
		cands: []Candidate{
			inst("a1", 4096, 4096, "store", "a"), inst("x1", 4096, 4096), inst("x2", 4096, 4096),
		},
		strategies:  []ecsv1alpha1.PlacementStrategy{spread("attribute:store")},
		n:           4,
		wantPerAttr: map[string]int{"a": 2, "": 2},
	}, {
		name:       "spread instanceId fills the emptiest instances of the group first",
		cands:      []Candidate{withTasks(inst("a", 4096, 4096), "service:web", 2), withTasks(inst("b", 4096, 4096), "service:other", 3), inst("c", 4096, 4096)},
		strategies: []ecsv1alpha1.PlacementStrategy{spread("instanceId")},
		n:          4,
		wantPerID:  map[string]int{"b": 2, "c": 2},
	}, {
		name:       "spread host is spread instanceId",
		cands:      []Candidate{inst("a", 4096, 4096), inst("b", 4096, 4096), inst("c", 4096, 4096)},
		strategies: []ecsv1alpha1.PlacementStrategy{spread("host")},
		n:          6,
		wantPerID:  map[string]int{"a": 2, "b": 2, "c": 2},
	}, {
		name:       "binpack memory fills the instance with the least memory left before the next",
		cands:      []Candidate{inst("a", 4096, 1024), inst("b", 4096, 512), inst("c", 4096, 768)},
		strategies: []ecsv1alpha1.PlacementStrategy{binpack("memory")},
		n:          9,
		wantOrder:  []string{"b", "b", "c", "c", "c", "a", "a", "a", "a"},
	}, {
		name:       "binpack cpu ignores memory",
		cands:      []Candidate{inst("a", 1024, 8192), inst("b", 2048, 512)},
		strategies: []ecsv1alpha1.PlacementStrategy{binpack("cpu")},
		n:          6,
		wantOrder:  []string{"a", "a", "a", "a", "b", "b"},
	}, {
		name: "spread attribute:store then binpack memory packs within each store",
		cands: []Candidate{
			inst("a-big", 4096, 4096, "store", "a"), inst("a-small", 4096, 512, "store", "a"),
			inst("b-big", 4096, 4096, "store", "b"), inst("b-small", 4096, 768, "store", "b"),
		},
		strategies: []ecsv1alpha1.PlacementStrategy{spread("attribute:store"), binpack("memory")},
		n:          8,
		wantPerID:  map[string]int{"a-small": 2, "a-big": 2, "b-small": 3, "b-big": 1},
	}, {
		name: "spread attribute:store then spread instanceId evens out both",
		cands: []Candidate{
			inst("a1", 4096, 4096, "store", "a"), inst("a2", 4096, 4096, "store", "a"),
			inst("b1", 4096, 4096, "store", "b"),
		},
		strategies: []ecsv1alpha1.PlacementStrategy{spread("attribute:store"), spread("instanceId")},
		n:          4,
		wantPerID:  map[string]int{"a1": 1, "a2": 1, "b1": 2},
	}, {
		name:      "without strategies or rnd, the lowest ID that fits wins",
		cands:     []Candidate{inst("c", 4096, 4096), inst("a", 4096, 1024), inst("b", 4096, 4096)},
		n:         6,
		noRand:    true,
		wantOrder: []string{"a", "a", "a", "a", "b", "b"},
	}, {
		name:       "without a group, spread counts every task on the instance",
		cands:      []Candidate{withTasks(inst("a", 4096, 4096), "service:x", 1), inst("b", 4096, 4096)},
		strategies: []ecsv1alpha1.PlacementStrategy{spread("instanceId")},
		group:      "-",
		n:          3,
		wantPerID:  map[string]int{"a": 1, "b": 2},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{CPU: 256, Memory: 256, Group: "service:web", Strategies: tt.strategies}
			if tt.group == "-" {
				req.Group = ""
			}
			var rnd *rand.Rand
			if !tt.noRand {
				rnd = rand.New(rand.NewSource(12))
			}
			got, err := placeAll(t, req, tt.cands, tt.n, rnd)
			require.NoError(t, err)
			switch {
			case tt.wantOrder != nil:
				assert.Equal(t, tt.wantOrder, got)
			case tt.wantPerID != nil:
				assert.Equal(t, tt.wantPerID, countBy(got, byID))
			default:
				assert.Equal(t, tt.wantPerAttr, countBy(got, store(tt.cands)))
			}
		})
	}
}

func TestPlaceRandom(t *testing.T) {
	cands := func() []Candidate {
		return []Candidate{inst("a", 1<<20, 1<<20), inst("b", 1<<20, 1<<20), inst("c", 1<<20, 1<<20), inst("d", 1<<20, 1<<20)}
	}
	req := Request{CPU: 1, Memory: 1, Group: "family:batch", Strategies: []ecsv1alpha1.PlacementStrategy{random}}

	first, err := placeAll(t, req, cands(), 400, rand.New(rand.NewSource(77)))
	require.NoError(t, err)
	for id, n := range countBy(first, byID) {
		assert.Greater(t, n, 50, "instance %s got too few of 400 random placements", id)
	}
	assert.Len(t, countBy(first, byID), 4)

	// Same seed, candidates listed in another order: the same placements.
	reversed := cands()
	slices.Reverse(reversed)
	again, err := placeAll(t, req, reversed, 400, rand.New(rand.NewSource(77)))
	require.NoError(t, err)
	assert.Equal(t, first, again)

	// Strategies after random have nothing left to decide, and do not make it less random.
	req.Strategies = append(req.Strategies, binpack("memory"))
	withBinpack, err := placeAll(t, req, cands(), 400, rand.New(rand.NewSource(77)))
	require.NoError(t, err)
	assert.Len(t, countBy(withBinpack, byID), 4)
}

func TestPlaceTiesAreSharedAtRandom(t *testing.T) {
	// Identical instances under spread: which one goes first depends on rnd, not on the listing order.
	req := Request{CPU: 1, Memory: 1, Group: "service:web", Strategies: []ecsv1alpha1.PlacementStrategy{spread("instanceId")}}
	firsts := map[string]bool{}
	for seed := range 40 {
		cands := []Candidate{inst("a", 100, 100), inst("b", 100, 100), inst("c", 100, 100)}
		id, err := Place(req, cands, rand.New(rand.NewSource(int64(seed))))
		require.NoError(t, err)
		firsts[id] = true
	}
	assert.Len(t, firsts, 3)
}

func TestPlaceChecks(t *testing.T) {
	p80 := PortKey{Port: 80, Protocol: "tcp"}
	tests := []struct {
		name        string
		cands       []Candidate
		req         func(t *testing.T) Request
		n           int
		wantPerID   map[string]int // where the tasks that fit went
		wantClosest string         // the Unplaceable of the first task that did not fit, if any
		wantReason  string
	}{{
		name:  "distinctInstance never doubles up",
		cands: []Candidate{inst("a", 4096, 4096), inst("b", 4096, 4096), withTasks(inst("c", 4096, 4096), "service:web", 1), inst("d", 4096, 4096)},
		req: func(*testing.T) Request {
			return Request{Group: "service:web", Constraints: []Constraint{distinct}, Strategies: []ecsv1alpha1.PlacementStrategy{binpack("memory")}}
		},
		n:           4,
		wantPerID:   map[string]int{"a": 1, "b": 1, "d": 1},
		wantClosest: "a",
		wantReason:  "already runs a task of group service:web (distinctInstance)",
	}, {
		name:  "distinctInstance only counts the task's own group",
		cands: []Candidate{withTasks(inst("a", 4096, 4096), "service:db", 1)},
		req: func(*testing.T) Request {
			return Request{Group: "service:web", Constraints: []Constraint{distinct}}
		},
		n:         1,
		wantPerID: map[string]int{"a": 1},
	}, {
		name:  "memberOf on an attribute",
		cands: []Candidate{inst("a", 4096, 4096, "store", "a"), inst("b", 4096, 4096, "store", "b"), inst("x", 4096, 4096)},
		req: func(t *testing.T) Request {
			return Request{CPU: 1024, Group: "service:web", Constraints: []Constraint{memberOf(t, "attribute:store == b")}}
		},
		n:           5,
		wantPerID:   map[string]int{"b": 4},
		wantClosest: "b",
		wantReason:  "has insufficient CPU units available",
	}, {
		name: "memberOf task:group follows a placement made in the same batch",
		cands: []Candidate{
			withTasks(inst("a", 4096, 4096), "service:db", 1), inst("b", 4096, 4096), withTasks(inst("c", 4096, 4096), "service:db", 1),
		},
		req: func(t *testing.T) Request {
			return Request{Group: "service:db", Constraints: []Constraint{memberOf(t, "not(task:group == service:db)")}}
		},
		n:           2,
		wantPerID:   map[string]int{"b": 1},
		wantClosest: "a",
	}, {
		name: "host ports: a port in use on one protocol is free on the other",
		cands: []Candidate{
			withPorts(inst("a", 4096, 4096), p80), withPorts(inst("b", 4096, 4096), PortKey{Port: 80, Protocol: "udp"}), inst("c", 4096, 4096),
		},
		req: func(*testing.T) Request {
			return Request{Group: "service:web", HostPorts: []PortKey{p80}}
		},
		n:           3,
		wantPerID:   map[string]int{"b": 1, "c": 1},
		wantClosest: "a",
		wantReason:  "is already using a port required by your task (80/tcp)",
	}, {
		name:  "DRAINING and disconnected instances receive nothing",
		cands: []Candidate{draining(inst("a", 1<<20, 1<<20)), disconnected(inst("b", 1<<20, 1<<20)), inst("c", 1024, 1024)},
		req: func(*testing.T) Request {
			return Request{CPU: 512, Memory: 512, Group: "service:web", Strategies: []ecsv1alpha1.PlacementStrategy{binpack("memory")}}
		},
		n:           3,
		wantPerID:   map[string]int{"c": 2},
		wantClosest: "b", // one failure; c fails both cpu and memory
		wantReason:  "is not connected",
	}, {
		name:  "exact fit",
		cands: []Candidate{inst("a", 512, 512)},
		req: func(*testing.T) Request {
			return Request{CPU: 512, Memory: 512, Group: "service:web"}
		},
		n:           2,
		wantPerID:   map[string]int{"a": 1},
		wantClosest: "a",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := placeAll(t, tt.req(t), tt.cands, tt.n, rand.New(rand.NewSource(34)))
			assert.Equal(t, tt.wantPerID, countBy(got, byID))
			if tt.wantClosest == "" {
				require.NoError(t, err)
				return
			}
			var u *Unplaceable
			require.ErrorAs(t, err, &u)
			assert.Equal(t, tt.wantClosest, u.Closest)
			if tt.wantReason != "" {
				assert.Equal(t, tt.wantReason, u.Reason)
			}
		})
	}
}

func TestUnplaceable(t *testing.T) {
	web := "service:web"
	tests := []struct {
		name    string
		cands   []Candidate
		req     func(t *testing.T) Request
		wantErr string
	}{{
		name:    "no instances",
		req:     func(*testing.T) Request { return Request{CPU: 1} },
		wantErr: "no container instances are registered in the cluster",
	}, {
		name:  "memory: the instance with the smallest shortfall",
		cands: []Candidate{inst("store-1", 4096, 100), inst("store-2", 4096, 500), inst("store-3", 4096, 200)},
		req:   func(*testing.T) Request { return Request{CPU: 256, Memory: 512} },
		wantErr: "no container instance met all of its requirements. The closest matching container-instance store-2 " +
			"has insufficient memory available.",
	}, {
		name:  "cpu",
		cands: []Candidate{inst("store-1", 100, 4096), inst("store-2", 200, 4096)},
		req:   func(*testing.T) Request { return Request{CPU: 256, Memory: 512} },
		wantErr: "no container instance met all of its requirements. The closest matching container-instance store-2 " +
			"has insufficient CPU units available.",
	}, {
		name:  "port",
		cands: []Candidate{withPorts(inst("store-1", 4096, 4096), PortKey{443, "tcp"}, PortKey{8080, "tcp"})},
		req: func(*testing.T) Request {
			return Request{HostPorts: []PortKey{{80, "tcp"}, {8080, "tcp"}, {443, "tcp"}}}
		},
		wantErr: "no container instance met all of its requirements. The closest matching container-instance store-1 " +
			"is already using a port required by your task (8080/tcp).",
	}, {
		name:  "memberOf names the expression",
		cands: []Candidate{inst("store-1", 4096, 4096, "store", "1")},
		req: func(t *testing.T) Request {
			return Request{Constraints: []Constraint{memberOf(t, "attribute:store exists"), memberOf(t, "attribute:store == 2")}}
		},
		wantErr: "no container instance met all of its requirements. The closest matching container-instance store-1 " +
			"does not match constraint " + memberOf(t, "attribute:store == 2").Expr.String() + ".",
	}, {
		name:  "distinctInstance names the group",
		cands: []Candidate{withTasks(inst("store-1", 4096, 4096), web, 1), withTasks(inst("store-2", 4096, 4096), web, 2)},
		req:   func(*testing.T) Request { return Request{Group: web, Constraints: []Constraint{distinct}} },
		wantErr: "no container instance met all of its requirements. The closest matching container-instance store-1 " +
			"already runs a task of group service:web (distinctInstance).",
	}, {
		name:  "not connected",
		cands: []Candidate{disconnected(inst("store-1", 4096, 4096))},
		req:   func(*testing.T) Request { return Request{CPU: 1} },
		wantErr: "no container instance met all of its requirements. The closest matching container-instance store-1 " +
			"is not connected.",
	}, {
		name:  "DRAINING",
		cands: []Candidate{draining(inst("store-1", 4096, 4096))},
		req:   func(*testing.T) Request { return Request{CPU: 1} },
		wantErr: "no container instance met all of its requirements. The closest matching container-instance store-1 " +
			"is DRAINING.",
	}, {
		name: "the closest fails the fewest checks",
		cands: []Candidate{
			draining(inst("store-1", 4096, 100)),                      // two failures
			disconnected(inst("store-2", 100, 100)),                   // three failures
			withPorts(inst("store-3", 100, 4096), PortKey{80, "tcp"}), // two failures
			inst("store-4", 4096, 100, "store", "4"),                  // one failure
		},
		req: func(*testing.T) Request { return Request{CPU: 256, Memory: 512, HostPorts: []PortKey{{80, "tcp"}}} },
		wantErr: "no container instance met all of its requirements. The closest matching container-instance store-4 " +
			"has insufficient memory available.",
	}, {
		name: "between equal counts, the least bad failure",
		cands: []Candidate{
			draining(inst("store-1", 4096, 4096)),
			withPorts(inst("store-2", 4096, 4096), PortKey{80, "tcp"}),
			disconnected(inst("store-3", 4096, 4096)),
		},
		req: func(*testing.T) Request { return Request{CPU: 256, HostPorts: []PortKey{{80, "tcp"}}} },
		wantErr: "no container instance met all of its requirements. The closest matching container-instance store-2 " +
			"is already using a port required by your task (80/tcp).",
	}, {
		name:  "the reason is the closest instance's worst failure",
		cands: []Candidate{draining(inst("store-1", 4096, 100)), draining(disconnected(inst("store-2", 4096, 4096)))},
		req:   func(*testing.T) Request { return Request{Memory: 512} },
		wantErr: "no container instance met all of its requirements. The closest matching container-instance store-1 " +
			"is DRAINING.",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Place(tt.req(t), tt.cands, rand.New(rand.NewSource(11)))
			var u *Unplaceable
			require.True(t, errors.As(err, &u), "want *Unplaceable, got %v", err)
			assert.EqualError(t, err, tt.wantErr)
		})
	}
}

func TestPlaceRejectsUnknownStrategies(t *testing.T) {
	for _, s := range []ecsv1alpha1.PlacementStrategy{
		binpack("disk"), spread("attribute:"), spread("zone"), {Type: "pack"},
	} {
		_, err := Place(Request{Strategies: []ecsv1alpha1.PlacementStrategy{random, s}}, []Candidate{inst("a", 1, 1)}, nil)
		require.Error(t, err, "%+v", s)
		assert.Contains(t, err.Error(), "placementStrategy[1]: ")
		var u *Unplaceable
		assert.False(t, errors.As(err, &u))
	}
}

func TestAssign(t *testing.T) {
	c := Candidate{Instance: query.Instance{ID: "a"}, RemainingCPU: 1024, RemainingMemory: 2048}
	req := Request{CPU: 256, Memory: 512, HostPorts: []PortKey{{80, "tcp"}, {53, "udp"}}, Group: "service:web"}
	Assign(&c, req)
	Assign(&c, Request{CPU: 1, Memory: 1, Group: "service:web"})
	assert.Equal(t, int64(767), c.RemainingCPU)
	assert.Equal(t, int64(1535), c.RemainingMemory)
	assert.Equal(t, map[PortKey]bool{{80, "tcp"}: true, {53, "udp"}: true}, c.UsedHostPorts)
	assert.Equal(t, map[string]int{"service:web": 2}, c.TaskGroups)
	assert.Equal(t, 2, c.RunningTasksCount)
}

func TestServiceStrategies(t *testing.T) {
	assert.Equal(t, []ecsv1alpha1.PlacementStrategy{spread("instanceId")}, ServiceStrategies(nil))
	own := []ecsv1alpha1.PlacementStrategy{binpack("cpu")}
	assert.Equal(t, own, ServiceStrategies(own))
}
