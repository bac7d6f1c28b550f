package placement

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// BenchmarkPlace places 10,000 tasks one by one on 1,000 instances spread over 20 stores, with a memberOf
// constraint and spread then binpack strategies. One op is the whole batch; ns/task is one Place and Assign.
func BenchmarkPlace(b *testing.B) {
	const instances, tasks = 1000, 10000
	constraints, err := CompileConstraints([]ecsv1alpha1.PlacementConstraint{
		{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:ecs.os-type == linux"},
	})
	require.NoError(b, err)
	req := Request{
		CPU: 128, Memory: 256, Group: "service:web", Constraints: constraints,
		Strategies: []ecsv1alpha1.PlacementStrategy{spread("attribute:store"), binpack("memory")},
	}
	fresh := func() []Candidate {
		cands := make([]Candidate, instances)
		for i := range cands {
			cands[i] = inst(fmt.Sprintf("store-%04d", i), 16384, 65536, "ecs.os-type", "linux", "store", fmt.Sprint(i%20))
		}
		return cands
	}
	for b.Loop() {
		b.StopTimer()
		cands := fresh()
		rnd := rand.New(rand.NewSource(12))
		b.StartTimer()
		for range tasks {
			id, err := Place(req, cands, rnd)
			if err != nil {
				b.Fatal(err)
			}
			// Find the instance as the controller would, by a map it keeps; a scan here would dominate.
			var n int
			fmt.Sscanf(id, "store-%d", &n)
			Assign(&cands[n], req)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tasks), "ns/task")
}
