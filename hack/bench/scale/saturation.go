package main

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/hack/bench/internal/harness"
	"github.com/drover-dev/drover/hack/bench/internal/procinfo"
	"github.com/drover-dev/drover/test/scale/hollow"
)

// apiTimes records the hollow instances' requests (but watches) as they time them, by verb and
// resource.
type apiTimes struct {
	mu  sync.Mutex
	per map[string][]apiCall
}

type apiCall struct {
	at   time.Time
	took time.Duration
	ok   bool
}

func newAPITimes() *apiTimes { return &apiTimes{per: map[string][]apiCall{}} }

func (a *apiTimes) record(verb, resource string, took time.Duration, code int) {
	now := time.Now()
	a.mu.Lock()
	k := verb + " " + resource
	a.per[k] = append(a.per[k], apiCall{at: now.Add(-took), took: took, ok: code > 0 && code < 400})
	a.mu.Unlock()
}

// verbTimes are the latencies of one kind of request in a window.
type verbTimes struct {
	kind   string
	lats   []time.Duration
	failed int
}

// window returns the requests sent within [t0, t1), by kind.
func (a *apiTimes) window(t0, t1 time.Time) []verbTimes {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []verbTimes
	for k, calls := range a.per {
		v := verbTimes{kind: k + " (hollow instances)"}
		for _, c := range calls {
			if c.at.Before(t0) || !c.at.Before(t1) {
				continue
			}
			if !c.ok {
				v.failed++
			}
			v.lats = append(v.lats, c.took)
		}
		if len(v.lats) > 0 {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].kind < out[j].kind })
	return out
}

type saturationResult struct {
	services [3]int // of 250, 30 and 5 tasks (and one smaller for what is left, each)
	tasks    int
	// created is from the first create to the last; running from the first create until every
	// desired task was RUNNING (the instances' RUNNING reports, confirmed by a list).
	created, running time.Duration
	// reached is, when not every task was RUNNING within --timeout, how many were.
	reached  int
	verified serviceHealth
	lists    int
	calls    []verbTimes
	cpu      [2]float64
	rss      procinfo.RSS
}

// saturation creates services of 250, 30 and 5 tasks, holding a quarter, a quarter and half of
// f.saturationTasks per instance, and times until every desired task runs.
func saturation(ctx context.Context, f flags, d *harness.Droverd, c client.WithWatch, fleet *hollow.Fleet, api *apiTimes) (*saturationResult, error) {
	res := &saturationResult{tasks: f.saturationTasks * f.instances}
	var counts []int
	for i, part := range []struct{ size, share int }{{250, res.tasks / 4}, {30, res.tasks / 4}, {5, res.tasks - 2*(res.tasks/4)}} {
		cs := splitCounts(part.share, part.size)
		res.services[i] = len(cs)
		counts = append(counts, cs...) // the largest first: they are created first
	}
	running0 := fleet.Stats().Running
	logf("saturation: creating %d services (%d of 250, %d of 30, %d of 5 tasks) with %d tasks in all",
		len(counts), res.services[0], res.services[1], res.services[2], res.tasks)
	cpu := harness.StartCPU(d.PID())
	t0 := time.Now()
	set, err := createServices(ctx, c, "sat", counts, nil)
	if err != nil {
		return nil, err
	}
	res.created = time.Since(t0)
	logf("saturation: %d services created in %s", len(counts), ms(res.created))
	deadline := t0.Add(f.timeout)
	lastLog := time.Now()
	for {
		n := int(fleet.Stats().Running - running0)
		if n >= res.tasks {
			// Every task reported RUNNING once; a list says whether they still are, and no more.
			at := time.Now()
			snap, err := listTasks(ctx, c)
			if err != nil {
				return nil, err
			}
			res.lists++
			if res.verified = set.health(snap, nil); res.verified.whole() {
				res.running = at.Sub(t0)
				break
			}
			logf("saturation: %d RUNNING reports, but %d services short and %d with more", n, res.verified.short, res.verified.extra)
			time.Sleep(5 * time.Second)
		} else if time.Since(lastLog) >= 5*time.Second {
			logf("saturation: %d of %d tasks reported RUNNING", n, res.tasks)
			lastLog = time.Now()
		}
		if time.Now().After(deadline) {
			// Report how far it got: the request latencies are the point as much as the total.
			res.reached = n
			logf("saturation: only %d of %d tasks reported RUNNING after %s", n, res.tasks, f.timeout)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t1 := t0.Add(res.running)
	if res.reached > 0 {
		t1 = time.Now()
	}
	res.cpu = cpu.Cores()
	if res.rss, err = procinfo.ReadRSS(d.PID()); err != nil {
		return nil, err
	}
	res.calls = append(api.window(t0, t1), verbTimes{kind: "create services (this benchmark, 16 at a time)", lats: set.createLat})
	if res.reached == 0 {
		logf("saturation: all %d tasks RUNNING %s after the first create", res.tasks, ms(res.running))
	}
	return res, nil
}

// listTasks lists the namespace's Tasks 500 at a time.
func listTasks(ctx context.Context, c client.Client) (map[string]taskInfo, error) {
	out := map[string]taskInfo{}
	cont := ""
	for {
		var list ecsv1alpha1.TaskList
		if err := c.List(ctx, &list, client.InNamespace(namespace), client.Limit(500), client.Continue(cont)); err != nil {
			return nil, err
		}
		for i := range list.Items {
			out[list.Items[i].Name] = infoOf(&list.Items[i])
		}
		if cont = list.Continue; cont == "" {
			return out, nil
		}
	}
}

func (r *saturationResult) rows(f flags, w func(string, ...any)) {
	w("| saturation: %d tasks (%d per instance) in services of 250 / 30 / 5 tasks | %d / %d / %d services (%d in all) |",
		r.tasks, f.saturationTasks, r.services[0], r.services[1], r.services[2], r.services[0]+r.services[1]+r.services[2])
	w("| saturation: services created (16 creates at a time) | in %s |", ms(r.created))
	if r.reached > 0 {
		w("| saturation: **first create to every desired task RUNNING** | **not within --timeout %s: %d of %d reported RUNNING** |", f.timeout, r.reached, r.tasks)
	} else {
		w("| saturation: **first create to every desired task RUNNING** | **%s** (%.0f tasks/s; checked by %d list(s): %d RUNNING, %d services short, %d with more) |",
			ms(r.running), float64(r.tasks)/r.running.Seconds(), r.lists, r.verified.running, r.verified.short, r.verified.extra)
	}
	w("| saturation: droverd CPU / benchmark CPU | %.2f / %.2f cores |", r.cpu[0], r.cpu[1])
	w("| saturation: droverd RSS at the end | %s |", r.rss)
}

// apiRows is a table of the requests' latencies in the saturation window, by verb.
func (r *saturationResult) apiRows(w func(string, ...any)) {
	w("| request (verb resource, who sent it) | count | failed | p50 | p99 | max |")
	w("| --- | --- | --- | --- | --- | --- |")
	for _, v := range r.calls {
		w("| %s | %d | %d | %s | **%s** | %s |", v.kind, len(v.lats), v.failed, ms(pct(v.lats, 0.5)), ms(pct(v.lats, 0.99)), ms(slices.Max(v.lats)))
	}
}
