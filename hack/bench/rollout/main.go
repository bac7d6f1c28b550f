// Command rollout benchmarks a service rollout through droverd: it starts droverd with its controllers
// as a child process, registers --instances ContainerInstances with room for twice --tasks tasks, and
// runs a simulated agent for each: it moves the Tasks bound to its instance to RUNNING, and to STOPPED
// once their desiredStatus is STOPPED, as test/framework's simulated agents do (the instances report
// agentVersion 0.1.0-simulated). It creates a REPLICA Service of --tasks tasks (minimumHealthyPercent
// --min-healthy, maximumPercent --max-percent) and times it to steady state; then it registers a new
// revision of the task definition (a new image) and times the rollout until the service's new
// deployment is COMPLETED with --tasks RUNNING tasks of the new revision and every old task STOPPED.
//
// While the service rolls, a List of the service's tasks every --sample-interval counts the tasks
// that should run (desiredStatus RUNNING) and are RUNNING, and those that should run and have not
// stopped; the watch of every Task checks the same bounds at every change. The report is markdown:
// time to steady state, rollout time, tasks started and stopped per second, the bounds, where the
// time went (per-task latencies, a timeline, each controller's time inside Reconcile) and droverd's
// CPU and RSS during the rollout.
//
//	make build
//	go run ./hack/bench/rollout --droverd ./bin/droverd [--instances 200] [--tasks 1000] [--profile-dir DIR]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
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
	service   = "web"
	// agentVersion marks the instances as run by a simulated agent.
	agentVersion = "0.1.0-simulated"
	// Every task reserves this much of its instance.
	taskCPU, taskMemory = 16, 64
)

type flags struct {
	droverd      string
	instances    int
	tasks        int
	minHealthy   int
	maxPercent   int
	workers      int
	sampleEvery  time.Duration
	heartbeat    time.Duration
	settle       time.Duration
	timeout      time.Duration
	readyTimeout time.Duration
	profileDir   string
	profileSecs  int
	keepDataDir  bool
	out          string
}

func main() {
	var f flags
	flag.StringVar(&f.droverd, "droverd", "./bin/droverd", "droverd binary (make build)")
	flag.IntVar(&f.instances, "instances", 200, "ContainerInstances to register, each with a simulated agent")
	flag.IntVar(&f.tasks, "tasks", 1000, "desiredCount of the service")
	flag.IntVar(&f.minHealthy, "min-healthy", 50, "deploymentConfiguration.minimumHealthyPercent")
	flag.IntVar(&f.maxPercent, "max-percent", 200, "deploymentConfiguration.maximumPercent")
	flag.IntVar(&f.workers, "workers", 16, "concurrent clients registering instances")
	flag.DurationVar(&f.sampleEvery, "sample-interval", 250*time.Millisecond, "how often to List the service's tasks while it rolls; 0 lists none (the Task watch still checks the bounds)")
	flag.DurationVar(&f.heartbeat, "heartbeat", 0, "renew every instance's heartbeat Lease this often (drover-agent: 5s); 0 writes each Lease once, renewed past the end of the run")
	flag.DurationVar(&f.settle, "settle", 3*time.Second, "wait after steady state before the rollout")
	flag.DurationVar(&f.timeout, "timeout", 10*time.Minute, "give up when steady state or the rollout takes longer than this")
	flag.DurationVar(&f.readyTimeout, "ready-timeout", 3*time.Minute, "give up when droverd is not ready within this")
	flag.StringVar(&f.profileDir, "profile-dir", "", "run droverd with --profiling and save a CPU profile of the rollout here")
	flag.IntVar(&f.profileSecs, "profile-seconds", 30, "length of the CPU profile, from the start of the rollout")
	flag.BoolVar(&f.keepDataDir, "keep-data-dir", false, "keep droverd's temporary data dir and log")
	flag.StringVar(&f.out, "out", "", "also write the report to this file")
	flag.Parse()
	if f.instances < 1 || f.tasks < 1 || f.workers < 1 || f.sampleEvery < 0 {
		fatalf("--instances, --tasks and --workers must be positive, --sample-interval not negative")
	}
	if f.minHealthy < 0 || f.minHealthy > 100 || f.maxPercent < 100 || f.maxPercent > 1000 {
		fatalf("--min-healthy must be 0-100 and --max-percent 100-1000")
	}
	if err := run(f); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "rollout: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// result holds what one run measured.
type result struct {
	machine, loadBefore, loadAfter string
	slots                          int // tasks each instance has room for
	instanceSetup                  time.Duration

	// steady state, from the Service's create
	up phase

	// the rollout, from the TaskDefinition's update
	roll         phase
	stopsFirst   time.Duration // first old task told to stop
	stopsLast    time.Duration // last old task told to stop
	lastStopped  time.Duration // last old task STOPPED
	deployment   time.Duration // the new deployment first listed in status.deployments[0]
	startedSec   []int         // new tasks RUNNING in each second of the rollout
	stoppedSec   []int         // old tasks STOPPED in each second of the rollout
	placeLat     []time.Duration
	agentLat     []time.Duration // bound to RUNNING
	stopLat      []time.Duration // stop requested to STOPPED
	waited       int             // new tasks that were refused placement at first (Placed False)
	samples      []sample
	watchMin     int // fewest RUNNING tasks that should run, at any change the watch showed
	watchMax     int // most tasks that should run and have not stopped, likewise
	watchChanges int
	statusWrites int // service status changes seen during the rollout
	cores        float64
	rssMaxKB     int
	rssEnd       string
	controllers  []harness.ControllerLoad
	requests     []requestCount  // droverd's own clients' requests during the rollout, by method
	agentWrites  []time.Duration // the simulated agents' status PATCHes during the rollout
	heartbeats   int
	timeline     []bucket
	profile      string
}

// phase is when the milestones of bringing one revision's tasks up were first seen, from the
// phase's start.
type phase struct {
	firstCreated, lastCreated time.Duration
	lastBound                 time.Duration
	lastRunning               time.Duration
	completed                 time.Duration // status.deployments[0] COMPLETED for the revision
	total                     time.Duration // every condition of the phase holds
}

// requestCount is how many requests of one method droverd's own clients (its controllers and their
// event recorders) sent.
type requestCount struct {
	method string
	n      float64
}

// sample is one List of the service's tasks.
type sample struct {
	at      time.Duration // from the start of the rollout
	running int           // desiredStatus RUNNING and lastStatus RUNNING
	total   int           // desiredStatus RUNNING and not STOPPED
	took    time.Duration
}

// bucket counts what happened in one slice of the rollout's timeline.
type bucket struct {
	from, to                    time.Duration
	created, bound, running     int
	stopRequested, stopped      int
	sampledRunning, sampledLive int // the last sample in the slice, -1 without one
}

func run(f flags) error {
	d, cfg, c, cleanup, err := harness.Launch(f.droverd, "drover-bench-rollout", f.keepDataDir, f.profileDir, f.readyTimeout, logf)
	defer cleanup()
	if err != nil {
		return err
	}
	raw, err := harness.RawClient(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &result{machine: harness.Machine(), loadBefore: procinfo.LoadAvg()}

	// The task definition's first revision appearing shows the controllers have started.
	td := &ecsv1alpha1.TaskDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: family, Namespace: namespace},
		Spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
			Name: "app", Image: "example.com/web:1", CPU: taskCPU, Memory: ptr.To[int32](taskMemory),
		}}},
	}
	if err := c.Create(ctx, td); err != nil {
		return fmt.Errorf("creating TaskDefinition: %w", err)
	}
	if err := c.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cluster, Namespace: namespace}}); err != nil {
		return fmt.Errorf("creating Cluster: %w", err)
	}
	rev1 := ecsv1alpha1.RevisionName(family, 1)
	if err := waitRevision(ctx, c, rev1); err != nil {
		return err
	}
	logf("controllers running: revision %s exists", rev1)

	// Room for twice the tasks: maximumPercent 200 may run both revisions in full.
	r.slots = (2*f.tasks + f.instances - 1) / f.instances
	renew := time.Now()
	if f.heartbeat == 0 {
		renew = renew.Add(2*f.timeout + 10*time.Minute)
	}
	logf("registering %d ContainerInstances with room for %d tasks each", f.instances, r.slots)
	t0 := time.Now()
	if err := harness.RegisterInstances(ctx, c, harness.Instances{
		Namespace: namespace, Cluster: cluster, Count: f.instances, Workers: f.workers,
		CPU: int32(taskCPU * r.slots), Memory: int32(taskMemory * r.slots), AgentVersion: agentVersion, RenewTime: renew,
	}); err != nil {
		return err
	}
	if err := harness.WaitConnected(ctx, c, namespace, f.instances); err != nil {
		return err
	}
	r.instanceSetup = time.Since(t0)
	logf("%d instances registered and connected in %s", f.instances, r.instanceSetup.Round(time.Millisecond))

	ag := newAgents(c, f.instances)
	ag.start(ctx)
	if f.heartbeat > 0 {
		go ag.heartbeats(ctx, f.heartbeat)
	}
	tr, err := startTracker(ctx, c, ag)
	if err != nil {
		return err
	}

	// Steady state.
	svc := &ecsv1alpha1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: service, Namespace: namespace},
		Spec: ecsv1alpha1.ServiceSpec{
			Cluster: cluster, TaskDefinition: family, DesiredCount: ptr.To(int32(f.tasks)),
			DeploymentConfiguration: &ecsv1alpha1.DeploymentConfiguration{
				MinimumHealthyPercent: ptr.To(int32(f.minHealthy)), MaximumPercent: ptr.To(int32(f.maxPercent)),
			},
		},
	}
	logf("creating service %s: %d tasks of %s", service, f.tasks, rev1)
	upStart := time.Now()
	if err := c.Create(ctx, svc); err != nil {
		return fmt.Errorf("creating Service: %w", err)
	}
	if err := tr.waitPhase(ctx, rev1, "", f.tasks, upStart, f.timeout); err != nil {
		return fmt.Errorf("steady state: %w", err)
	}
	r.up = tr.phase(rev1, upStart)
	logf("steady state: %d tasks of %s RUNNING, deployment COMPLETED, %s after the create", f.tasks, rev1, r.up.total.Round(time.Millisecond))

	time.Sleep(f.settle)

	// The rollout.
	rev2 := ecsv1alpha1.RevisionName(family, 2)
	metrics0, err := harness.Scrape(ctx, raw)
	if err != nil {
		return err
	}
	var prof harness.Profile
	if f.profileDir != "" {
		prof.Start(ctx, raw, filepath.Join(f.profileDir, "rollout.cpu.pprof"), f.profileSecs, logf)
	}
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	sampled := make(chan []sample, 1)
	rssMax := make(chan int, 1)
	cpu0, _ := procinfo.CPUTime(d.PID())
	writes0, beats0 := ag.counts()
	rollStart := time.Now()
	tr.startWindow(rollStart)
	go func() {
		if f.sampleEvery == 0 {
			sampled <- nil
			return
		}
		sampled <- sampleTasks(sctx, c, f.sampleEvery, rollStart)
	}()
	go func() { rssMax <- sampleRSS(sctx, d.PID()) }()
	logf("rolling out: TaskDefinition %s image example.com/web:2", family)
	if err := updateImage(ctx, c, "example.com/web:2"); err != nil {
		return err
	}
	waitErr := tr.waitPhase(ctx, rev2, rev1, f.tasks, rollStart, f.timeout)
	cpu1, _ := procinfo.CPUTime(d.PID())
	wall := time.Since(rollStart)
	stopSampling()
	r.samples, r.rssMaxKB = <-sampled, <-rssMax
	if waitErr != nil {
		return fmt.Errorf("rollout: %w", waitErr)
	}
	metrics1, err := harness.Scrape(ctx, raw)
	if err != nil {
		return err
	}
	r.cores = (cpu1 - cpu0).Seconds() / wall.Seconds()
	r.rssEnd = harness.ReadRSS(d.PID())
	r.controllers = harness.ControllerLoads(metrics0, metrics1)
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "GET"} {
		label := fmt.Sprintf("method=%q", m)
		r.requests = append(r.requests, requestCount{m, metrics1.Sum("rest_client_requests_total", label) - metrics0.Sum("rest_client_requests_total", label)})
	}
	tr.collectRoll(r, rev2, rev1, rollStart)
	r.agentWrites, r.heartbeats = ag.since(writes0, beats0)
	r.timeline = timeline(r, tr, rev2, rev1, rollStart)
	logf("rolled out: %d tasks of %s RUNNING, every task of %s STOPPED, deployment COMPLETED, %s after the update",
		f.tasks, rev2, rev1, r.roll.total.Round(time.Millisecond))
	r.profile = prof.Wait()
	r.loadAfter = procinfo.LoadAvg()
	if err := checkFinal(ctx, c, rev2, rev1, f.tasks); err != nil {
		return err
	}

	out := r.markdown(f)
	fmt.Print(out)
	if f.out != "" {
		return os.WriteFile(f.out, []byte(out), 0o644)
	}
	return nil
}

func waitRevision(ctx context.Context, c client.Client, name string) error {
	rev := &ecsv1alpha1.TaskDefinitionRevision{}
	if err := harness.Poll(ctx, 2*time.Minute, func() (bool, error) {
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, rev)
		return err == nil, client.IgnoreNotFound(err)
	}); err != nil {
		return fmt.Errorf("waiting for TaskDefinitionRevision %s (are the controllers running?): %w", name, err)
	}
	return nil
}

// updateImage changes the image of the task definition's container, which makes a new revision.
func updateImage(ctx context.Context, c client.Client, image string) error {
	for {
		td := &ecsv1alpha1.TaskDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: family}, td); err != nil {
			return err
		}
		td.Spec.ContainerDefinitions[0].Image = image
		err := c.Update(ctx, td)
		if !apierrors.IsConflict(err) {
			if err != nil {
				return fmt.Errorf("updating TaskDefinition %s: %w", family, err)
			}
			return nil
		}
	}
}

// checkFinal reads the service's tasks back once the rollout is over.
func checkFinal(ctx context.Context, c client.Client, rev, old string, n int) error {
	list := &ecsv1alpha1.TaskList{}
	if err := c.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{ecsv1alpha1.LabelService: service}); err != nil {
		return err
	}
	running, other := 0, 0
	for _, t := range list.Items {
		switch {
		case t.Spec.TaskDefinitionRevision == rev && t.Spec.DesiredStatus == ecsv1alpha1.TaskDesiredRunning && t.Status.LastStatus == ecsv1alpha1.TaskStateRunning:
			running++
		case t.Status.LastStatus != ecsv1alpha1.TaskStateStopped:
			other++
		}
	}
	if running != n || other != 0 {
		return fmt.Errorf("read back %d RUNNING tasks of %s (want %d) and %d other tasks not STOPPED (want 0)", running, rev, n, other)
	}
	return nil
}

// sampleTasks lists the service's tasks every interval until ctx ends.
func sampleTasks(ctx context.Context, c client.Client, every time.Duration, start time.Time) []sample {
	var out []sample
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		t0 := time.Now()
		list := &ecsv1alpha1.TaskList{}
		if err := c.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{ecsv1alpha1.LabelService: service}); err != nil {
			if ctx.Err() == nil {
				logf("sampling tasks: %v", err)
			}
			continue
		}
		s := sample{at: t0.Sub(start), took: time.Since(t0)}
		for i := range list.Items {
			if t := &list.Items[i]; t.Spec.DesiredStatus == ecsv1alpha1.TaskDesiredRunning && t.Status.LastStatus != ecsv1alpha1.TaskStateStopped {
				s.total++
				if t.Status.LastStatus == ecsv1alpha1.TaskStateRunning {
					s.running++
				}
			}
		}
		out = append(out, s)
	}
}

// sampleRSS returns the largest resident memory of pid seen every 100 ms until ctx ends.
func sampleRSS(ctx context.Context, pid int) int {
	most := 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if r, err := procinfo.ReadRSS(pid); err == nil {
			most = max(most, r.RSSKB)
		}
		select {
		case <-ctx.Done():
			return most
		case <-tick.C:
		}
	}
}

// taskRec is when the tracker first saw each step of one task.
type taskRec struct {
	rev                                    string
	seen, bound, running, stopReq, stopped time.Time
	unplaced                               bool
	live, runs                             bool // counted in tracker.live / tracker.running
	notStopped                             bool
}

// tracker watches every Task, records when each reached each step, keeps the counts the rollout's
// bounds are about, and hands each Task to the simulated agents. It also watches the Service.
type tracker struct {
	c  client.WithWatch
	ag *agents

	mu    sync.Mutex
	tasks map[string]*taskRec
	// Over the service's tasks: running counts those that should run and are RUNNING, live those
	// that should run and have not stopped.
	running, live int
	runningByRev  map[string]int // should run and RUNNING
	notStopped    map[string]int // not STOPPED, whatever their desiredStatus
	window        bool
	windowStart   time.Time
	min, max      int
	changes       int
	svcObs        []svcObs
	watchErr      error
}

// svcObs is one version of the Service's status.
type svcObs struct {
	at    time.Time
	rev   string // status.deployments[0].taskDefinitionRevision
	state ecsv1alpha1.RolloutState
}

func startTracker(ctx context.Context, c client.WithWatch, ag *agents) (*tracker, error) {
	tr := &tracker{c: c, ag: ag, tasks: map[string]*taskRec{}, runningByRev: map[string]int{}, notStopped: map[string]int{}}
	tasks := &ecsv1alpha1.TaskList{}
	if err := c.List(ctx, tasks, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	svcs := &ecsv1alpha1.ServiceList{}
	if err := c.List(ctx, svcs, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	go tr.follow(ctx, &ecsv1alpha1.TaskList{}, tasks.ResourceVersion, nil)
	go tr.follow(ctx, &ecsv1alpha1.ServiceList{}, svcs.ResourceVersion, fields.OneTermEqualSelector("metadata.name", service))
	return tr, nil
}

// follow watches list's kind from resourceVersion rv, resuming after the server closes the watch.
func (tr *tracker) follow(ctx context.Context, list client.ObjectList, rv string, sel fields.Selector) {
	fail := func(err error) {
		tr.mu.Lock()
		tr.watchErr = err
		tr.mu.Unlock()
	}
	for ctx.Err() == nil {
		opts := []client.ListOption{client.InNamespace(namespace), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}}}
		if sel != nil {
			opts = append(opts, client.MatchingFieldsSelector{Selector: sel})
		}
		wi, err := tr.c.Watch(ctx, list, opts...)
		if err != nil {
			if ctx.Err() == nil {
				fail(fmt.Errorf("watching: %w", err))
			}
			return
		}
		for ev := range wi.ResultChan() {
			now := time.Now()
			if ev.Type == watch.Error {
				wi.Stop()
				fail(fmt.Errorf("watching: %v", apierrors.FromObject(ev.Object)))
				return
			}
			obj, ok := ev.Object.(client.Object)
			if !ok {
				continue
			}
			rv = obj.GetResourceVersion()
			switch o := obj.(type) {
			case *ecsv1alpha1.Task:
				if ev.Type != watch.Bookmark {
					tr.observeTask(o, ev.Type == watch.Deleted, now)
					tr.ag.handle(o)
				}
			case *ecsv1alpha1.Service:
				if ev.Type == watch.Added || ev.Type == watch.Modified {
					tr.observeService(o, now)
				}
			}
		}
		wi.Stop()
	}
}

func (tr *tracker) observeTask(t *ecsv1alpha1.Task, deleted bool, at time.Time) {
	if t.Labels[ecsv1alpha1.LabelService] != service {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	rec := tr.tasks[t.Name]
	if rec == nil {
		rec = &taskRec{rev: t.Spec.TaskDefinitionRevision, seen: at}
		tr.tasks[t.Name] = rec
	}
	set := func(tm *time.Time, cond bool) {
		if cond && tm.IsZero() {
			*tm = at
		}
	}
	last, desired := t.Status.LastStatus, t.Spec.DesiredStatus
	set(&rec.bound, t.Spec.ContainerInstance != "")
	set(&rec.running, last == ecsv1alpha1.TaskStateRunning)
	set(&rec.stopReq, desired == ecsv1alpha1.TaskDesiredStopped)
	set(&rec.stopped, last == ecsv1alpha1.TaskStateStopped)
	if c := meta.FindStatusCondition(t.Status.Conditions, ecsv1alpha1.TaskConditionPlaced); c != nil && c.Status == metav1.ConditionFalse {
		rec.unplaced = true
	}

	live := !deleted && desired == ecsv1alpha1.TaskDesiredRunning && last != ecsv1alpha1.TaskStateStopped
	runs := live && last == ecsv1alpha1.TaskStateRunning
	notStopped := !deleted && last != ecsv1alpha1.TaskStateStopped
	delta := func(was, is bool) int {
		switch {
		case is && !was:
			return 1
		case was && !is:
			return -1
		}
		return 0
	}
	tr.live += delta(rec.live, live)
	dRun := delta(rec.runs, runs)
	tr.running += dRun
	tr.runningByRev[rec.rev] += dRun
	tr.notStopped[rec.rev] += delta(rec.notStopped, notStopped)
	rec.live, rec.runs, rec.notStopped = live, runs, notStopped
	if tr.window {
		tr.min, tr.max = min(tr.min, tr.running), max(tr.max, tr.live)
		tr.changes++
	}
}

func (tr *tracker) observeService(svc *ecsv1alpha1.Service, at time.Time) {
	o := svcObs{at: at}
	if len(svc.Status.Deployments) > 0 {
		o.rev, o.state = svc.Status.Deployments[0].TaskDefinitionRevision, svc.Status.Deployments[0].RolloutState
	}
	tr.mu.Lock()
	tr.svcObs = append(tr.svcObs, o)
	tr.mu.Unlock()
}

// startWindow begins checking the bounds at every change.
func (tr *tracker) startWindow(at time.Time) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.window, tr.windowStart = true, at
	tr.min, tr.max = tr.running, tr.live
}

// waitPhase returns when n tasks of rev that should run are RUNNING, no task of old (if any) has
// not STOPPED, and the Service lists rev's deployment first as COMPLETED, logging progress every 5
// seconds.
func (tr *tracker) waitPhase(ctx context.Context, rev, old string, n int, start time.Time, timeout time.Duration) error {
	deadline := start.Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	lastLog := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-tick.C:
			tr.mu.Lock()
			running, oldLeft, err := tr.runningByRev[rev], 0, tr.watchErr
			if old != "" {
				oldLeft = tr.notStopped[old]
			}
			completed := tr.completedAt(rev, start)
			live, all := tr.live, tr.running
			tr.mu.Unlock()
			if err != nil {
				return err
			}
			if running == n && oldLeft == 0 && !completed.IsZero() {
				return nil
			}
			if now.Sub(lastLog) >= 5*time.Second {
				lastLog = now
				logf("%s: %d of %d RUNNING; %d old tasks not STOPPED; service tasks RUNNING %d, live %d; deployment COMPLETED: %v",
					now.Sub(start).Round(time.Second), running, n, oldLeft, all, live, !completed.IsZero())
			}
			if now.After(deadline) {
				return fmt.Errorf("after %s only %d of %d tasks of %s RUNNING, %d tasks of %q not STOPPED, deployment COMPLETED: %v",
					timeout, running, n, rev, oldLeft, old, !completed.IsZero())
			}
		}
	}
}

// completedAt is when the Service was first seen with rev's deployment first and COMPLETED, after
// start. The caller holds tr.mu.
func (tr *tracker) completedAt(rev string, start time.Time) time.Time {
	for _, o := range tr.svcObs {
		if o.at.After(start) && o.rev == rev && o.state == ecsv1alpha1.RolloutStateCompleted {
			return o.at
		}
	}
	return time.Time{}
}

// phase returns the milestones of rev's tasks from start.
func (tr *tracker) phase(rev string, start time.Time) phase {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	p := phase{firstCreated: -1}
	since := func(t time.Time) time.Duration { return t.Sub(start) }
	first := func(cur *time.Duration, t time.Time) {
		if *cur < 0 || since(t) < *cur {
			*cur = since(t)
		}
	}
	for _, rec := range tr.tasks {
		if rec.rev != rev {
			continue
		}
		first(&p.firstCreated, rec.seen)
		p.lastCreated = max(p.lastCreated, since(rec.seen))
		p.lastBound = max(p.lastBound, since(rec.bound))
		if !rec.running.IsZero() {
			p.lastRunning = max(p.lastRunning, since(rec.running))
		}
	}
	p.completed = since(tr.completedAt(rev, start))
	p.total = max(p.lastRunning, p.completed)
	return p
}

// collectRoll fills in what the rollout from old to rev measured.
func (tr *tracker) collectRoll(r *result, rev, old string, start time.Time) {
	r.roll = tr.phase(rev, start)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	since := func(t time.Time) time.Duration { return t.Sub(start) }
	r.stopsFirst = -1
	for _, rec := range tr.tasks {
		switch rec.rev {
		case rev:
			r.placeLat = append(r.placeLat, rec.bound.Sub(rec.seen))
			r.agentLat = append(r.agentLat, rec.running.Sub(rec.bound))
			r.startedSec = addSecond(r.startedSec, since(rec.running))
			if rec.unplaced {
				r.waited++
			}
		case old:
			if r.stopsFirst < 0 || since(rec.stopReq) < r.stopsFirst {
				r.stopsFirst = since(rec.stopReq)
			}
			r.stopsLast = max(r.stopsLast, since(rec.stopReq))
			r.lastStopped = max(r.lastStopped, since(rec.stopped))
			r.stopLat = append(r.stopLat, rec.stopped.Sub(rec.stopReq))
			r.stoppedSec = addSecond(r.stoppedSec, since(rec.stopped))
		}
	}
	r.roll.total = max(r.roll.total, r.lastStopped)
	r.deployment = -1
	for _, o := range tr.svcObs {
		if o.at.After(start) {
			if o.rev == rev && r.deployment < 0 {
				r.deployment = since(o.at)
			}
			if !o.at.After(start.Add(r.roll.total)) {
				r.statusWrites++
			}
		}
	}
	r.watchMin, r.watchMax, r.watchChanges = tr.min, tr.max, tr.changes
}

func addSecond(counts []int, d time.Duration) []int {
	sec := int(d / time.Second)
	for len(counts) <= sec {
		counts = append(counts, 0)
	}
	counts[sec]++
	return counts
}

// timeline divides the rollout into at most 16 slices of whole seconds and counts each step in each.
func timeline(r *result, tr *tracker, rev, old string, start time.Time) []bucket {
	width := max(time.Second, (r.roll.total/16+time.Second-1)/time.Second*time.Second)
	n := int((r.roll.total + width - 1) / width)
	out := make([]bucket, n)
	for i := range out {
		out[i] = bucket{from: time.Duration(i) * width, to: time.Duration(i+1) * width, sampledRunning: -1, sampledLive: -1}
	}
	at := func(t time.Time) *bucket {
		if t.IsZero() || t.Before(start) {
			return nil
		}
		return &out[min(n-1, int(t.Sub(start)/width))]
	}
	tr.mu.Lock()
	for _, rec := range tr.tasks {
		switch rec.rev {
		case rev:
			if b := at(rec.seen); b != nil {
				b.created++
			}
			if b := at(rec.bound); b != nil {
				b.bound++
			}
			if b := at(rec.running); b != nil {
				b.running++
			}
		case old:
			if b := at(rec.stopReq); b != nil {
				b.stopRequested++
			}
			if b := at(rec.stopped); b != nil {
				b.stopped++
			}
		}
	}
	tr.mu.Unlock()
	for _, s := range r.samples {
		if b := at(start.Add(s.at)); b != nil {
			b.sampledRunning, b.sampledLive = s.running, s.total
		}
	}
	return out
}

// agents are the simulated agents of the instances. Each instance's agent reports its tasks one at a
// time, in the order they need it: RUNNING once bound, STOPPED once desiredStatus is STOPPED. Like
// drover-agent it writes a merge patch of the Task's status with a uid precondition. The agents share
// the tracker's watch of every Task (drover-agent watches its own instance's Tasks).
type agents struct {
	c     client.Client
	hosts map[string]*host

	mu       sync.Mutex
	writes   []time.Duration
	failures int
	beats    int
}

// host is one instance's simulated agent.
type host struct {
	name     string
	mu       sync.Mutex
	latest   map[string]*ecsv1alpha1.Task
	reported map[string]ecsv1alpha1.TaskState
	queue    []string
	queued   map[string]bool
	wake     chan struct{}
}

func newAgents(c client.Client, n int) *agents {
	a := &agents{c: c, hosts: map[string]*host{}}
	for i := range n {
		name := harness.InstanceName(i)
		a.hosts[name] = &host{name: name, latest: map[string]*ecsv1alpha1.Task{}, reported: map[string]ecsv1alpha1.TaskState{},
			queued: map[string]bool{}, wake: make(chan struct{}, 1)}
	}
	return a
}

func (a *agents) start(ctx context.Context) {
	for _, h := range a.hosts {
		go a.work(ctx, h)
	}
}

// needs says what the agent has to report of a task, or "" when nothing.
func needs(t *ecsv1alpha1.Task, reported ecsv1alpha1.TaskState) ecsv1alpha1.TaskState {
	switch {
	case t.Status.LastStatus == ecsv1alpha1.TaskStateStopped || reported == ecsv1alpha1.TaskStateStopped:
		return ""
	case t.Spec.DesiredStatus == ecsv1alpha1.TaskDesiredStopped:
		return ecsv1alpha1.TaskStateStopped
	case t.Status.LastStatus != ecsv1alpha1.TaskStateRunning && reported != ecsv1alpha1.TaskStateRunning:
		return ecsv1alpha1.TaskStateRunning
	}
	return ""
}

// handle queues a task seen by the watch on its instance's agent, if it needs a report.
func (a *agents) handle(t *ecsv1alpha1.Task) {
	h := a.hosts[t.Spec.ContainerInstance]
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.latest[t.Name] = t
	if needs(t, h.reported[t.Name]) != "" && !h.queued[t.Name] {
		h.queued[t.Name] = true
		h.queue = append(h.queue, t.Name)
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

func (a *agents) work(ctx context.Context, h *host) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		}
		for ctx.Err() == nil {
			h.mu.Lock()
			if len(h.queue) == 0 {
				h.mu.Unlock()
				break
			}
			name := h.queue[0]
			h.queue = h.queue[1:]
			h.queued[name] = false
			t := h.latest[name]
			state := needs(t, h.reported[name])
			h.mu.Unlock()
			if state == "" {
				continue
			}
			if err := a.report(ctx, t, state); err != nil {
				if ctx.Err() == nil {
					logf("agent of %s: %v", h.name, err)
				}
				time.Sleep(100 * time.Millisecond)
				a.handle(t) // try again
				continue
			}
			h.mu.Lock()
			h.reported[name] = state
			h.mu.Unlock()
		}
	}
}

// report writes the task's new state, as the simulated agents of the tests do.
func (a *agents) report(ctx context.Context, t *ecsv1alpha1.Task, state ecsv1alpha1.TaskState) error {
	now := metav1.Now()
	st := map[string]any{"lastStatus": state}
	switch state {
	case ecsv1alpha1.TaskStateRunning:
		st["healthStatus"], st["startedAt"] = ecsv1alpha1.HealthStatusUnknown, now
	case ecsv1alpha1.TaskStateStopped:
		st["stoppedAt"], st["executionStoppedAt"] = now, now
		if t.Status.StopCode == "" {
			st["stopCode"] = ecsv1alpha1.StopCodeServiceSchedulerInitiated
		}
		if t.Status.StoppedReason == "" {
			st["stoppedReason"] = "Task stopped as requested"
		}
	}
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": t.UID}, "status": st})
	if err != nil {
		return err
	}
	obj := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: t.Name}}
	t0 := time.Now()
	err = a.c.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, body))
	took := time.Since(t0)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		return nil // gone, or a new Task of the same name
	case err != nil:
		a.failures++
		return fmt.Errorf("reporting task %s %s: %w", t.Name, state, err)
	}
	a.writes = append(a.writes, took)
	return nil
}

// heartbeats renews the instances' Leases, each every interval, spread evenly over the interval.
func (a *agents) heartbeats(ctx context.Context, every time.Duration) {
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range a.hosts {
			if !yield(name) {
				return
			}
		}
	})
	tick := time.NewTicker(every / time.Duration(len(names)))
	defer tick.Stop()
	for i := 0; ; i = (i + 1) % len(names) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		go func(name string) {
			lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
			body := fmt.Appendf(nil, `{"spec":{"renewTime":%q}}`, metav1.NowMicro().Format(metav1.RFC3339Micro))
			if err := a.c.Patch(ctx, lease, client.RawPatch(types.MergePatchType, body)); err != nil {
				if ctx.Err() == nil {
					logf("renewing Lease %s: %v", name, err)
				}
				return
			}
			a.mu.Lock()
			a.beats++
			a.mu.Unlock()
		}(names[i])
	}
}

// counts marks where the status writes and Lease renewals so far end.
func (a *agents) counts() (writes, beats int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.writes), a.beats
}

// since returns the status writes' latencies and the Lease renewals after counts returned writes and beats.
func (a *agents) since(writes, beats int) ([]time.Duration, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.writes[writes:]), a.beats - beats
}

func (r *result) markdown(f flags) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	ms := harness.Ms
	floor := int(math.Ceil(float64(f.tasks) * float64(f.minHealthy) / 100))
	ceiling := f.tasks * f.maxPercent / 100
	bound := func(ok bool) string {
		if ok {
			return "within bounds"
		}
		return "**out of bounds**"
	}
	minSample, maxSample, sampleGaps := math.MaxInt, 0, time.Duration(0)
	var listTook []time.Duration
	for i, s := range r.samples {
		minSample, maxSample = min(minSample, s.running), max(maxSample, s.total)
		listTook = append(listTook, s.took)
		if i > 0 {
			sampleGaps = max(sampleGaps, s.at-r.samples[i-1].at)
		}
	}
	roll := r.roll.total
	w("## Rolling a service (droverd with controllers, simulated agents)")
	w("")
	w("Machine: %s. Load average %s before, %s after.", r.machine, r.loadBefore, r.loadAfter)
	w("")
	w("A REPLICA service of %d tasks on %d instances (room for %d tasks each, %d in all; agentVersion %s), minimumHealthyPercent %d, maximumPercent %d. Heartbeats: %s.",
		f.tasks, f.instances, r.slots, r.slots*f.instances, agentVersion, f.minHealthy, f.maxPercent, heartbeatMode(f.heartbeat))
	w("")
	w("| figure | value |")
	w("| --- | --- |")
	w("| register and connect %d instances | %s |", f.instances, ms(r.instanceSetup))
	w("| **Service created to steady state** (%d RUNNING, deployment COMPLETED) | **%s** |", f.tasks, ms(r.up.total))
	w("| ... first task / last task created by the service controller | %s / %s (%.0f creates/s) |", ms(r.up.firstCreated), ms(r.up.lastCreated),
		rate(f.tasks, r.up.lastCreated-r.up.firstCreated))
	w("| ... last task bound / last task RUNNING / deployment COMPLETED | %s / %s / %s |", ms(r.up.lastBound), ms(r.up.lastRunning), ms(r.up.completed))
	w("| **TaskDefinition updated to rollout done** (%d new RUNNING, old all STOPPED, deployment COMPLETED) | **%s** |", f.tasks, ms(roll))
	w("| goal: %d tasks rolled in under 30 s | %s |", f.tasks, map[bool]string{true: "met", false: "**missed**"}[roll < 30*time.Second])
	w("| new deployment first in status.deployments | %s |", ms(r.deployment))
	w("| first / last new task created | %s / %s (%.0f creates/s) |", ms(r.roll.firstCreated), ms(r.roll.lastCreated), rate(f.tasks, r.roll.lastCreated-r.roll.firstCreated))
	w("| first / last old task told to stop | %s / %s |", ms(r.stopsFirst), ms(r.stopsLast))
	w("| last new task bound / RUNNING | %s / %s |", ms(r.roll.lastBound), ms(r.roll.lastRunning))
	w("| last old task STOPPED / deployment COMPLETED | %s / %s |", ms(r.lastStopped), ms(r.roll.completed))
	w("| tasks started/s (new RUNNING), average / busiest second | %.0f / %d |", rate(f.tasks, r.roll.lastRunning), slices.Max(r.startedSec))
	w("| tasks stopped/s (old STOPPED), average / busiest second | %.0f / %d |", rate(f.tasks, r.lastStopped), slices.Max(r.stoppedSec))
	if len(r.samples) > 0 {
		w("| min RUNNING (of tasks that should run), List every %s (n=%d, longest gap %s) | %d (floor %d: %s) |", f.sampleEvery, len(r.samples), ms(sampleGaps),
			minSample, floor, bound(minSample >= floor))
		w("| max total (should run, not STOPPED), same samples | %d (ceiling %d: %s) |", maxSample, ceiling, bound(maxSample <= ceiling))
	} else {
		w("| min RUNNING / max total, sampled by List | not sampled (--sample-interval 0) |")
	}
	w("| min RUNNING / max total at every change the Task watch showed (n=%d) | %d / %d (%s) |", r.watchChanges, r.watchMin, r.watchMax,
		bound(r.watchMin >= floor && r.watchMax <= ceiling))
	if len(listTook) > 0 {
		w("| one List of the service's tasks, p50 / max | %s / %s |", ms(harness.Quantile(listTook, 0.5)), ms(harness.Quantile(listTook, 1)))
	}
	w("| new task created to bound (placement), p50 / p90 / max | %s / %s / %s |", ms(harness.Quantile(r.placeLat, 0.5)), ms(harness.Quantile(r.placeLat, 0.9)), ms(slices.Max(r.placeLat)))
	w("| new task bound to RUNNING (simulated agent), p50 / p90 / max | %s / %s / %s |", ms(harness.Quantile(r.agentLat, 0.5)), ms(harness.Quantile(r.agentLat, 0.9)), ms(slices.Max(r.agentLat)))
	w("| old task told to stop to STOPPED (simulated agent), p50 / p90 / max | %s / %s / %s |", ms(harness.Quantile(r.stopLat, 0.5)), ms(harness.Quantile(r.stopLat, 0.9)), ms(slices.Max(r.stopLat)))
	w("| new tasks refused placement at first (Placed False) | %d |", r.waited)
	w("| simulated agents' status writes, n / p50 / p90 | %d / %s / %s |", len(r.agentWrites), harness.Msf(harness.Quantile(r.agentWrites, 0.5)), harness.Msf(harness.Quantile(r.agentWrites, 0.9)))
	if f.heartbeat > 0 {
		w("| Lease renewals during the rollout | %d |", r.heartbeats)
	}
	w("| Service status changes seen during the rollout | %d |", r.statusWrites)
	var reqs []string
	for _, rc := range r.requests {
		if rc.n > 0 {
			reqs = append(reqs, fmt.Sprintf("%s %.0f", rc.method, rc.n))
		}
	}
	w("| requests of droverd's controllers (and their events) during the rollout | %s |", strings.Join(reqs, ", "))
	w("| droverd CPU during the rollout | %.2f cores |", r.cores)
	w("| droverd RSS during the rollout, most sampled / at the end | %s / %s |", procinfo.MiB(r.rssMaxKB), r.rssEnd)
	w("")
	w("Timeline of the rollout: what was first seen in each slice (new tasks created, bound, RUNNING; old tasks told to")
	w("stop, STOPPED), and the last List sample in it (RUNNING / total that should run).")
	w("")
	w("| from | created | bound | RUNNING | told to stop | STOPPED | sampled RUNNING / total |")
	w("| --- | --- | --- | --- | --- | --- | --- |")
	for _, bk := range r.timeline {
		s := "-"
		if bk.sampledRunning >= 0 {
			s = fmt.Sprintf("%d / %d", bk.sampledRunning, bk.sampledLive)
		}
		w("| %s-%s | %d | %d | %d | %d | %d | %s |", secs(bk.from), secs(bk.to), bk.created, bk.bound, bk.running, bk.stopRequested, bk.stopped, s)
	}
	w("")
	w("Controllers during the rollout (%s): passes and time inside Reconcile.", ms(roll))
	w("")
	w("| controller | passes | busy | busy / wall | average pass |")
	w("| --- | --- | --- | --- | --- |")
	for _, l := range r.controllers {
		w("| %s | %.0f | %s | %.0f%% | %s |", l.Name, l.Passes, ms(l.Busy), 100*l.Busy.Seconds()/roll.Seconds(),
			harness.Msf(time.Duration(float64(l.Busy)/l.Passes)))
	}
	if r.profile != "" {
		w("")
		w("CPU profile of droverd (first %d s of the rollout): %s (go tool pprof -top %s)", f.profileSecs, r.profile, r.profile)
	}
	return b.String()
}

func heartbeatMode(every time.Duration) string {
	if every == 0 {
		return "each Lease written once, renewed past the end of the run"
	}
	return fmt.Sprintf("every Lease renewed every %s", every)
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return math.Inf(1)
	}
	return float64(n) / d.Seconds()
}

func secs(d time.Duration) string { return fmt.Sprintf("%.0f s", d.Seconds()) }
