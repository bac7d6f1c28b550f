package placement

import (
	"fmt"
	"math/rand"
	"strings"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/placement/query"
)

// PortKey is a host port and its protocol, "tcp" or "udp".
type PortKey struct {
	Port     int32
	Protocol string
}

// String returns the port as people write it, for example 8080/tcp.
func (p PortKey) String() string {
	return fmt.Sprintf("%d/%s", p.Port, p.Protocol)
}

// Candidate is a container instance as placement sees it: what the query language can test, plus the state
// and resources that decide whether a task fits.
type Candidate struct {
	query.Instance

	// Active is true when spec.state is ACTIVE. DRAINING instances never receive tasks.
	Active bool
	// RemainingCPU and RemainingMemory are what the instance has left, in CPU units and MiB.
	RemainingCPU, RemainingMemory int64
	// UsedHostPorts are the host ports that are taken, by the agent's reserved ports or by placed tasks.
	UsedHostPorts map[PortKey]bool
}

// Request is what one task needs from the instance it is placed on.
type Request struct {
	// CPU and Memory are what the task reserves, in CPU units and MiB.
	CPU, Memory int64
	// HostPorts are the static host ports the task binds.
	HostPorts []PortKey
	// Group is the task group (service:web, family:batch). distinctInstance, spread and task:group count the
	// tasks of this group. When it is empty they count all tasks on an instance.
	Group string
	// Constraints are the compiled placement constraints; see CompileConstraints.
	Constraints []Constraint
	// Strategies order the instances that pass the checks, in sequence. Empty means random, as for a task
	// (Task.spec.placementStrategy); services pass ServiceStrategies.
	Strategies []ecsv1alpha1.PlacementStrategy
}

// Constraint is a placement constraint ready to evaluate. Expr is set for memberOf and nil for
// distinctInstance.
type Constraint struct {
	Type ecsv1alpha1.PlacementConstraintType
	Expr query.Expr
}

// ServiceStrategies returns the strategies a service's tasks are placed and scaled in with: the service's
// own, or spread over instanceId when it sets none, as Service.spec.placementStrategy documents. A task on its
// own keeps an empty list, which means random.
func ServiceStrategies(s []ecsv1alpha1.PlacementStrategy) []ecsv1alpha1.PlacementStrategy {
	if len(s) > 0 {
		return s
	}
	return []ecsv1alpha1.PlacementStrategy{{Type: ecsv1alpha1.PlacementStrategySpread, Field: "instanceId"}}
}

// Unplaceable is returned by Place when no instance meets all of a task's requirements. Closest is the
// instance that came nearest (it failed the fewest checks, and the least bad ones), and Reason is its worst
// failure in the words of ECS's service events, for example "has insufficient memory available". Closest is
// empty when the cluster has no instances at all.
type Unplaceable struct {
	Closest, Reason string
}

func (u *Unplaceable) Error() string {
	if u.Closest == "" {
		return "no container instances are registered in the cluster"
	}
	return fmt.Sprintf("no container instance met all of its requirements. The closest matching container-instance %s %s.",
		u.Closest, u.Reason)
}

// Place picks the instance for req among cands and returns its ID.
//
// An instance qualifies when it is ACTIVE, its agent is connected, it has the cpu, memory and host ports req
// needs, and it satisfies every constraint. The qualifying instances are ordered by req.Strategies in
// sequence, each breaking the ties of the one before; the ties that remain are broken at random with rnd (by
// ID when rnd is nil), so that identical instances share the load. The result depends only on req, the set
// of candidates and rnd, not on the order of cands.
//
// Place looks at each candidate a constant number of times, so a call costs O(len(cands)). When nothing
// qualifies the error is an *Unplaceable; a strategy Place does not know is a plain error.
func Place(req Request, cands []Candidate, rnd *rand.Rand) (string, error) {
	if len(cands) == 0 {
		return "", &Unplaceable{}
	}
	ord, err := newOrdering(req, cands, rnd)
	if err != nil {
		return "", err
	}

	best := -1
	bestKeys, keys := make([]int64, len(ord.keys)), make([]int64, len(ord.keys))
	closest := -1
	var closestMiss miss
	for i := range cands {
		c := &cands[i]
		if m := check(req, c); m.count > 0 {
			if closest < 0 || m.closerThan(c.ID, closestMiss, cands[closest].ID) {
				closest, closestMiss = i, m
			}
			continue
		}
		ord.fill(c, keys)
		if best < 0 || before(keys, c.ID, bestKeys, cands[best].ID) {
			best = i
			keys, bestKeys = bestKeys, keys
		}
	}
	if best < 0 {
		return "", &Unplaceable{Closest: cands[closest].ID, Reason: closestMiss.reason(req)}
	}
	return cands[best].ID, nil
}

// Assign reserves req on c in place: it takes the cpu, memory and host ports, and counts the task in its
// group and in RunningTasksCount. Placing a batch with Place then Assign lets each placement see the ones
// before it.
func Assign(c *Candidate, req Request) {
	c.RemainingCPU -= req.CPU
	c.RemainingMemory -= req.Memory
	if len(req.HostPorts) > 0 && c.UsedHostPorts == nil {
		c.UsedHostPorts = make(map[PortKey]bool, len(req.HostPorts))
	}
	for _, p := range req.HostPorts {
		c.UsedHostPorts[p] = true
	}
	if req.Group != "" {
		if c.TaskGroups == nil {
			c.TaskGroups = make(map[string]int, 1)
		}
		c.TaskGroups[req.Group]++
	}
	c.RunningTasksCount++
}

// groupCount is the number of tasks of group on c, or of all tasks when group is empty.
func groupCount(c *Candidate, group string) int {
	if group == "" {
		return c.RunningTasksCount
	}
	return c.TaskGroups[group]
}

// missKind is a reason an instance cannot take a task, from the least bad (it may pass soon, when tasks
// stop) to the worst (it needs an operator).
type missKind int

const (
	missNone missKind = iota
	missCPU
	missMemory
	missPort
	missDistinct
	missMemberOf
	missDisconnected
	missDraining
)

// miss sums up the checks one instance failed.
type miss struct {
	count              int
	severity           int // the sum of the failed checks' kinds
	worst              missKind
	port               PortKey // the first port in use, for missPort
	constraint         int     // the index of the first failed constraint, for missMemberOf
	cpuShort, memShort int64
}

func (m *miss) add(k missKind) {
	m.count++
	m.severity += int(k)
	m.worst = max(m.worst, k)
}

// closerThan reports whether m (on instance id) is closer to qualifying than o (on instance oid): fewer
// failed checks, then less bad ones, then less memory and cpu short, then the lower ID.
func (m miss) closerThan(id string, o miss, oid string) bool {
	switch {
	case m.count != o.count:
		return m.count < o.count
	case m.severity != o.severity:
		return m.severity < o.severity
	case m.worst != o.worst:
		return m.worst < o.worst
	case m.memShort != o.memShort:
		return m.memShort < o.memShort
	case m.cpuShort != o.cpuShort:
		return m.cpuShort < o.cpuShort
	}
	return id < oid
}

func (m miss) reason(req Request) string {
	switch m.worst {
	case missCPU:
		return "has insufficient CPU units available"
	case missMemory:
		return "has insufficient memory available"
	case missPort:
		return fmt.Sprintf("is already using a port required by your task (%s)", m.port)
	case missDistinct:
		return fmt.Sprintf("already runs a task of group %s (distinctInstance)", groupName(req.Group))
	case missMemberOf:
		return fmt.Sprintf("does not match constraint %s", req.Constraints[m.constraint].Expr)
	case missDisconnected:
		return "is not connected"
	case missDraining:
		return "is DRAINING"
	}
	return "meets all requirements"
}

func groupName(g string) string {
	if g == "" {
		return "(none)"
	}
	return g
}

// check runs every check of req against c and returns what failed; count is 0 when c qualifies.
func check(req Request, c *Candidate) miss {
	var m miss
	if !c.Active {
		m.add(missDraining)
	}
	if !c.AgentConnected {
		m.add(missDisconnected)
	}
	if c.RemainingCPU < req.CPU {
		m.add(missCPU)
		m.cpuShort = req.CPU - c.RemainingCPU
	}
	if c.RemainingMemory < req.Memory {
		m.add(missMemory)
		m.memShort = req.Memory - c.RemainingMemory
	}
	portMissed := false
	for _, p := range req.HostPorts {
		if c.UsedHostPorts[p] {
			if !portMissed {
				m.port = p
				portMissed = true
			}
			m.add(missPort)
		}
	}
	constraintMissed := false
	for i, k := range req.Constraints {
		switch k.Type {
		case ecsv1alpha1.PlacementConstraintDistinctInstance:
			if groupCount(c, req.Group) > 0 {
				m.add(missDistinct)
			}
		case ecsv1alpha1.PlacementConstraintMemberOf:
			if k.Expr != nil && !k.Expr.Matches(&c.Instance) {
				if !constraintMissed {
					m.constraint = i
					constraintMissed = true
				}
				m.add(missMemberOf)
			}
		}
	}
	return m
}

// keyKind is how one strategy ranks an instance; a lower key comes first.
type keyKind int

const (
	keyRemainingCPU keyKind = iota
	keyRemainingMemory
	keyGroupOnInstance
	keyGroupOnValue
	keyRandom
)

type sortKey struct {
	kind   keyKind
	attr   string         // for keyGroupOnValue: the attribute spread over
	counts map[string]int // for keyGroupOnValue: tasks of the group per attribute value, over all candidates
}

// ordering turns a Request's strategies into a key vector per instance; instances compare by their vectors,
// then by ID.
type ordering struct {
	group string
	salt  uint64
	keys  []sortKey
}

func newOrdering(req Request, cands []Candidate, rnd *rand.Rand) (*ordering, error) {
	o := &ordering{group: req.Group}
	random := false
	for i, s := range req.Strategies {
		k, err := strategyKey(s)
		if err != nil {
			return nil, fmt.Errorf("placementStrategy[%d]: %w", i, err)
		}
		if k.kind == keyGroupOnValue {
			// Tasks on instances that cannot take this one still count towards the spread: they run there.
			k.counts = make(map[string]int)
			for i := range cands {
				k.counts[cands[i].Attributes[k.attr]] += groupCount(&cands[i], req.Group)
			}
		}
		random = random || k.kind == keyRandom
		o.keys = append(o.keys, k)
	}
	if rnd != nil {
		o.salt = rnd.Uint64()
		if !random {
			o.keys = append(o.keys, sortKey{kind: keyRandom})
		}
	}
	return o, nil
}

// strategyKey validates s and returns its key, without the per-value counts.
func strategyKey(s ecsv1alpha1.PlacementStrategy) (sortKey, error) {
	switch s.Type {
	case ecsv1alpha1.PlacementStrategyBinpack:
		switch s.Field {
		case "cpu":
			return sortKey{kind: keyRemainingCPU}, nil
		case "memory":
			return sortKey{kind: keyRemainingMemory}, nil
		}
		return sortKey{}, fmt.Errorf("binpack field %q is not supported; use cpu or memory", s.Field)
	case ecsv1alpha1.PlacementStrategySpread:
		switch {
		case s.Field == "instanceId" || s.Field == "host":
			return sortKey{kind: keyGroupOnInstance}, nil
		case strings.HasPrefix(s.Field, "attribute:") && len(s.Field) > len("attribute:"):
			return sortKey{kind: keyGroupOnValue, attr: strings.TrimPrefix(s.Field, "attribute:")}, nil
		}
		return sortKey{}, fmt.Errorf("spread field %q is not supported; use instanceId, host or attribute:NAME", s.Field)
	case ecsv1alpha1.PlacementStrategyRandom:
		return sortKey{kind: keyRandom}, nil
	}
	return sortKey{}, fmt.Errorf("strategy type %q is not supported; use binpack, spread or random", s.Type)
}

// fill writes c's key vector into dst, which has one entry per key.
func (o *ordering) fill(c *Candidate, dst []int64) {
	for i, k := range o.keys {
		switch k.kind {
		case keyRemainingCPU:
			dst[i] = c.RemainingCPU
		case keyRemainingMemory:
			dst[i] = c.RemainingMemory
		case keyGroupOnInstance:
			dst[i] = int64(groupCount(c, o.group))
		case keyGroupOnValue:
			dst[i] = int64(k.counts[c.Attributes[k.attr]])
		case keyRandom:
			dst[i] = int64(shuffleRank(o.salt, c.ID) >> 1)
		}
	}
}

// before reports whether the instance with keys a and ID aid comes before the one with b and bid.
func before(a []int64, aid string, b []int64, bid string) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return aid < bid
}

// shuffleRank is the position of id in a random permutation chosen by salt: ranking instances by it is a
// shuffle that does not depend on the order they were listed in, and costs no sort.
func shuffleRank(salt uint64, id string) uint64 {
	// FNV-1a over the ID, seeded with the salt, then the splitmix64 finalizer to spread the bits.
	h := uint64(14695981039346656037) ^ salt
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
