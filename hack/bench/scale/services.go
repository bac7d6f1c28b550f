package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/hack/bench/internal/harness"
)

// serviceSet is services the benchmark created: their names and desired counts.
type serviceSet struct {
	desired map[string]int
	total   int
	// createLat are the latencies of the creates.
	createLat []time.Duration
}

// createServices creates REPLICA services of family named <prefix>-<i> with the given desired
// counts, 16 at a time, each with the disconnect policy given (nil for the default, Keep).
func createServices(ctx context.Context, c client.Client, prefix string, counts []int, policy *ecsv1alpha1.DisconnectPolicy) (*serviceSet, error) {
	set := &serviceSet{desired: make(map[string]int, len(counts))}
	var mu sync.Mutex
	for i, n := range counts {
		set.desired[fmt.Sprintf("%s-%04d", prefix, i)] = n
		set.total += n
	}
	err := harness.Parallel(len(counts), 16, func(i int) error {
		svc := &ecsv1alpha1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%04d", prefix, i), Namespace: namespace},
			Spec: ecsv1alpha1.ServiceSpec{Cluster: cluster, TaskDefinition: family, DesiredCount: ptr.To(int32(counts[i])),
				DisconnectPolicy: policy.DeepCopy()},
		}
		t0 := time.Now()
		err := c.Create(ctx, svc)
		lat := time.Since(t0)
		if err != nil {
			return fmt.Errorf("creating service %s: %w", svc.Name, err)
		}
		mu.Lock()
		set.createLat = append(set.createLat, lat)
		mu.Unlock()
		return nil
	})
	return set, err
}

// serviceHealth is how a set of services stands in a snapshot of the Tasks.
type serviceHealth struct {
	// running counts the services' Tasks RUNNING and meant to stay so, on instances not in dead;
	// short counts the services with fewer of those than desired, extra those with more.
	running, short, extra int
	// active counts the services' Tasks that are not STOPPED and not told to stop.
	active int
}

func (s *serviceSet) health(snap map[string]taskInfo, dead map[string]bool) serviceHealth {
	per := map[string]int{}
	var h serviceHealth
	for _, t := range snap {
		if _, ours := s.desired[t.service]; !ours {
			continue
		}
		if t.last != ecsv1alpha1.TaskStateStopped && !t.desiredStopped {
			h.active++
		}
		if t.running() && !dead[t.instance] {
			per[t.service]++
			h.running++
		}
	}
	for name, want := range s.desired {
		switch got := per[name]; {
		case got < want:
			h.short++
		case got > want:
			h.extra++
		}
	}
	return h
}

// whole is true when every service runs exactly its desired count of Tasks.
func (h serviceHealth) whole() bool { return h.short == 0 && h.extra == 0 }

// waitServices waits until every service of the set runs its desired count on instances not in
// dead, logging progress every 5 s, and returns when that was first seen.
func waitServices(ctx context.Context, tk *tasks, s *serviceSet, dead map[string]bool, timeout time.Duration, what string) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	lastLog := time.Now()
	for {
		h := s.health(tk.snapshot(), dead)
		if h.whole() {
			return time.Now(), nil
		}
		if time.Since(lastLog) >= 5*time.Second {
			logf("%s: %d of %d tasks RUNNING; %d services short, %d with more", what, h.running, s.total, h.short, h.extra)
			lastLog = time.Now()
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%s: only %d of %d tasks RUNNING after %s (%d services short, %d with more)",
				what, h.running, s.total, timeout, h.short, h.extra)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// splitCounts divides total tasks into services of size tasks each, and one smaller service for
// what is left.
func splitCounts(total, size int) []int {
	var out []int
	for ; total >= size; total -= size {
		out = append(out, size)
	}
	if total > 0 {
		out = append(out, total)
	}
	return out
}
