// Command scale benchmarks droverd with many hosts: hollow agents (test/scale/hollow), simulated
// container instances that run no containers but cost droverd what drover-agent costs it. Each
// registers through the real registration endpoint with its own key and CSR, and then, over its
// own TLS connection with its own client certificate, renews its heartbeat Lease every
// --heartbeat, reports its ContainerInstance status at start and every --status-interval, watches
// the Tasks bound to it (field selector spec.containerInstance=<name>) and reports them RUNNING
// --start-delay after they are bound and STOPPED --stop-delay after they are told to stop.
//
// It starts droverd with its controllers as a child process (see hack/bench/internal/harness),
// registers --instances hollow instances, starts them, and runs the scenarios named in --scenarios:
//
//   - heartbeat: the instances idle for --idle after a warm-up. Reported: droverd's CPU and RSS,
//     the embedded etcd's writes per second, the Lease renewals achieved and their latency (GET +
//     UPDATE, as the instances time them), the longest gap between two renewals of an instance,
//     and this process's heap and goroutine stacks per hollow instance.
//   - startup: while --churn operations per second of background churn run (standalone Tasks
//     created, told to stop, and deleted, in turn), --tasks standalone Tasks are created at --rate
//     per second. Each is timed from its create to RUNNING as a watch of the Tasks sees it, with
//     the time to bound (spec.containerInstance set) on the way.
//   - restart and failure run on REPLICA services of --service-size tasks, --service-tasks per
//     instance in all, whose disconnectPolicy replaces tasks --replace-after an instance's last
//     heartbeat; they are created first and timed until every task runs.
//   - restart: with the services running and every instance connected, droverd is stopped
//     (SIGTERM) and started again on its data dir and ports. Reported: its exec to ready, the time
//     until every instance renewed its Lease and was connected again, the instances marked
//     disconnected meanwhile, and, by counting, whether the same tasks (name and uid) run after
//     as before, with none stopped and none added.
//   - failure: 1% of the instances (at least one), each running some of the services' tasks, die
//     (Fleet.Kill: no more renewals, watch or reports). Reported: the time from the kill until a
//     watch sees each marked disconnected, until every service again runs its desiredCount with
//     none on a dead instance, and that no task on a live instance was stopped.
//   - saturation: services of 250, 30 and 5 tasks holding a quarter, a quarter and half of
//     --saturation-tasks per instance are created at once. Reported: the time until every desired
//     task is RUNNING (counted from the instances' RUNNING reports, confirmed by a list), and each
//     kind of request's latency meanwhile, as the hollow instances and this benchmark time them.
//
// The report is markdown on stdout.
//
//	make build
//	go run ./hack/bench/scale --droverd ./bin/droverd [--instances 1000] \
//	    [--scenarios heartbeat,startup,restart,failure,saturation] [--idle 60s] [--tasks 500] [--rate 5] \
//	    [--churn 20] [--service-tasks 3] [--service-size 50] [--replace-after 10s] [--saturation-tasks 30] \
//	    [--profile-dir DIR] [--out FILE]
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/hack/bench/internal/harness"
	"github.com/drover-dev/drover/hack/bench/internal/procinfo"
	"github.com/drover-dev/drover/test/scale/hollow"
)

const (
	namespace = metav1.NamespaceDefault
	cluster   = "bench"
	family    = "web"
	// Every task reserves this much of its instance.
	taskCPU, taskMemory = 16, 32
)

type flags struct {
	droverd         string
	instances       int
	concurrency     int
	cpu, memory     int
	heartbeat       time.Duration
	statusInterval  time.Duration
	startDelay      time.Duration
	stopDelay       time.Duration
	scenarios       string
	warmup          time.Duration
	idle            time.Duration
	tasks           int
	rate            float64
	churn           float64
	churnWarmup     time.Duration
	serviceTasks    float64
	serviceSize     int
	replaceAfter    time.Duration
	saturationTasks int
	timeout         time.Duration
	readyTimeout    time.Duration
	profileDir      string
	keepDataDir     bool
	out             string
	startRate       float64
	droverdArgs     string
}

func main() {
	var f flags
	flag.StringVar(&f.droverd, "droverd", "./bin/droverd", "droverd binary to benchmark (make build puts it in ./bin)")
	flag.IntVar(&f.instances, "instances", 1000, "hollow instances to register and run")
	flag.IntVar(&f.concurrency, "concurrency", 8, "concurrent registrations")
	flag.IntVar(&f.cpu, "instance-cpu", 4096, "CPU units each instance registers")
	flag.IntVar(&f.memory, "instance-memory", 8192, "memory (MiB) each instance registers")
	flag.DurationVar(&f.heartbeat, "heartbeat", 5*time.Second, "Lease renewal interval of each instance (drover-agent's default)")
	flag.DurationVar(&f.statusInterval, "status-interval", 5*time.Minute, "how often each instance reports its status besides at start (drover-agent's default; 0 for only at start)")
	flag.Float64Var(&f.startRate, "start-rate", 0, "instances started per second, in order; 0 starts each at a random moment within one heartbeat interval (hosts reconnecting at once)")
	flag.DurationVar(&f.startDelay, "start-delay", 0, "how long an instance takes to report a Task bound to it RUNNING (a real host adds its Docker start, about 0.7 s)")
	flag.DurationVar(&f.stopDelay, "stop-delay", 0, "how long an instance takes to report a Task STOPPED once told to stop")
	flag.StringVar(&f.scenarios, "scenarios", "heartbeat,startup,restart,failure,saturation", "scenarios to run, comma separated, in this order: heartbeat, startup, restart, failure, saturation")
	flag.DurationVar(&f.warmup, "warmup", 0, "heartbeats before the idle window, once every instance is connected (default 3 heartbeats, at least 15s)")
	flag.DurationVar(&f.idle, "idle", 60*time.Second, "heartbeat scenario: measurement window with the instances idle")
	flag.IntVar(&f.tasks, "tasks", 500, "startup scenario: Tasks to create and time to RUNNING")
	flag.Float64Var(&f.rate, "rate", 5, "startup scenario: Tasks created per second")
	flag.Float64Var(&f.churn, "churn", 20, "startup scenario: background operations per second (create, stop, delete standalone Tasks in turn); 0 for none")
	flag.DurationVar(&f.churnWarmup, "churn-warmup", 10*time.Second, "startup scenario: churn before the first timed create")
	flag.Float64Var(&f.serviceTasks, "service-tasks", 3, "restart and failure scenarios: service tasks per instance; below 1 runs them on a share of the instances (0.1: one task per ten instances)")
	flag.IntVar(&f.serviceSize, "service-size", 50, "restart and failure scenarios: tasks per service")
	flag.DurationVar(&f.replaceAfter, "replace-after", 10*time.Second, "restart and failure scenarios: the services' disconnectPolicy gracePeriodSeconds (action Replace)")
	flag.IntVar(&f.saturationTasks, "saturation-tasks", 30, "saturation scenario: tasks per instance, a quarter in services of 250, a quarter of 30, half of 5")
	flag.DurationVar(&f.timeout, "timeout", 20*time.Minute, "give up when a phase does not finish within this (a bound, not a goal: filling 1,000 instances with 30 tasks each takes about 10 minutes on 2 cores)")
	flag.DurationVar(&f.readyTimeout, "ready-timeout", 3*time.Minute, "give up when droverd is not ready within this")
	flag.StringVar(&f.profileDir, "profile-dir", "", "run droverd with --profiling and save CPU profiles of each scenario here")
	flag.BoolVar(&f.keepDataDir, "keep-data-dir", false, "keep droverd's temporary data dir and log")
	flag.StringVar(&f.out, "out", "", "also write the report to this file")
	flag.StringVar(&f.droverdArgs, "droverd-args", "", "more flags for droverd, space separated (for example \"--max-requests-inflight 100\")")
	flag.Parse()
	if f.warmup == 0 {
		f.warmup = max(3*f.heartbeat, 15*time.Second)
	}
	sc, err := parseScenarios(f.scenarios)
	if err != nil {
		fatalf("--scenarios: %v", err)
	}
	switch {
	case f.instances < 1 || f.concurrency < 1 || f.cpu < taskCPU || f.memory < taskMemory:
		fatalf("--instances and --concurrency must be positive, --instance-cpu and --instance-memory room for a task (%d units, %d MiB)", taskCPU, taskMemory)
	case f.heartbeat < time.Second || f.idle < time.Second || f.statusInterval < 0 || f.startDelay < 0 || f.stopDelay < 0:
		fatalf("--heartbeat and --idle must be at least 1s, --status-interval, --start-delay and --stop-delay not negative")
	case sc.startup && (f.tasks < 1 || f.rate <= 0 || f.churn < 0):
		fatalf("--tasks and --rate must be positive, --churn not negative")
	case (sc.restart || sc.failure) && (f.serviceTaskCount() < 1 || f.serviceSize < 1 || f.replaceAfter < 0 || f.replaceAfter%time.Second != 0):
		fatalf("--service-tasks must make at least one task, --service-size be positive, --replace-after whole seconds")
	case sc.saturation && f.saturationTasks < 1:
		fatalf("--saturation-tasks must be positive")
	case f.cpu/taskCPU < f.saturationTasks+int(math.Ceil(f.serviceTasks))+1 || f.memory/taskMemory < f.saturationTasks+int(math.Ceil(f.serviceTasks))+1:
		fatalf("--instance-cpu and --instance-memory must leave room for the tasks of the scenarios (%d CPU units, %d MiB each)", taskCPU, taskMemory)
	}
	if err := run(f, sc); err != nil {
		fatalf("%v", err)
	}
}

// serviceTaskCount is how many tasks the services of the restart and failure scenarios run in all.
func (f flags) serviceTaskCount() int { return int(math.Round(f.serviceTasks * float64(f.instances))) }

type scenarios struct{ heartbeat, startup, restart, failure, saturation bool }

func parseScenarios(s string) (scenarios, error) {
	var sc scenarios
	for part := range strings.SplitSeq(s, ",") {
		switch strings.TrimSpace(part) {
		case "heartbeat":
			sc.heartbeat = true
		case "startup":
			sc.startup = true
		case "restart":
			sc.restart = true
		case "failure":
			sc.failure = true
		case "saturation":
			sc.saturation = true
		case "":
		default:
			return sc, fmt.Errorf("unknown scenario %q; use heartbeat, startup, restart, failure, saturation", part)
		}
	}
	if sc == (scenarios{}) {
		return sc, errors.New("name at least one scenario")
	}
	return sc, nil
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "scale: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// report collects the figures.
type report struct {
	machine, command      string
	loadBefore, loadAfter string

	regs       hollow.Registrations
	regCPU     [2]float64
	started    time.Duration // from the fleet's start until every instance had started
	connected  time.Duration // from the fleet's start until every instance was marked connected
	mem        hollow.PerInstanceMem
	goroutines int
	rssIdle    procinfo.RSS // droverd once the instances are registered, before they start

	hb         *heartbeatResult
	startup    *startupResult
	steady     *steady
	restart    *restartResult
	failure    *failureResult
	saturation *saturationResult

	stats    hollow.Stats
	phases   []phase
	profiles []string
	// failures are the phases that did not finish, with why.
	failures []string
}

// phase is what happened to the instances' Task watches in one part of the run: how many they
// opened, and how many of those droverd ended because they fell behind. (Each instance opens one
// to start with; a watch ends otherwise only at droverd's request timeout, 30 minutes or more.)
type phase struct {
	name               string
	wall               time.Duration
	opened, terminated int
	controllers        []harness.ControllerLoad
}

func run(f flags, sc scenarios) error {
	d, cfg, c, cleanup, err := harness.LaunchWith(f.droverd, "drover-bench-scale", f.keepDataDir, f.profileDir,
		harness.Options{Timeout: f.readyTimeout, Args: strings.Fields(f.droverdArgs)}, logf)
	defer cleanup()
	if err != nil {
		return err
	}
	ctx := context.Background()
	r := &report{machine: harness.Machine(), command: commandLine(), loadBefore: procinfo.LoadAvg()}
	logf("machine: %s; load average %s", r.machine, r.loadBefore)
	raw, err := harness.RawClient(cfg)
	if err != nil {
		return err
	}
	etcd, err := harness.NewEtcdMetrics(d.DataDir, d.Ports[3])
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(filepath.Join(d.DataDir, "pki", "ca.crt"))
	if err != nil {
		return err
	}
	ca := x509.NewCertPool()
	if !ca.AppendCertsFromPEM(caPEM) {
		return errors.New("no certificate in pki/ca.crt")
	}
	if err := setUp(ctx, c); err != nil {
		return err
	}

	acts, err := hollow.CreateActivations(ctx, c, namespace, cluster, f.instances+f.instances/10+10)
	if err != nil {
		return err
	}
	logf("registering %d hollow instances, %d at a time", f.instances, f.concurrency)
	reg := &hollow.Registrar{Server: d.URL, CA: ca, Activations: acts}
	cpu := harness.StartCPU(d.PID())
	r.regs = reg.RegisterMany(ctx, 0, f.instances, f.concurrency)
	r.regCPU = cpu.Cores()
	logf("registered %d in %s (%.1f/s), %d failed attempts", len(r.regs.Identities), ms(r.regs.Wall), r.regs.Rate(), r.regs.FailedAttempts)
	if len(r.regs.Identities) < f.instances {
		return fmt.Errorf("%d of %d hosts could not register, first error: %v", f.instances-len(r.regs.Identities), f.instances, r.regs.FirstErr)
	}
	harness.Settle(etcd, 30*time.Second)
	if r.rssIdle, err = procinfo.ReadRSS(d.PID()); err != nil {
		return err
	}

	// Room for every renewal of the run, made before the fleet so that it does not count as theirs.
	rec := newRenewals(len(r.regs.Identities), int((f.warmup+f.idle+f.timeout)/f.heartbeat)+8)
	api := newAPITimes()
	fleet, err := hollow.NewFleet(hollow.Config{
		Server: d.URL, CA: ca, CPU: int32(f.cpu), Memory: int32(f.memory),
		HeartbeatInterval: f.heartbeat, StatusInterval: f.statusInterval, StartDelay: f.startDelay, StopDelay: f.stopDelay,
		OnRenew: rec.record, OnRequest: api.record, StartRate: f.startRate,
	}, r.regs.Identities)
	if err != nil {
		return err
	}
	t0 := time.Now()
	ph := newPhases(ctx, raw, fleet, t0)
	fleet.Start(ctx)
	defer fleet.Stop()
	// From here on a phase that fails is reported in the table, and the scenarios that do not
	// depend on it still run, so that one run always prints what it measured.
	if err := r.startFleet(ctx, f, c, fleet, t0, ph); err != nil {
		r.fail("instances starting", err)
		sc = scenarios{}
	}
	if sc.heartbeat {
		if r.hb, err = heartbeat(ctx, f, d, raw, etcd, c, rec, t0); err != nil {
			r.fail("heartbeat", err)
		} else {
			r.profiles = append(r.profiles, r.hb.profile, r.hb.heapProfile)
		}
		ph.mark(r, "heartbeat")
	}
	if sc.startup {
		if r.startup, err = startup(ctx, f, d, raw, c); err != nil {
			r.fail("startup", err)
		} else {
			r.profiles = append(r.profiles, r.startup.profile)
		}
		ph.mark(r, "startup")
	}
	if sc.restart || sc.failure {
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		if r.steady, err = startSteady(sctx, f, c); err != nil {
			r.fail("services for restart and failure", err)
			sc.restart, sc.failure = false, false
		}
		ph.mark(r, "services")
	}
	if sc.restart {
		if r.restart, err = restart(ctx, f, d, c, r.steady, fleet, rec, ph); err != nil {
			r.fail("restart", err)
		}
		ph.mark(r, "restart")
	}
	if sc.failure {
		if r.failure, err = failure(ctx, f, r.steady, fleet); err != nil {
			r.fail("failure", err)
		}
		ph.mark(r, "failure")
	}
	if sc.saturation {
		if r.saturation, err = saturation(ctx, f, d, c, fleet, api); err != nil {
			r.fail("saturation", err)
		}
		ph.mark(r, "saturation")
	}
	r.stats = fleet.Stats()
	fleet.Stop()
	if _, err := d.Shutdown(time.Minute); err != nil {
		logf("%v", err)
	}
	r.loadAfter = procinfo.LoadAvg()
	out := r.markdown(f)
	fmt.Print(out)
	if f.out != "" {
		if err := os.WriteFile(f.out, []byte(out), 0o644); err != nil {
			return err
		}
	}
	if len(r.failures) > 0 {
		return fmt.Errorf("%d phase(s) did not finish: %s", len(r.failures), strings.Join(r.failures, "; "))
	}
	return nil
}

// startFleet waits until every instance has started and is marked connected.
func (r *report) startFleet(ctx context.Context, f flags, c client.Client, fleet *hollow.Fleet, t0 time.Time, ph *phases) error {
	// The instances start in order at --start-rate: the phase's timeout counts from the last one's turn.
	limit := f.timeout
	if f.startRate > 0 {
		limit += time.Duration(float64(f.instances) / f.startRate * float64(time.Second))
	}
	sctx, cancel := context.WithTimeout(ctx, limit)
	err := fleet.WaitStarted(sctx)
	cancel()
	if err != nil {
		return err
	}
	r.started = time.Since(t0)
	ph.mark(r, "instances starting")
	r.mem, r.goroutines = fleet.PerInstance(), runtime.NumGoroutine()
	logf("%d hollow instances started in %s: heap %s and stacks %s per instance", f.instances, ms(r.started), kib(r.mem.Heap), kib(r.mem.Stacks))
	if err := harness.WaitConnected(ctx, c, namespace, f.instances); err != nil {
		return fmt.Errorf("waiting for the instances to be marked connected: %w", err)
	}
	r.connected = time.Since(t0)
	logf("all %d instances connected %s after the start", f.instances, ms(r.connected))
	ph.mark(r, "until all are connected")
	return nil
}

// fail records that a phase did not finish, for the report.
func (r *report) fail(phase string, err error) {
	logf("%s did not finish: %v", phase, err)
	r.failures = append(r.failures, fmt.Sprintf("%s: %v", phase, err))
}

// phases counts, from one mark to the next, the Task watches the instances opened and droverd
// ended, and what droverd's controllers did.
type phases struct {
	ctx           context.Context
	raw           rest.Interface
	fleet         *hollow.Fleet
	at            time.Time
	opened, ended int
	metrics       harness.Metrics
}

// newPhases starts counting now.
func newPhases(ctx context.Context, raw rest.Interface, fleet *hollow.Fleet, at time.Time) *phases {
	p := &phases{ctx: ctx, raw: raw, fleet: fleet, at: at}
	p.mark(nil, "")
	return p
}

func (p *phases) mark(r *report, name string) {
	opened := int(p.fleet.Stats().Watches)
	m, err := harness.Scrape(p.ctx, p.raw)
	ended := p.ended
	if err != nil {
		logf("%v", err)
	} else {
		ended = int(m.Sum("apiserver_terminated_watchers_total", `resource="tasks"`))
	}
	if r != nil {
		r.phases = append(r.phases, phase{name: name, wall: time.Since(p.at), opened: opened - p.opened,
			terminated: ended - p.ended, controllers: harness.ControllerLoads(p.metrics, m)})
	}
	p.at, p.opened, p.ended, p.metrics = time.Now(), opened, ended, m
}

// restarted says droverd started again: its counters start from zero. (Watches it ended after the
// last mark before it stopped are not counted.)
func (p *phases) restarted() { p.metrics, p.ended = nil, 0 }

// setUp creates the cluster and the task definition, and waits for its first revision, which
// shows the controllers run.
func setUp(ctx context.Context, c client.Client) error {
	if err := c.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cluster, Namespace: namespace}}); err != nil {
		return fmt.Errorf("creating the cluster: %w", err)
	}
	td := &ecsv1alpha1.TaskDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: family, Namespace: namespace},
		Spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
			Name: "app", Image: "registry.example.com/web:1", CPU: taskCPU, Memory: ptr.To[int32](taskMemory),
		}}},
	}
	if err := c.Create(ctx, td); err != nil {
		return fmt.Errorf("creating the task definition: %w", err)
	}
	return harness.Poll(ctx, 2*time.Minute, func() (bool, error) {
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: family + "-1"}, &ecsv1alpha1.TaskDefinitionRevision{})
		return err == nil, client.IgnoreNotFound(err)
	})
}

// renewals records every instance's renewals, as the fleet reports them. Instance i's are
// appended only by its own heartbeat; readers take the lock.
type renewals struct {
	mu  sync.Mutex
	per [][]renewal
}

type renewal struct {
	at, end time.Time
	err     bool
}

func newRenewals(n, capacity int) *renewals {
	r := &renewals{per: make([][]renewal, n)}
	for i := range r.per {
		r.per[i] = make([]renewal, 0, capacity)
	}
	return r
}

func (r *renewals) record(i int, at time.Time, took time.Duration, err error) {
	r.mu.Lock()
	r.per[i] = append(r.per[i], renewal{at: at, end: at.Add(took), err: err != nil})
	r.mu.Unlock()
}

// renewedSince returns how many instances renewed successfully with a renewal that started at or
// after t, and when the last of those first renewals ended.
func (r *renewals) renewedSince(t time.Time) (n int, last time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range r.per {
		for _, rn := range rs {
			if !rn.err && !rn.at.Before(t) {
				n++
				if rn.end.After(last) {
					last = rn.end
				}
				break
			}
		}
	}
	return n, last
}

// window summarises the renewals that started within [t0, t1).
type renewalWindow struct {
	ok, errs  int
	latencies []time.Duration
	// maxGap is the longest time an instance went without a successful renewal, counting from
	// the window's start and to its end.
	maxGap time.Duration
}

func (r *renewals) window(t0, t1 time.Time) renewalWindow {
	r.mu.Lock()
	defer r.mu.Unlock()
	var w renewalWindow
	for _, rs := range r.per {
		last := t0
		for _, rn := range rs {
			if rn.at.Before(t0) || !rn.at.Before(t1) {
				continue
			}
			if rn.err {
				w.errs++
				continue
			}
			w.ok++
			w.latencies = append(w.latencies, rn.end.Sub(rn.at))
			w.maxGap = max(w.maxGap, rn.end.Sub(last))
			last = rn.end
		}
		w.maxGap = max(w.maxGap, t1.Sub(last))
	}
	return w
}

type heartbeatResult struct {
	window               time.Duration
	renewals             renewalWindow
	cpu                  [2]float64
	etcd                 harness.EtcdDelta
	rss                  procinfo.RSS
	connected            int
	profile, heapProfile string
}

// heartbeat waits out the warm-up and measures droverd and the renewals with the instances idle.
func heartbeat(ctx context.Context, f flags, d *harness.Droverd, raw rest.Interface, etcd *harness.EtcdMetrics,
	c client.Client, rec *renewals, started time.Time) (*heartbeatResult, error) {
	if wait := f.warmup - time.Since(started); wait > 0 {
		logf("warming up for another %s", ms(wait))
		time.Sleep(wait)
	}
	res := &heartbeatResult{}
	var prof harness.Profile
	if f.profileDir != "" {
		prof.Start(ctx, raw, filepath.Join(f.profileDir, "heartbeat.cpu.pprof"), int(min(f.idle, time.Minute).Seconds()), logf)
	}
	logf("heartbeat: measuring %d idle instances for %s", f.instances, f.idle)
	cpu := harness.StartCPU(d.PID())
	e0, err := etcd.Read()
	if err != nil {
		return nil, fmt.Errorf("reading etcd's metrics: %w", err)
	}
	t0 := time.Now()
	time.Sleep(f.idle)
	t1 := time.Now()
	res.cpu = cpu.Cores()
	e1, err := etcd.Read()
	if err != nil {
		return nil, fmt.Errorf("reading etcd's metrics: %w", err)
	}
	res.window, res.etcd = t1.Sub(t0), e1.Sub(e0, t1.Sub(t0))
	if res.rss, err = procinfo.ReadRSS(d.PID()); err != nil {
		return nil, err
	}
	if f.profileDir != "" {
		file := filepath.Join(f.profileDir, "heartbeat.heap.pprof")
		if err := harness.SaveHeapProfile(ctx, raw, file); err != nil {
			logf("%v", err)
		} else {
			res.heapProfile = file
		}
	}
	// Renewals that started in the window may still be under way.
	time.Sleep(min(f.heartbeat, 10*time.Second))
	res.renewals = rec.window(t0, t1)
	var cis ecsv1alpha1.ContainerInstanceList
	if err := c.List(ctx, &cis, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	for _, ci := range cis.Items {
		if ci.Status.AgentConnected {
			res.connected++
		}
	}
	res.profile = prof.Wait()
	logf("heartbeat: %.1f renewals/s, p99 %s, droverd %.2f cores, %.1f etcd puts/s", float64(res.renewals.ok)/res.window.Seconds(),
		ms(pct(res.renewals.latencies, 0.99)), res.cpu[0], res.etcd.PerSec("etcd_mvcc_put_total"))
	return res, nil
}

func commandLine() string {
	return strings.Join(append([]string{"go run ./hack/bench/scale"}, os.Args[1:]...), " ")
}

// ms prints a duration; pct is the q-quantile (nearest rank) of durations.
var ms, pct = harness.Dur, harness.Quantile[time.Duration]

func lats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s / %s / %s", ms(pct(ds, 0.5)), ms(pct(ds, 0.9)), ms(pct(ds, 0.99)), ms(slices.Max(ds)))
}

func kib(b float64) string { return fmt.Sprintf("%.0f KiB", b/1024) }

func (r *report) markdown(f flags) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("## Scale: hollow agents (droverd with controllers)")
	w("")
	w("Machine: %s. Load average %s before, %s after.", r.machine, r.loadBefore, r.loadAfter)
	w("")
	w("Command: `%s`", r.command)
	w("")
	w("%d hollow instances (%d CPU units, %d MiB each), Lease renewed every %s, status reported every %s, Tasks reported RUNNING %s after binding.",
		f.instances, f.cpu, f.memory, f.heartbeat, f.statusInterval, f.startDelay)
	w("")
	w("| figure | value |")
	w("| --- | --- |")
	w("| registrations, %d with %d concurrent (new key, CSR and TLS connection each) | %.1f /s (%s; %d failed attempts, retried) |",
		len(r.regs.Identities), f.concurrency, r.regs.Rate(), ms(r.regs.Wall), r.regs.FailedAttempts)
	w("| registration latency p50 / p90 / p99 / max | %s |", lats(r.regs.Latencies))
	w("| CPU while registering, droverd / benchmark | %.2f / %.2f cores |", r.regCPU[0], r.regCPU[1])
	w("| droverd RSS with the instances registered, before they start | %s |", r.rssIdle)
	for _, failure := range r.failures {
		w("| **did not finish** | %s |", strings.ReplaceAll(failure, "|", "\\|"))
	}
	if r.started > 0 {
		w("| hollow instances started (first renewal, status report, Task watch open), from the fleet's start | %s |", ms(r.started))
		w("| **benchmark memory per hollow instance: live heap / goroutine stacks** | **%s / %s** (%.1f goroutines each; %d in all) |",
			kib(r.mem.Heap), kib(r.mem.Stacks), r.mem.Goroutines, r.goroutines)
	}
	if r.connected > 0 {
		w("| every instance marked connected, from the fleet's start | %s |", ms(r.connected))
	}
	if hb := r.hb; hb != nil {
		want := float64(f.instances) / f.heartbeat.Seconds()
		w("| heartbeat: %d idle instances, window %s after %s warm-up | %.1f renewals/s of %.1f expected, %d failed |",
			f.instances, ms(hb.window), f.warmup, float64(hb.renewals.ok)/hb.window.Seconds(), want, hb.renewals.errs)
		w("| heartbeat: **renewal latency p50 / p90 / p99 / max** | **%s** |", lats(hb.renewals.latencies))
		w("| heartbeat: longest time an instance went without a renewal | %s (grace period 10 s) |", ms(hb.renewals.maxGap))
		w("| heartbeat: **droverd CPU** / benchmark CPU | **%.2f cores** / %.2f cores |", hb.cpu[0], hb.cpu[1])
		w("| heartbeat: **etcd puts/s** (etcd_mvcc_put_total) | **%.1f** (%.2f per renewal) |", hb.etcd.PerSec("etcd_mvcc_put_total"),
			hb.etcd.Total["etcd_mvcc_put_total"]/max(float64(hb.renewals.ok), 1))
		w("| heartbeat: etcd proposals committed/s, ranges (reads)/s | %.1f, %.1f |", hb.etcd.PerSec("etcd_server_proposals_committed_total"),
			hb.etcd.PerSec("etcd_mvcc_range_total"))
		w("| heartbeat: **droverd RSS** at the end of the window | **%s** |", hb.rss)
		w("| heartbeat: instances with status.agentConnected=true at the end | %d of %d |", hb.connected, f.instances)
	}
	if s := r.startup; s != nil {
		w("| startup: %d Tasks created at %.1f/s, with %.1f churn operations/s | all RUNNING %s after the first create |",
			f.tasks, f.rate, f.churn, ms(s.total))
		w("| startup: **create to RUNNING p50 / p90 / p99 / max** | **%s** |", lats(s.running))
		w("| startup: create to bound p50 / p90 / p99 / max | %s |", lats(s.bound))
		w("| startup: bound to RUNNING p50 / p90 / p99 / max | %s |", lats(s.boundToRunning))
		w("| startup: create request latency p50 / p90 / p99 / max | %s (%d creates sent again after 429 or a timeout) |", lats(s.createLat), s.createRetries)
		w("| startup: churn achieved: creates / stops / deletes per second | %.1f / %.1f / %.1f (%d failed, %d skipped with 64 under way, %d creates sent again) |",
			s.churn.rate(s.churn.creates), s.churn.rate(s.churn.stops), s.churn.rate(s.churn.deletes), s.churn.errs, s.churn.skipped, s.churn.retries)
		w("| startup: churn request latency p50 / p99 | %s / %s |", ms(pct(s.churn.latencies, 0.5)), ms(pct(s.churn.latencies, 0.99)))
		w("| startup: droverd CPU / benchmark CPU | %.2f / %.2f cores |", s.cpu[0], s.cpu[1])
		w("| startup: droverd RSS at the end | %s |", s.rss)
	}
	if s := r.steady; s != nil {
		w("| services for restart and failure: %d tasks (%g per instance) in %d services, disconnectPolicy Replace after %s | all RUNNING %s after the first create (%d instances seen disconnected meanwhile) |",
			s.set.total, f.serviceTasks, len(s.set.desired), f.replaceAfter, ms(s.ready), s.flapped)
	}
	if r.restart != nil {
		r.restart.rows(f, w)
	}
	if r.failure != nil {
		r.failure.rows(f, w)
	}
	if r.saturation != nil {
		r.saturation.rows(f, w)
	}
	st := r.stats
	w("| hollow instances over the run: renewals (failed), status reports (failed) | %d (%d), %d (%d) |", st.Renewals, st.RenewalErrors, st.StatusReports, st.StatusErrors)
	w("| hollow instances over the run: Tasks reported RUNNING / STOPPED, reports failed | %d / %d, %d |", st.Running, st.Stopped+st.Failed, st.TaskReportErrors)
	w("| hollow instances over the run: Task lists, watches opened (failed) | %d, %d (%d) |", st.Lists, st.Watches, st.WatchErrors)
	for _, p := range r.phases {
		w("| Task watches opened / ended by droverd's watch cache for falling behind: %s | %d / %d |", p.name, p.opened, p.terminated)
	}
	w("")
	w("droverd's controllers in each phase: time inside Reconcile as a share of the phase's wall time, and passes. The")
	w("task controller runs 8 reconciles at once, the others one each: one of those close to 100%% is a bottleneck.")
	w("")
	head, sep := "| controller |", "| --- |"
	for _, p := range r.phases {
		head += fmt.Sprintf(" %s (%s) |", p.name, ms(p.wall))
		sep += " --- |"
	}
	w("%s", head)
	w("%s", sep)
	for _, name := range []string{"containerinstance", "placement", "task", "service", "cluster", "taskdefinition"} {
		row, seen := "| "+name+" |", false
		for _, p := range r.phases {
			cell := " - |"
			for _, l := range p.controllers {
				if l.Name == name {
					cell, seen = fmt.Sprintf(" %.0f%% (%.0f) |", 100*l.Busy.Seconds()/p.wall.Seconds(), l.Passes), true
				}
			}
			row += cell
		}
		if seen {
			w("%s", row)
		}
	}
	if r.saturation != nil {
		w("")
		w("Saturation: request latency by verb from the first service create until every task was RUNNING (or --timeout), as")
		w("the clients time their requests (what they wait for, queueing in their own process included): the hollow")
		w("instances from sending each request (watches left out) to its answer's headers, this benchmark each service create.")
		w("")
		r.saturation.apiRows(w)
	}
	if st.FirstError != "" {
		w("")
		w("First error of a hollow instance: %s", st.FirstError)
	}
	if profiles := slices.DeleteFunc(slices.Clone(r.profiles), func(p string) bool { return p == "" }); len(profiles) > 0 {
		w("")
		w("Profiles of droverd: %s", strings.Join(profiles, ", "))
	}
	return b.String()
}
