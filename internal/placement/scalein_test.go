package placement

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

func TestScaleIn(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	cands := func() map[string]*Candidate {
		m := map[string]*Candidate{}
		for _, c := range []Candidate{
			inst("a", 1000, 100, "store", "1"),
			inst("b", 200, 500, "store", "1"),
			inst("c", 300, 300, "store", "2"),
			draining(inst("d", 9999, 9999, "store", "2")),
		} {
			m[c.ID] = &c
		}
		return m
	}
	// a runs 3 tasks, b 1, c 2; no two were created at the same time.
	tasks := []RunningTask{
		{Name: "t-a1", InstanceID: "a", Created: at(10)},
		{Name: "t-a2", InstanceID: "a", Created: at(20)},
		{Name: "t-a3", InstanceID: "a", Created: at(30)},
		{Name: "t-b1", InstanceID: "b", Created: at(11)},
		{Name: "t-c1", InstanceID: "c", Created: at(12)},
		{Name: "t-c2", InstanceID: "c", Created: at(22)},
	}
	tests := []struct {
		name       string
		tasks      []RunningTask
		strategies []ecsv1alpha1.PlacementStrategy
		n          int
		want       []string
	}{{
		name: "no strategies: newest first",
		n:    4,
		want: []string{"t-a3", "t-c2", "t-a2", "t-c1"},
	}, {
		name:       "random: newest first",
		strategies: []ecsv1alpha1.PlacementStrategy{random},
		n:          2,
		want:       []string{"t-a3", "t-c2"},
	}, {
		name:       "binpack memory: the instance with the most memory left first",
		strategies: []ecsv1alpha1.PlacementStrategy{binpack("memory")},
		n:          6,
		want:       []string{"t-b1", "t-c2", "t-c1", "t-a3", "t-a2", "t-a1"},
	}, {
		name:       "binpack cpu: the instance with the most cpu left first",
		strategies: []ecsv1alpha1.PlacementStrategy{binpack("cpu")},
		n:          4,
		want:       []string{"t-a3", "t-a2", "t-a1", "t-c2"},
	}, {
		name:       "spread instanceId: from the instance with the most tasks, keeping the spread even",
		strategies: []ecsv1alpha1.PlacementStrategy{spread("instanceId")},
		n:          5,
		// a3 b1 c2 -> a2 b1 c2 -> (a, c tie: newest) a2 b1 c1 -> a1 b1 c1 -> (all tie: newest) a1 b1 -> a1
		want: []string{"t-a3", "t-c2", "t-a2", "t-c1", "t-b1"},
	}, {
		name:       "spread attribute:store: from the store with the most tasks",
		strategies: []ecsv1alpha1.PlacementStrategy{spread("attribute:store")},
		n:          3,
		// store 1 has 4, store 2 has 2 -> 3, 2 -> 2, 2 -> tie: newest
		want: []string{"t-a3", "t-a2", "t-c2"},
	}, {
		name:       "spread attribute:store then spread instanceId",
		strategies: []ecsv1alpha1.PlacementStrategy{spread("attribute:store"), spread("instanceId")},
		n:          3,
		want:       []string{"t-a3", "t-a2", "t-c2"},
	}, {
		name: "tasks that are not placed, on DRAINING or unknown instances go first",
		tasks: append([]RunningTask{
			{Name: "t-none", Created: at(1)},
			{Name: "t-d1", InstanceID: "d", Created: at(2)},
			{Name: "t-gone", InstanceID: "deregistered", Created: at(3)},
		}, tasks...),
		strategies: []ecsv1alpha1.PlacementStrategy{binpack("memory")},
		n:          4,
		want:       []string{"t-d1", "t-gone", "t-none", "t-b1"},
	}, {
		name: "n larger than the tasks stops them all",
		n:    10,
		want: []string{"t-a3", "t-c2", "t-a2", "t-c1", "t-b1", "t-a1"},
	}, {
		name: "n 0 stops nothing",
		n:    0,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.tasks
			if in == nil {
				in = tasks
			}
			assert.Equal(t, tt.want, ScaleIn(in, cands(), tt.strategies, tt.n))
		})
	}
}
