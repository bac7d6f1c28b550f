// Command controlplane benchmarks droverd as an API server: time from process start to /readyz ok on
// a fresh and on an existing data dir, idle RSS, and creates/s and list latency for many Tasks
// through the API. It starts droverd as a child process (--controllers=false) on free loopback ports
// with a temporary data dir and prints a markdown report.
//
//	go run ./hack/bench/controlplane --droverd ./bin/droverd [--tasks 10000] [--workers 16] [--out FILE]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/drover-dev/drover/hack/bench/internal/harness"
	"github.com/drover-dev/drover/hack/bench/internal/procinfo"
)

const (
	group     = "ecs.drover.dev"
	version   = "v1alpha1"
	resource  = "tasks"
	namespace = metav1.NamespaceDefault
)

var taskGVR = schema.GroupVersionResource{Group: group, Version: version, Resource: resource}

type flags struct {
	droverd      string
	tasks        int
	workers      int
	starts       int
	listRuns     int
	pageSize     int
	idle         time.Duration
	out          string
	profileDir   string
	profileSecs  int
	keepDataDir  bool
	readyTimeout time.Duration
}

func main() {
	var f flags
	flag.StringVar(&f.droverd, "droverd", "./bin/droverd", "droverd binary to benchmark (make build puts it in ./bin)")
	flag.IntVar(&f.tasks, "tasks", 10000, "Tasks to create and list")
	flag.IntVar(&f.workers, "workers", 16, "concurrent clients creating Tasks")
	flag.IntVar(&f.starts, "starts", 3, "start-up measurements per kind (fresh and existing data dir)")
	flag.IntVar(&f.listRuns, "list-runs", 10, "full lists of all Tasks to time")
	flag.IntVar(&f.pageSize, "page-size", 500, "limit of each page in the paginated list")
	flag.DurationVar(&f.idle, "idle", 5*time.Second, "idle time after /readyz before sampling RSS")
	flag.StringVar(&f.out, "out", "", "also write the report to this file")
	flag.StringVar(&f.profileDir, "profile-dir", "", "run droverd with --profiling and save CPU profiles of the create and list phases and a heap profile here")
	flag.IntVar(&f.profileSecs, "profile-seconds", 10, "length of each CPU profile")
	flag.BoolVar(&f.keepDataDir, "keep-data-dir", false, "keep the temporary data dirs (and droverd's logs) for inspection")
	flag.DurationVar(&f.readyTimeout, "ready-timeout", 3*time.Minute, "give up when droverd is not ready within this")
	flag.Parse()
	if f.tasks < 1 || f.workers < 1 || f.starts < 1 || f.listRuns < 1 || f.pageSize < 1 {
		fatalf("--tasks, --workers, --starts, --list-runs and --page-size must be positive")
	}
	if err := run(f); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "controlplane: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// report collects the figures.
type report struct {
	machine       []string
	loadBefore    string
	loadAfter     string
	command       string
	fresh         []startup
	existing      []startup
	loaded        startup
	idleRSS       procinfo.RSS
	loadRSS       procinfo.RSS
	stopFresh     []time.Duration
	create        createResult
	createCPU     [2]float64 // cores used by droverd and by this process while creating
	listCPU       [2]float64 // the same while listing
	fullList      []time.Duration
	fullListBytes int
	pagedTotal    time.Duration
	pagedPages    int
	etcdBytes     int64
	profiles      []string
}

func run(f flags) error {
	bin, err := filepath.Abs(f.droverd)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("droverd binary: %w (run make build first)", err)
	}
	if f.profileDir != "" {
		if err := os.MkdirAll(f.profileDir, 0o755); err != nil {
			return err
		}
	}
	r := &report{machine: procinfo.Machine(), loadBefore: procinfo.LoadAvg(), command: commandLine()}
	logf("machine: %s", strings.Join(r.machine, "; "))

	ctx := context.Background()
	var d *harness.Droverd
	// Start-up: each round starts on a fresh data dir, stops, and starts again on the same dir.
	for i := range f.starts {
		dir, err := os.MkdirTemp("", "drover-bench-")
		if err != nil {
			return err
		}
		if !f.keepDataDir {
			defer os.RemoveAll(dir)
			defer os.Remove(dir + ".log")
		}
		d, err = harness.StartDroverdWith(ctx, bin, dir, harness.Options{
			Profiling: f.profileDir != "", NoControllers: true, Timeout: f.readyTimeout, PollEvery: 20 * time.Millisecond,
		})
		if err != nil {
			return err
		}
		s := d.Startup
		r.fresh = append(r.fresh, s)
		logf("start %d/%d, fresh data dir: ready in %s", i+1, f.starts, ms(s.Ready))
		took, err := d.Shutdown(30 * time.Second)
		if err != nil {
			return err
		}
		r.stopFresh = append(r.stopFresh, took)
		if err = d.Start(ctx); err != nil {
			return err
		}
		s = d.Startup
		r.existing = append(r.existing, s)
		logf("start %d/%d, existing data dir: ready in %s", i+1, f.starts, ms(s.Ready))
		if i < f.starts-1 {
			if _, err := d.Shutdown(30 * time.Second); err != nil {
				return err
			}
		}
	}
	defer d.Kill()

	// The last droverd keeps running on its existing data dir.
	logf("idling %s", f.idle)
	time.Sleep(f.idle)
	if r.idleRSS, err = procinfo.ReadRSS(d.PID()); err != nil {
		return err
	}
	logf("idle RSS %s", r.idleRSS)

	cfg, err := harness.AdminConfig(d.DataDir, "drover-bench")
	if err != nil {
		return err
	}
	cfg.Timeout = 5 * time.Minute
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	raw := disc.RESTClient()

	prof := profiler{raw: raw, dir: f.profileDir, secs: f.profileSecs}
	prof.cpu(ctx, "create")
	logf("creating %d Tasks with %d workers", f.tasks, f.workers)
	cpu := harness.StartCPU(d.PID())
	r.create = createTasks(ctx, dyn, f.tasks, f.workers)
	r.createCPU = cpu.Cores()
	logf("created %d Tasks in %s (%.0f/s), %d errors", r.create.ok, ms(r.create.wall), r.create.rate(), r.create.errs)
	if r.create.errs > 0 {
		return fmt.Errorf("%d of %d creates failed, first: %v", r.create.errs, f.tasks, r.create.firstErr)
	}
	prof.wait()

	listPath := fmt.Sprintf("/apis/%s/%s/namespaces/%s/%s", group, version, namespace, resource)
	// One untimed list checks the count and warms the connection.
	body, err := raw.Get().AbsPath(listPath).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("listing Tasks: %w", err)
	}
	if n, _, err := countItems(body); err != nil || n != f.tasks {
		return fmt.Errorf("list returned %d Tasks, want %d (%v)", n, f.tasks, err)
	}
	prof.cpu(ctx, "list")
	logf("timing %d full lists", f.listRuns)
	cpu = harness.StartCPU(d.PID())
	for range f.listRuns {
		t0 := time.Now()
		body, err := raw.Get().AbsPath(listPath).DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("listing Tasks: %w", err)
		}
		r.fullList = append(r.fullList, time.Since(t0))
		r.fullListBytes = len(body)
	}
	logf("timing a paginated list (limit %d)", f.pageSize)
	cont, seen := "", 0
	for {
		t0 := time.Now()
		body, err := raw.Get().AbsPath(listPath).Param("limit", strconv.Itoa(f.pageSize)).Param("continue", cont).DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("listing a page of Tasks: %w", err)
		}
		r.pagedTotal += time.Since(t0)
		r.pagedPages++
		n, next, err := countItems(body)
		if err != nil {
			return err
		}
		seen += n
		if cont = next; cont == "" {
			break
		}
	}
	r.listCPU = cpu.Cores()
	if seen != f.tasks {
		return fmt.Errorf("paginated list returned %d Tasks, want %d", seen, f.tasks)
	}
	prof.wait()
	prof.heap(ctx)

	if r.loadRSS, err = procinfo.ReadRSS(d.PID()); err != nil {
		return err
	}
	logf("RSS after load %s", r.loadRSS)

	// Restart on the data dir that now holds the Tasks.
	if _, err := d.Shutdown(60 * time.Second); err != nil {
		return err
	}
	r.etcdBytes = dirSize(filepath.Join(d.DataDir, "etcd"))
	if err = d.Start(ctx); err != nil {
		return err
	}
	r.loaded = d.Startup
	logf("start with %d Tasks: ready in %s", f.tasks, ms(r.loaded.Ready))
	if _, err := d.Shutdown(60 * time.Second); err != nil {
		return err
	}
	r.loadAfter = procinfo.LoadAvg()
	r.profiles = prof.saved

	out := r.markdown(f)
	fmt.Print(out)
	if f.out != "" {
		if err := os.WriteFile(f.out, []byte(out), 0o644); err != nil {
			return err
		}
	}
	return nil
}

type createResult struct {
	ok, errs  int
	firstErr  error
	wall      time.Duration
	latencies []time.Duration
}

func (c createResult) rate() float64 { return float64(c.ok) / c.wall.Seconds() }

// createTasks creates n Tasks with workers concurrent clients and records each request's latency.
func createTasks(ctx context.Context, dyn dynamic.Interface, n, workers int) createResult {
	tasks := dyn.Resource(taskGVR).Namespace(namespace)
	var next atomic.Int64
	var mu sync.Mutex
	res := createResult{latencies: make([]time.Duration, 0, n)}
	var wg sync.WaitGroup
	t0 := time.Now()
	for range workers {
		wg.Go(func() {
			lat := make([]time.Duration, 0, n/workers+1)
			var errs int
			var firstErr error
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					break
				}
				obj := task(i)
				s := time.Now()
				_, err := tasks.Create(ctx, obj, metav1.CreateOptions{})
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, time.Since(s))
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			res.errs += errs
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.wall = time.Since(t0)
	res.ok = len(res.latencies)
	return res
}

// task is a standalone Task as a user creates it (ECS RunTask), like config/samples/ecs_v1alpha1_task.yaml.
func task(i int) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": group + "/" + version,
		"kind":       "Task",
		"metadata":   map[string]any{"name": fmt.Sprintf("bench-%05d", i), "labels": map[string]any{"app": "bench"}},
		"spec": map[string]any{
			"cluster":        "bench",
			"taskDefinition": "web:1",
			"startedBy":      "bench",
		},
	}}
}

// countItems returns the number of items of a list response and its continue token.
func countItems(body []byte) (int, string, error) {
	var l struct {
		Metadata struct {
			Continue string `json:"continue"`
		} `json:"metadata"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(body, &l); err != nil {
		return 0, "", fmt.Errorf("decoding list: %w", err)
	}
	return len(l.Items), l.Metadata.Continue, nil
}

// profiler fetches pprof profiles from droverd (started with --profiling) when dir is set.
type profiler struct {
	raw   rest.Interface
	dir   string
	secs  int
	wg    sync.WaitGroup
	saved []string
	mu    sync.Mutex
}

func (p *profiler) cpu(ctx context.Context, name string) {
	if p.dir == "" {
		return
	}
	p.wg.Go(func() {
		p.fetch(ctx, name+".cpu.pprof", "/debug/pprof/profile", strconv.Itoa(p.secs))
	})
}

func (p *profiler) heap(ctx context.Context) {
	if p.dir != "" {
		p.fetch(ctx, "heap.pprof", "/debug/pprof/heap", "")
	}
}

func (p *profiler) wait() { p.wg.Wait() }

func (p *profiler) fetch(ctx context.Context, file, path, secs string) {
	req := p.raw.Get().AbsPath(path)
	if secs != "" {
		req = req.Param("seconds", secs)
	}
	body, err := req.DoRaw(ctx)
	if err != nil {
		logf("fetching %s: %v", path, err)
		return
	}
	out := filepath.Join(p.dir, file)
	if err := os.WriteFile(out, body, 0o644); err != nil {
		logf("writing %s: %v", out, err)
		return
	}
	p.mu.Lock()
	p.saved = append(p.saved, out)
	p.mu.Unlock()
}

func commandLine() string {
	args := slices.Clone(os.Args[1:])
	return "go run ./hack/bench/controlplane " + strings.Join(args, " ")
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// ms prints a duration; pct is the q-quantile (nearest rank) of durations.
var ms, pct = harness.Dur, harness.Quantile[time.Duration]

// startup is one measured start of droverd.
type startup = harness.Startup

func readies(ss []startup) []time.Duration {
	var ds []time.Duration
	for _, s := range ss {
		ds = append(ds, s.Ready)
	}
	return ds
}

// median returns the start-up whose time to ready is the median of ss.
func median(ss []startup) startup {
	s := slices.Clone(ss)
	slices.SortFunc(s, func(a, b startup) int { return int(a.Ready - b.Ready) })
	return s[(len(s)-1)/2]
}

func spread(ds []time.Duration) string {
	if len(ds) == 1 {
		return ms(ds[0])
	}
	return fmt.Sprintf("%s (min %s, max %s, n=%d)", ms(pct(ds, 0.5)), ms(slices.Min(ds)), ms(slices.Max(ds)), len(ds))
}

func (r *report) markdown(f flags) string {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("## Control plane (droverd --controllers=false)")
	w("")
	w("Machine: %s. Load average %s before, %s after.", strings.Join(r.machine, ", "), r.loadBefore, r.loadAfter)
	w("")
	w("Command: `%s`", r.command)
	w("")
	w("| figure | value |")
	w("| --- | --- |")
	w("| start to /readyz ok, fresh data dir | %s |", spread(readies(r.fresh)))
	w("| start to /readyz ok, existing data dir | %s |", spread(readies(r.existing)))
	w("| start to /readyz ok, existing data dir with %d Tasks | %s |", f.tasks, ms(r.loaded.Ready))
	w("| SIGTERM to exit (fresh data dir, idle) | %s |", spread(r.stopFresh))
	w("| idle RSS, %s after ready | %s |", f.idle, r.idleRSS)
	w("| create %d Tasks, %d workers | %.0f creates/s (%s) |", r.create.ok, f.workers, r.create.rate(), ms(r.create.wall))
	w("| create latency p50 / p90 / p99 / max | %s / %s / %s / %s |", ms(pct(r.create.latencies, 0.5)), ms(pct(r.create.latencies, 0.9)),
		ms(pct(r.create.latencies, 0.99)), ms(slices.Max(r.create.latencies)))
	w("| CPU while creating, droverd / benchmark client | %.2f / %.2f cores |", r.createCPU[0], r.createCPU[1])
	w("| full list of %d Tasks, p50 / p99 (n=%d) | %s / %s (%.1f MiB JSON) |", f.tasks, len(r.fullList), ms(pct(r.fullList, 0.5)),
		ms(pct(r.fullList, 0.99)), float64(r.fullListBytes)/(1<<20))
	w("| paginated list of %d Tasks, limit %d | %s total (%d pages) |", f.tasks, f.pageSize, ms(r.pagedTotal), r.pagedPages)
	w("| CPU while listing, droverd / benchmark client | %.2f / %.2f cores |", r.listCPU[0], r.listCPU[1])
	w("| RSS after creates and lists | %s |", r.loadRSS)
	w("| etcd data dir with %d Tasks | %.1f MiB |", f.tasks, float64(r.etcdBytes)/(1<<20))
	w("")
	w("Where start-up time goes (median run): time from exec until the API port first answered and until each /readyz check")
	w("that was still failing then first passed.")
	w("")
	fresh, existing := median(r.fresh), median(r.existing)
	w("| milestone | fresh | existing | existing, %d Tasks |", f.tasks)
	w("| --- | --- | --- | --- |")
	w("| API port answers | %s | %s | %s |", ms(fresh.Listening), ms(existing.Listening), ms(r.loaded.Listening))
	names := map[string]bool{}
	for _, s := range []startup{fresh, existing, r.loaded} {
		for n := range s.Checks {
			names[n] = true
		}
	}
	order := slices.Collect(func(yield func(string) bool) {
		for n := range names {
			if !yield(n) {
				return
			}
		}
	})
	slices.SortFunc(order, func(a, b string) int {
		if c := int(fresh.Checks[a] - fresh.Checks[b]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	cell := func(s startup, n string) string {
		if d, ok := s.Checks[n]; ok {
			return ms(d)
		}
		return "-"
	}
	for _, n := range order {
		// Checks that pass on the first answer say nothing about where the time goes.
		if fresh.Checks[n] <= fresh.Listening && existing.Checks[n] <= existing.Listening && r.loaded.Checks[n] <= r.loaded.Listening {
			continue
		}
		w("| %s | %s | %s | %s |", n, cell(fresh, n), cell(existing, n), cell(r.loaded, n))
	}
	w("| /readyz ok | %s | %s | %s |", ms(fresh.Ready), ms(existing.Ready), ms(r.loaded.Ready))
	if len(r.profiles) > 0 {
		w("")
		w("Profiles: %s", strings.Join(r.profiles, ", "))
	}
	return b.String()
}
