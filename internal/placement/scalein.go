package placement

import (
	"time"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// RunningTask is a task of a service, as ScaleIn sees it. InstanceID is empty while the task is not placed.
type RunningTask struct {
	Name, InstanceID string
	Created          time.Time
}

// ScaleIn returns the names of the n tasks to stop first when a service scales in, in stop order. It
// follows ECS, applying the strategies in sequence as Place does:
//
//   - binpack on cpu or memory stops tasks on the instance with the most of that field remaining, emptying
//     the least used instances first;
//   - spread on instanceId, host or attribute:NAME stops a task of the value that runs the most of them, one
//     at a time, so the spread stays even;
//   - random, and the ties left at the end, stop the newest task first, then by name.
//
// Before any strategy, tasks that are not placed, or whose instance is DRAINING or missing from cands, go
// first: they would be replaced or are not running anyway. Pass the service's strategies through
// ServiceStrategies, so that a service without strategies keeps its tasks spread over instances. n larger
// than len(tasks) stops them all.
func ScaleIn(tasks []RunningTask, cands map[string]*Candidate, strategies []ecsv1alpha1.PlacementStrategy, n int) []string {
	n = min(n, len(tasks))
	if n <= 0 {
		return nil
	}

	type strategy struct {
		kind   keyKind
		attr   string
		counts map[string]int // spread: tasks left per value
	}
	var ss []strategy
	for _, s := range strategies {
		k, err := strategyKey(s)
		if err != nil || k.kind == keyRandom {
			continue
		}
		ss = append(ss, strategy{kind: k.kind, attr: k.attr})
	}

	// Per task: whether it goes first, then one key or spread value per strategy.
	type entry struct {
		RunningTask
		orphan  bool
		binpack []int64
		values  []string
		stopped bool
	}
	entries := make([]entry, len(tasks))
	for i, t := range tasks {
		e := entry{RunningTask: t, binpack: make([]int64, len(ss)), values: make([]string, len(ss))}
		c := cands[t.InstanceID]
		e.orphan = t.InstanceID == "" || c == nil || !c.Active
		for j, s := range ss {
			switch s.kind {
			case keyRemainingCPU:
				if c != nil {
					e.binpack[j] = c.RemainingCPU
				}
			case keyRemainingMemory:
				if c != nil {
					e.binpack[j] = c.RemainingMemory
				}
			case keyGroupOnInstance:
				e.values[j] = t.InstanceID
			case keyGroupOnValue:
				if c != nil {
					e.values[j] = c.Attributes[s.attr]
				}
			}
		}
		entries[i] = e
	}
	for j := range ss {
		if ss[j].kind == keyGroupOnInstance || ss[j].kind == keyGroupOnValue {
			ss[j].counts = make(map[string]int)
			for i := range entries {
				ss[j].counts[entries[i].values[j]]++
			}
		}
	}

	// stopsBefore reports whether a should stop before b.
	stopsBefore := func(a, b *entry) bool {
		if a.orphan != b.orphan {
			return a.orphan
		}
		for j, s := range ss {
			var ka, kb int64
			switch s.kind {
			case keyRemainingCPU, keyRemainingMemory:
				ka, kb = a.binpack[j], b.binpack[j]
			default:
				ka, kb = int64(s.counts[a.values[j]]), int64(s.counts[b.values[j]])
			}
			if ka != kb {
				return ka > kb
			}
		}
		if !a.Created.Equal(b.Created) {
			return a.Created.After(b.Created)
		}
		return a.Name < b.Name
	}

	out := make([]string, 0, n)
	for range n {
		var pick *entry
		for i := range entries {
			if e := &entries[i]; !e.stopped && (pick == nil || stopsBefore(e, pick)) {
				pick = e
			}
		}
		pick.stopped = true
		out = append(out, pick.Name)
		for j := range ss {
			if ss[j].counts != nil {
				ss[j].counts[pick.values[j]]--
			}
		}
	}
	return out
}
