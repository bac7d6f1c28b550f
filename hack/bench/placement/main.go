// Command placement benchmarks task placement through droverd: it starts droverd with its
// controllers as a child process, registers --instances ContainerInstances that are connected and
// have room for every task, creates --tasks standalone Tasks, and watches the Tasks until every one
// has spec.containerInstance set. It prints a markdown report: total time, placements per second
// (average and the p50/p90 of each second's count), per-task latency, and droverd's CPU use.
//
// By default a Task names only its task definition (spec.taskDefinition: web), as a user's RunTask
// does, and droverd resolves it as it is created; --resolved creates Tasks with the revision's
// containers already copied in.
//
// By default the Tasks are created while the controllers run, so creating and placing share
// droverd's CPU and placement can go no faster than the Tasks are created. --backlog times the
// placer alone: droverd is restarted without its controllers, the Tasks are created, and droverd
// is restarted with its controllers, which find every Task waiting; the clock starts at that
// restart.
//
//	go build -o bin/ ./cmd/droverd
//	go run ./hack/bench/placement [--droverd ./bin/droverd] [--instances 5000] [--tasks 10000] [--profile-dir DIR]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/hack/bench/internal/harness"
	"github.com/drover-dev/drover/hack/bench/internal/procinfo"
)

const (
	namespace = metav1.NamespaceDefault
	cluster   = "bench"
	family    = "web"
)

type flags struct {
	droverd      string
	instances    int
	tasks        int
	workers      int
	resolved     bool
	backlog      bool
	strategy     string
	timeout      time.Duration
	readyTimeout time.Duration
	profileDir   string
	profileSecs  int
	keepDataDir  bool
	out          string
}

func main() {
	var f flags
	flag.StringVar(&f.droverd, "droverd", "./bin/droverd", "droverd binary (go build -o bin/ ./cmd/droverd)")
	flag.IntVar(&f.instances, "instances", 5000, "ContainerInstances to register")
	flag.IntVar(&f.tasks, "tasks", 10000, "standalone Tasks to create and wait for placement")
	flag.IntVar(&f.workers, "workers", 16, "concurrent clients creating instances and Tasks")
	flag.BoolVar(&f.resolved, "resolved", false, "create Tasks with the revision's containers already in spec")
	flag.BoolVar(&f.backlog, "backlog", false, "create the Tasks while the controllers are off, then time placing them from a restart with the controllers on")
	flag.StringVar(&f.strategy, "strategy", "", "placement strategies of every Task, comma separated type[:field] (binpack:memory,spread:instanceId); empty is random, the RunTask default")
	flag.DurationVar(&f.timeout, "timeout", 20*time.Minute, "give up when the Tasks are not all placed within this after the first is created")
	flag.DurationVar(&f.readyTimeout, "ready-timeout", 3*time.Minute, "give up when droverd is not ready within this")
	flag.StringVar(&f.profileDir, "profile-dir", "", "run droverd with --profiling and save a CPU profile of the placement phase here")
	flag.IntVar(&f.profileSecs, "profile-seconds", 30, "length of the CPU profile")
	flag.BoolVar(&f.keepDataDir, "keep-data-dir", false, "keep droverd's temporary data dir and log")
	flag.StringVar(&f.out, "out", "", "also write the report to this file")
	flag.Parse()
	if f.instances < 1 || f.tasks < 1 || f.workers < 1 {
		fatalf("--instances, --tasks and --workers must be positive")
	}
	strategies, err := parseStrategies(f.strategy)
	if err != nil {
		fatalf("--strategy: %v", err)
	}
	if err := run(f, strategies); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "placement: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func parseStrategies(s string) ([]ecsv1alpha1.PlacementStrategy, error) {
	var out []ecsv1alpha1.PlacementStrategy
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		typ, field, _ := strings.Cut(part, ":")
		switch ecsv1alpha1.PlacementStrategyType(typ) {
		case ecsv1alpha1.PlacementStrategyBinpack, ecsv1alpha1.PlacementStrategySpread, ecsv1alpha1.PlacementStrategyRandom:
		default:
			return nil, fmt.Errorf("unknown strategy type %q; use binpack, spread or random", typ)
		}
		out = append(out, ecsv1alpha1.PlacementStrategy{Type: ecsv1alpha1.PlacementStrategyType(typ), Field: field})
	}
	return out, nil
}

// result holds what one run measured.
type result struct {
	machine       string
	loadBefore    string
	loadAfter     string
	instanceSetup time.Duration
	createWall    time.Duration // first create sent to last create answered
	firstPlaced   time.Duration // from the first create
	total         time.Duration // first create to last Task placed
	lastResolved  time.Duration // first create to last Task resolved (0 with --resolved)
	perSecond     []int         // Tasks placed in each second from the first create
	latency       []time.Duration
	resolveLat    []time.Duration
	cores         float64 // droverd's average CPU use from the first create to the last placement
	rss           string
	perInstance   [2]int // fewest and most Tasks on an instance
	overcommitted int
	profile       string
	controllers   []harness.ControllerLoad
	writeLatency  []time.Duration // sequential PATCHes of one Task after the run
	restart       time.Duration   // --backlog: from exec of droverd with its controllers to ready
}

// restart stops droverd and starts it again on the same data dir, with or without its controllers.
func restart(ctx context.Context, d *harness.Droverd, controllers bool) error {
	d.Stop()
	d.SetControllers(controllers)
	return d.Start(ctx)
}

func run(f flags, strategies []ecsv1alpha1.PlacementStrategy) error {
	d, cfg, c, cleanup, err := harness.Launch(f.droverd, "drover-bench-placement", f.keepDataDir, f.profileDir, f.readyTimeout, logf)
	defer cleanup()
	if err != nil {
		return err
	}
	ctx := context.Background()
	r := &result{machine: harness.Machine(), loadBefore: procinfo.LoadAvg()}

	// The task definition's first revision appearing shows the controllers have started.
	td := &ecsv1alpha1.TaskDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: family, Namespace: namespace},
		Spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
			Name: "app", Image: "example.com/web:1", CPU: 16, Memory: ptr.To[int32](64),
		}}},
	}
	if err := c.Create(ctx, td); err != nil {
		return fmt.Errorf("creating TaskDefinition: %w", err)
	}
	if err := c.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cluster, Namespace: namespace}}); err != nil {
		return fmt.Errorf("creating Cluster: %w", err)
	}
	rev := &ecsv1alpha1.TaskDefinitionRevision{}
	if err := harness.Poll(ctx, 2*time.Minute, func() (bool, error) {
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: family + "-1"}, rev)
		return err == nil, client.IgnoreNotFound(err)
	}); err != nil {
		return fmt.Errorf("waiting for TaskDefinitionRevision %s-1 (are the controllers running?): %w", family, err)
	}
	logf("controllers running: revision %s exists", rev.Name)

	// Every task reserves 16 CPU units and 64 MiB; each instance has room for all of them. Each
	// heartbeat Lease is renewed until after the run, so no heartbeat traffic competes with placement.
	logf("registering %d ContainerInstances with %d workers", f.instances, f.workers)
	t0 := time.Now()
	if err := harness.RegisterInstances(ctx, c, harness.Instances{
		Namespace: namespace, Cluster: cluster, Count: f.instances, Workers: f.workers,
		CPU: int32(min(16*f.tasks, math.MaxInt32)), Memory: int32(min(64*f.tasks, math.MaxInt32)),
		AgentVersion: "0.1.0-bench", RenewTime: time.Now().Add(f.timeout + 10*time.Minute),
		Attributes: func(i int) []ecsv1alpha1.Attribute {
			return []ecsv1alpha1.Attribute{{Name: "store", Value: fmt.Sprintf("s%03d", i%100)}}
		},
	}); err != nil {
		return err
	}
	if err := harness.WaitConnected(ctx, c, namespace, f.instances); err != nil {
		return err
	}
	r.instanceSetup = time.Since(t0)
	logf("%d instances registered and connected in %s", f.instances, r.instanceSetup.Round(time.Millisecond))

	raw, err := harness.RawClient(cfg)
	if err != nil {
		return err
	}
	var (
		w        *watcher
		metrics0 harness.Metrics
		prof     harness.Profile
		cpu0     time.Duration
		start    time.Time
	)
	// measure starts the watch, the profile and the counters; the clock starts at t0.
	measure := func(t0 time.Time) error {
		if w, err = startWatch(ctx, c, f.tasks); err != nil {
			return err
		}
		if metrics0, err = harness.Scrape(ctx, raw); err != nil {
			return err
		}
		if f.profileDir != "" {
			prof.Start(ctx, raw, filepath.Join(f.profileDir, "placement.cpu.pprof"), f.profileSecs, logf)
		}
		cpu0, _ = procinfo.CPUTime(d.PID())
		start = t0
		w.setStart(start)
		if f.backlog {
			// Every Task was waiting when the clock started.
			for i := range f.tasks {
				w.created(i, t0)
			}
		}
		return nil
	}
	if f.backlog {
		logf("restarting droverd without its controllers")
		if err := restart(ctx, d, false); err != nil {
			return err
		}
	} else if err := measure(time.Now()); err != nil {
		return err
	}
	logf("creating %d Tasks (%s) with %d workers", f.tasks, map[bool]string{false: "spec.taskDefinition only", true: "pre-resolved"}[f.resolved], f.workers)
	t0 = time.Now()
	created, err := createTasks(ctx, c, f, rev, strategies, w)
	if err != nil {
		return err
	}
	r.createWall = created.Sub(t0)
	logf("created %d Tasks in %s (%.0f/s)", f.tasks, r.createWall.Round(time.Millisecond), float64(f.tasks)/r.createWall.Seconds())
	if f.backlog {
		logf("restarting droverd with its controllers")
		t0 := time.Now()
		if err := restart(ctx, d, true); err != nil {
			return err
		}
		r.restart = time.Since(t0)
		if err := measure(t0); err != nil {
			return err
		}
	}
	defer w.stop()

	if err := w.wait(start.Add(f.timeout)); err != nil {
		return err
	}
	cpu1, _ := procinfo.CPUTime(d.PID())
	metrics1, err := harness.Scrape(ctx, raw)
	if err != nil {
		return err
	}
	r.controllers = harness.ControllerLoads(metrics0, metrics1)
	r.total = w.lastPlaced.Sub(start)
	r.cores = (cpu1 - cpu0).Seconds() / time.Since(start).Seconds()
	r.rss = harness.ReadRSS(d.PID())
	r.firstPlaced, r.perSecond, r.latency, r.resolveLat, r.lastResolved = w.summary()
	logf("all %d Tasks placed %s after the first create", f.tasks, r.total.Round(time.Millisecond))
	r.profile = prof.Wait()
	r.loadAfter = procinfo.LoadAvg()

	if r.perInstance, r.overcommitted, err = checkPlacement(ctx, c, f.tasks); err != nil {
		return err
	}
	if r.writeLatency, err = probeWrites(ctx, c, 100); err != nil {
		return err
	}
	out := r.markdown(f)
	fmt.Print(out)
	if f.out != "" {
		return os.WriteFile(f.out, []byte(out), 0o644)
	}
	return nil
}

// createTasks creates the Tasks with f.workers concurrent clients, telling w when each was created,
// and returns when the last create was answered.
func createTasks(ctx context.Context, c client.Client, f flags, rev *ecsv1alpha1.TaskDefinitionRevision,
	strategies []ecsv1alpha1.PlacementStrategy, w *watcher) (time.Time, error) {
	err := harness.Parallel(f.tasks, f.workers, func(i int) error {
		task := &ecsv1alpha1.Task{
			ObjectMeta: metav1.ObjectMeta{Name: taskName(i), Namespace: namespace, Labels: map[string]string{"app": "bench"}},
			Spec: ecsv1alpha1.TaskSpec{Cluster: cluster, TaskDefinition: family, StartedBy: "bench",
				PlacementStrategy: strategies},
		}
		if f.resolved {
			task.Spec.TaskDefinition = ecsv1alpha1.TaskDefinitionRef(rev.Spec.Family, rev.Spec.Revision)
			task.Spec.TaskDefinitionRevision = rev.Name
			task.Spec.Containers = rev.Spec.TaskDefinition.ContainerDefinitions
			task.Spec.NetworkMode = rev.Spec.TaskDefinition.NetworkMode
			task.Spec.Group = "family:" + rev.Spec.Family
		}
		if err := c.Create(ctx, task); err != nil {
			return fmt.Errorf("creating Task %s: %w", task.Name, err)
		}
		if w != nil {
			w.created(i, time.Now())
		}
		return nil
	})
	return time.Now(), err
}

func taskName(i int) string { return fmt.Sprintf("bench-%05d", i) }

func taskIndex(name string) int {
	i, err := strconv.Atoi(strings.TrimPrefix(name, "bench-"))
	if err != nil || !strings.HasPrefix(name, "bench-") {
		return -1
	}
	return i
}

// watcher follows the Tasks and records when each was created, resolved and placed.
type watcher struct {
	n      int
	cancel context.CancelFunc
	done   chan error

	mu         sync.Mutex
	start      time.Time
	createdAt  []time.Time
	resolvedAt []time.Time
	placedAt   []time.Time
	placed     int
	resolved   int
	lastPlaced time.Time
	allPlaced  chan struct{}
}

func startWatch(ctx context.Context, c client.WithWatch, n int) (*watcher, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{n: n, cancel: cancel, done: make(chan error, 1), allPlaced: make(chan struct{}),
		createdAt: make([]time.Time, n), resolvedAt: make([]time.Time, n), placedAt: make([]time.Time, n)}
	list := &ecsv1alpha1.TaskList{}
	if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
		cancel()
		return nil, err
	}
	// Tasks placed before the watch began (droverd places as it starts) count as placed now.
	now := time.Now()
	for i := range list.Items {
		w.observe(&list.Items[i], now)
	}
	go func() {
		w.done <- harness.FollowTasks(ctx, c, list.ResourceVersion, w.observe, client.InNamespace(namespace))
	}()
	return w, nil
}

func (w *watcher) setStart(t time.Time) {
	w.mu.Lock()
	w.start = t
	w.mu.Unlock()
}

func (w *watcher) created(i int, at time.Time) {
	w.mu.Lock()
	w.createdAt[i] = at
	w.mu.Unlock()
}

func (w *watcher) observe(task *ecsv1alpha1.Task, at time.Time) {
	i := taskIndex(task.Name)
	if i < 0 || i >= w.n {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(task.Spec.Containers) > 0 && w.resolvedAt[i].IsZero() {
		w.resolvedAt[i] = at
		w.resolved++
	}
	if task.Spec.ContainerInstance != "" && w.placedAt[i].IsZero() {
		w.placedAt[i] = at
		w.lastPlaced = at
		if w.placed++; w.placed == w.n {
			close(w.allPlaced)
		}
	}
}

// wait returns when every Task is placed, logging progress every 5 seconds, or fails at deadline.
func (w *watcher) wait(deadline time.Time) error {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	prev := 0
	for {
		select {
		case <-w.allPlaced:
			return nil
		case err := <-w.done:
			if err == nil {
				err = errors.New("the watch ended")
			}
			return err
		case now := <-tick.C:
			w.mu.Lock()
			placed, resolved := w.placed, w.resolved
			w.mu.Unlock()
			logf("%d resolved, %d placed (%.0f/s over the last 5 s)", resolved, placed, float64(placed-prev)/5)
			prev = placed
			if now.After(deadline) {
				return fmt.Errorf("only %d of %d Tasks placed after %s", placed, w.n, now.Sub(w.start).Round(time.Second))
			}
		}
	}
}

func (w *watcher) stop() { w.cancel() }

// summary returns when the first Task was placed, the placements in each second from the start, each
// Task's time from create to placed and to resolved, and when the last was resolved.
func (w *watcher) summary() (first time.Duration, perSecond []int, latency, resolveLat []time.Duration, lastResolved time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	first = time.Duration(math.MaxInt64)
	for i, p := range w.placedAt {
		d := p.Sub(w.start)
		first = min(first, d)
		sec := int(d / time.Second)
		for len(perSecond) <= sec {
			perSecond = append(perSecond, 0)
		}
		perSecond[sec]++
		latency = append(latency, p.Sub(w.createdAt[i]))
		if r := w.resolvedAt[i]; !r.IsZero() {
			resolveLat = append(resolveLat, r.Sub(w.createdAt[i]))
			lastResolved = max(lastResolved, r.Sub(w.start))
		}
	}
	return first, perSecond, latency, resolveLat, lastResolved
}

// checkPlacement reads every Task back and returns the fewest and most Tasks on an instance, and how
// many instances hold more memory than they registered.
func checkPlacement(ctx context.Context, c client.Client, n int) ([2]int, int, error) {
	list := &ecsv1alpha1.TaskList{}
	if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return [2]int{}, 0, err
	}
	instances := &ecsv1alpha1.ContainerInstanceList{}
	if err := c.List(ctx, instances, client.InNamespace(namespace)); err != nil {
		return [2]int{}, 0, err
	}
	count, memory := map[string]int{}, map[string]int64{}
	for _, ci := range instances.Items {
		count[ci.Name] = 0
	}
	placed := 0
	for _, t := range list.Items {
		if t.Spec.ContainerInstance == "" {
			continue
		}
		placed++
		count[t.Spec.ContainerInstance]++
		for _, ctr := range t.Spec.Containers {
			if ctr.Memory != nil {
				memory[t.Spec.ContainerInstance] += int64(*ctr.Memory)
			}
		}
	}
	if placed != n {
		return [2]int{}, 0, fmt.Errorf("read back %d placed Tasks, want %d", placed, n)
	}
	over := 0
	for _, ci := range instances.Items {
		if res := ci.Status.RegisteredResources; res != nil && memory[ci.Name] > int64(res.Memory) {
			over++
		}
	}
	counts := slices.Collect(func(yield func(int) bool) {
		for _, v := range count {
			if !yield(v) {
				return
			}
		}
	})
	return [2]int{slices.Min(counts), slices.Max(counts)}, over, nil
}

// probeWrites times n sequential PATCHes of one Task's labels: the round trip a controller that
// writes one object at a time waits for on every write.
func probeWrites(ctx context.Context, c client.Client, n int) ([]time.Duration, error) {
	task := &ecsv1alpha1.Task{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: taskName(0)}, task); err != nil {
		return nil, err
	}
	var out []time.Duration
	for i := range n {
		patch := fmt.Appendf(nil, `{"metadata":{"labels":{"probe":"%d"}}}`, i)
		t0 := time.Now()
		if err := c.Patch(ctx, task, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return nil, fmt.Errorf("probing writes: %w", err)
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

func (r *result) markdown(f flags) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	mode := "standalone Tasks with spec.taskDefinition only (droverd resolves them as they are created, then the placement controller places them)"
	if f.resolved {
		mode = "standalone Tasks created pre-resolved (containers copied from the revision; placement alone)"
	}
	strategy := f.strategy
	if strategy == "" {
		strategy = "none (random)"
	}
	from := "first create"
	if f.backlog {
		mode += ", created with the controllers off (a backlog)"
		from = "restart"
	}
	// The seconds in which Tasks were being placed, from the first placement to the last.
	active := r.perSecond[int(r.firstPlaced/time.Second):]
	w("## Placement (droverd with controllers)")
	w("")
	w("Machine: %s. Load average %s before, %s after.", r.machine, r.loadBefore, r.loadAfter)
	w("")
	w("%d ContainerInstances, %d %s, placement strategy %s, %d client workers.", f.instances, f.tasks, mode, strategy, f.workers)
	w("")
	w("| figure | value |")
	w("| --- | --- |")
	w("| register and connect %d instances | %s |", f.instances, harness.Ms(r.instanceSetup))
	w("| create %d Tasks | %s (%.0f creates/s) |", f.tasks, harness.Ms(r.createWall), float64(f.tasks)/r.createWall.Seconds())
	if f.backlog {
		w("| restart droverd with its controllers, exec to ready | %s |", harness.Ms(r.restart))
	}
	if !f.resolved && !f.backlog {
		w("| first create to last Task resolved | %s |", harness.Ms(r.lastResolved))
		w("| create to resolved per Task, p50 / p90 / max | %s / %s / %s |", harness.Ms(harness.Quantile(r.resolveLat, 0.5)), harness.Ms(harness.Quantile(r.resolveLat, 0.9)), harness.Ms(slices.Max(r.resolveLat)))
	}
	w("| %s to first Task placed | %s |", from, harness.Ms(r.firstPlaced))
	w("| **%s to every Task placed** | **%s** |", from, harness.Ms(r.total))
	w("| average placements/s (Tasks / total time) | %.0f |", float64(f.tasks)/r.total.Seconds())
	w("| placements/s while placing (first to last placement) | %.0f |", float64(f.tasks)/(r.total-r.firstPlaced).Seconds())
	w("| placements in one second, p50 / p90 / max (n=%d s) | %d / %d / %d |", len(active), harness.Quantile(active, 0.5), harness.Quantile(active, 0.9), slices.Max(active))
	w("| create to placed per Task, p50 / p90 / p99 / max | %s / %s / %s / %s |", harness.Ms(harness.Quantile(r.latency, 0.5)), harness.Ms(harness.Quantile(r.latency, 0.9)),
		harness.Ms(harness.Quantile(r.latency, 0.99)), harness.Ms(slices.Max(r.latency)))
	w("| droverd CPU, %s to last placement | %.2f cores |", from, r.cores)
	w("| droverd RSS at the end | %s |", r.rss)
	w("| Tasks per instance, fewest / most | %d / %d |", r.perInstance[0], r.perInstance[1])
	w("| instances holding more memory than registered | %d |", r.overcommitted)
	w("| one PATCH of a Task, sequential, after the run, p50 / p90 (n=%d) | %s / %s |", len(r.writeLatency),
		harness.Msf(harness.Quantile(r.writeLatency, 0.5)), harness.Msf(harness.Quantile(r.writeLatency, 0.9)))
	w("")
	wall := r.total
	w("Controllers from the %s to the last placement (%s): passes and time inside Reconcile (each runs one", from, harness.Ms(wall))
	w("worker, so one busy close to 100%% of the time is a bottleneck).")
	w("")
	w("| controller | passes | busy | busy / wall | average pass |")
	w("| --- | --- | --- | --- | --- |")
	for _, l := range r.controllers {
		w("| %s | %.0f | %s | %.0f%% | %s |", l.Name, l.Passes, harness.Ms(l.Busy), 100*l.Busy.Seconds()/wall.Seconds(),
			harness.Msf(time.Duration(float64(l.Busy)/l.Passes)))
	}
	if r.profile != "" {
		w("")
		w("CPU profile of droverd (first %d s from the %s): %s (go tool pprof -top %s)", f.profileSecs, from, r.profile, r.profile)
	}
	return b.String()
}
