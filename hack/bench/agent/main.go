// Command agent benchmarks drover-agent running Tasks on the local Docker Engine: the agent's
// resident memory and CPU with no task and with --tasks running containers, the time from a Task
// being bound to the agent's instance until the agent reports it RUNNING (for --tasks started at
// once and for one task started alone), and the time to stop them.
//
// It starts droverd as a child process (controllers on: they resolve and place the Tasks) on free
// loopback ports with a temporary data dir, creates an activation with the drover binary, registers
// a host with `drover-agent register` and runs `drover-agent run --image-pull-behavior
// prefer-cached` against the Docker Engine at DOCKER_HOST (or its default socket). The tasks run
// the end-to-end test image (./test/images/testapp), built when the engine does not have it, so no
// registry is needed and every start uses a cached image. Each task is one container with a
// --memory limit (32 MiB) and container port 8080 published on a port Docker chooses. As a floor
// for the agent's figures, the same containers are first started straight through the Docker API.
//
// Times come from a watch of the Tasks in this process: when it first saw spec.containerInstance
// (bound) and status.lastStatus PENDING, RUNNING or STOPPED. The API's timestamps (the Placed
// condition, status.startedAt) have one-second resolution, too coarse for these figures. The
// agent's CPU is utime+stime from /proc/<pid>/stat over a window, its memory VmRSS (with RssAnon
// and RssFile) from /proc/<pid>/status, sampled every second, and split by mapping from
// /proc/<pid>/smaps at the end of a window. Every container the agent or the benchmark created is
// removed at the end, also when the benchmark fails or is interrupted. The report is markdown on
// stdout. Without a Docker Engine the benchmark reports that it skipped.
//
//	go run ./hack/bench/agent --droverd ./bin/droverd [--tasks 20] [--singles 5] [--settle 30s] \
//	    [--window 30s] [--docker-baseline 5] [--agent-env GOGC=50] [--out FILE]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	dockerclient "github.com/moby/moby/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/hack/bench/internal/harness"
	"github.com/drover-dev/drover/hack/bench/internal/procinfo"
	"github.com/drover-dev/drover/internal/agent/engine"
	"github.com/drover-dev/drover/internal/manager"
	"github.com/drover-dev/drover/test/framework"
)

const (
	// benchLabel marks the containers the benchmark creates itself, for the Docker baseline.
	benchLabel     = "drover.bench"
	namespace      = metav1.NamespaceDefault
	cluster        = "bench"
	taskDefinition = "bench-app"
	// goalRSSMiB is the agent's memory goal.
	goalRSSMiB = 40
)

type flags struct {
	droverd, drover, agent string
	tasks, singles         int
	baseline               int
	memory                 int
	heartbeat              time.Duration
	settle, window         time.Duration
	loadedSettle           time.Duration
	timeout                time.Duration
	readyTimeout           time.Duration
	agentEnv               []string
	out                    string
	keepDataDir            bool
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	var f flags
	var env stringList
	flag.StringVar(&f.droverd, "droverd", "./bin/droverd", "droverd binary (make build puts it in ./bin)")
	flag.StringVar(&f.drover, "drover", "", "drover binary, to create the activation (default: beside --droverd)")
	flag.StringVar(&f.agent, "agent", "", "drover-agent binary to benchmark (default: beside --droverd)")
	flag.IntVar(&f.tasks, "tasks", 20, "tasks started at once, each one container")
	flag.IntVar(&f.singles, "singles", 5, "tasks started alone, one after the other, before the others")
	flag.IntVar(&f.baseline, "docker-baseline", 5, "containers started alone straight through the Docker API before the agent runs, then --tasks more 4 at a time, as a floor for the agent's figures (0 skips both)")
	flag.IntVar(&f.memory, "memory", 32, "memory limit of each container, MiB")
	flag.DurationVar(&f.heartbeat, "heartbeat", 5*time.Second, "the agent's --heartbeat-interval (its default is 5s)")
	flag.DurationVar(&f.settle, "settle", 30*time.Second, "wait after the agent connected before the idle window")
	flag.DurationVar(&f.window, "window", 30*time.Second, "length of the idle and of the loaded measurement windows")
	flag.DurationVar(&f.loadedSettle, "loaded-settle", 10*time.Second, "wait after every task is RUNNING before the loaded window")
	flag.DurationVar(&f.timeout, "timeout", 3*time.Minute, "give up when tasks are not RUNNING or STOPPED within this")
	flag.DurationVar(&f.readyTimeout, "ready-timeout", 3*time.Minute, "give up when droverd is not ready within this")
	flag.Var(&env, "agent-env", "KEY=VALUE added to the agent's environment, for example GOMEMLIMIT=20MiB or GOGC=50 (repeatable)")
	flag.StringVar(&f.out, "out", "", "also write the report to this file")
	flag.BoolVar(&f.keepDataDir, "keep-data-dir", false, "keep the temporary directory (droverd's data dir, the agent's state and both logs)")
	flag.Parse()
	f.agentEnv = env
	if f.tasks < 1 || f.singles < 0 || f.baseline < 0 || f.memory < 6 {
		fatalf("--tasks must be positive, --singles and --docker-baseline not negative, --memory at least 6 (MiB)")
	}
	if f.window < time.Second || f.settle < 0 || f.loadedSettle < 0 {
		fatalf("--window must be at least 1s, --settle and --loaded-settle not negative")
	}
	for _, kv := range f.agentEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			fatalf("--agent-env %q: want KEY=VALUE", kv)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, f)
	stop()
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "agent: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// report collects the figures.
type report struct {
	machine               []string
	command               string
	loadBefore, loadAfter string
	dockerVersion         string
	image                 string
	agentSize             int64
	agentEnv              []string

	droverdStartup time.Duration
	connect        time.Duration // agent exec to instance connected with its resources

	direct      []directRun // containers started alone through the Docker API
	directBatch time.Duration

	idle window

	singles []*timeline

	batchWall time.Duration // first create to last RUNNING
	batch     []*timeline
	httpOK    int
	loaded    window

	stopWall    time.Duration // first stop request to last STOPPED
	afterStop   sample
	agentExit   time.Duration
	watchRelist int
}

func run(ctx context.Context, f flags) error {
	bins, err := binaries(f)
	if err != nil {
		return err
	}
	r := &report{machine: procinfo.Machine(), command: commandLine(), loadBefore: procinfo.LoadAvg(), agentEnv: f.agentEnv}
	if st, err := os.Stat(bins.agent); err == nil {
		r.agentSize = st.Size()
	}
	logf("machine: %s; load average %s", strings.Join(r.machine, "; "), r.loadBefore)

	docker, err := dockerclient.New(dockerclient.FromEnv)
	if err != nil {
		return fmt.Errorf("creating a Docker client (check DOCKER_HOST): %w", err)
	}
	defer docker.Close()
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	v, err := docker.ServerVersion(vctx, dockerclient.ServerVersionOptions{})
	cancel()
	if err != nil {
		// As the end-to-end tests skip: `make bench` on a machine without Docker runs the others.
		logf("no Docker Engine answers at %s (%v); skipping", docker.DaemonHost(), err)
		fmt.Printf("## Agent: tasks on Docker\n\nSkipped: no Docker Engine answered at %s.\n", docker.DaemonHost())
		return nil
	}
	r.dockerVersion = v.Version
	logf("building or finding the test image (Docker Engine %s)", v.Version)
	if r.image, err = framework.BuildTestImage(ctx); err != nil {
		return err
	}
	logf("image %s", r.image)

	dir, err := os.MkdirTemp("", "drover-bench-agent-")
	if err != nil {
		return err
	}
	if f.keepDataDir {
		logf("keeping %s (droverd's data dir, the agent's state dir and the logs)", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	dataDir := filepath.Join(dir, "droverd")
	// Its log is dataDir.log, that is dir/droverd.log.
	d, err := harness.StartDroverdWith(ctx, bins.droverd, dataDir, harness.Options{Timeout: f.readyTimeout, PollEvery: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	defer d.Stop()
	r.droverdStartup = d.Startup.Ready
	logf("droverd ready in %s (pid %d)", ms(r.droverdStartup), d.PID())

	c, wc, kubeconfig, err := adminClient(dataDir)
	if err != nil {
		return err
	}
	if err := c.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cluster, Namespace: namespace}}); err != nil {
		return fmt.Errorf("creating the cluster: %w", err)
	}

	// Register with the real binaries, as a host does.
	stateDir := filepath.Join(dir, "agent")
	ci, err := registerHost(ctx, bins, kubeconfig, stateDir)
	if err != nil {
		return err
	}
	instanceLabel := ci.Namespace + "/" + ci.ContainerInstance
	logf("registered as container instance %s", instanceLabel)

	a := &agentProc{bin: bins.agent, stateDir: stateDir, logPath: filepath.Join(dir, "agent.log"), heartbeat: f.heartbeat, env: f.agentEnv}
	// Whatever happens from here, stop the agent and remove its containers. Deferred after droverd's
	// stop, so it runs before it.
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if a.cmd != nil && !a.exitedEarly() {
			if _, err := a.stop(30 * time.Second); err != nil {
				logf("stopping the agent: %v", err)
			}
		}
		n, err := removeContainers(cctx, docker, instanceLabel)
		if err != nil {
			logf("removing the agent's containers: %v", err)
		}
		logf("removed %d containers of %s", n, instanceLabel)
	}()

	if f.baseline > 0 {
		logf("Docker baseline: %d containers alone, then %d, 4 at a time", f.baseline, f.tasks)
		if r.direct, r.directBatch, err = dockerBaseline(ctx, docker, r.image, f); err != nil {
			return err
		}
		logf("Docker baseline: create+start p50 %s alone, %d in %s", ms(pct(directTimes(r.direct, false), 0.5)), f.tasks, ms(r.directBatch))
	}

	w := newWatcher()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go w.run(wctx, wc)
	select {
	case <-w.ready:
	case <-time.After(30 * time.Second):
		return errors.New("the benchmark's Task watch did not start within 30s")
	case <-ctx.Done():
		return ctx.Err()
	}

	t0 := time.Now()
	if err := a.start(); err != nil {
		return err
	}
	if err := waitConnected(ctx, c, ci.ContainerInstance, time.Minute, a); err != nil {
		return err
	}
	r.connect = time.Since(t0)
	logf("agent (pid %d) connected %s after exec", a.pid(), ms(r.connect))

	if err := createDefinition(ctx, c, r.image, f.memory); err != nil {
		return err
	}

	// 1. Idle, no task.
	logf("settling %s, then measuring the idle agent for %s", f.settle, f.window)
	if !sleepCtx(ctx, f.settle) {
		return ctx.Err()
	}
	if r.idle, err = measure(ctx, a.pid(), f.window); err != nil {
		return err
	}
	logf("idle: RSS %s, CPU %.2f%% of a core", procinfo.MiB(r.idle.end.rss), 100*r.idle.cores)

	// 2. One task at a time.
	for i := range f.singles {
		name := fmt.Sprintf("single-%d", i)
		if err := createTasks(ctx, c, w, []string{name}); err != nil {
			return err
		}
		if err := w.wait(ctx, []string{name}, "RUNNING", f.timeout, isRunning, a); err != nil {
			return err
		}
		// Stopped once the app answers: an app that has not installed its SIGTERM handler yet
		// ignores SIGTERM as PID 1, and the stop would take the stop timeout.
		if checkHTTP([]*timeline{w.get(name)}) != 1 {
			return fmt.Errorf("task %s is RUNNING but its container does not answer HTTP", name)
		}
		if err := stopTasks(ctx, c, w, []string{name}); err != nil {
			return err
		}
		if err := w.wait(ctx, []string{name}, "STOPPED", f.timeout, isStopped, a); err != nil {
			return err
		}
		tl := w.get(name)
		r.singles = append(r.singles, tl)
		logf("%s: bound -> RUNNING %s, created -> RUNNING %s, stop -> STOPPED %s", name,
			ms(tl.running.Sub(tl.bound)), ms(tl.running.Sub(tl.created)), ms(tl.stopped.Sub(tl.stopRequested)))
		if !sleepCtx(ctx, 2*time.Second) {
			return ctx.Err()
		}
	}

	// 3. --tasks at once.
	names := make([]string, f.tasks)
	for i := range names {
		names[i] = fmt.Sprintf("batch-%02d", i)
	}
	logf("starting %d tasks at once", f.tasks)
	start := time.Now()
	if err := createTasks(ctx, c, w, names); err != nil {
		return err
	}
	if err := w.wait(ctx, names, "RUNNING", f.timeout, isRunning, a); err != nil {
		return err
	}
	for _, n := range names {
		tl := w.get(n)
		r.batch = append(r.batch, tl)
		r.batchWall = max(r.batchWall, tl.running.Sub(start))
	}
	logf("%d tasks RUNNING %s after the first create", f.tasks, ms(r.batchWall))
	running, err := countContainers(ctx, docker, instanceLabel, true)
	if err != nil {
		return err
	}
	if running != f.tasks {
		return fmt.Errorf("%d tasks are RUNNING but the engine runs %d containers of the instance", f.tasks, running)
	}
	r.httpOK = checkHTTP(r.batch)
	logf("%d of %d containers answered HTTP on their host port", r.httpOK, f.tasks)
	if !sleepCtx(ctx, f.loadedSettle) {
		return ctx.Err()
	}
	if r.loaded, err = measure(ctx, a.pid(), f.window); err != nil {
		return err
	}
	logf("%d running: RSS %s, CPU %.2f%% of a core", f.tasks, procinfo.MiB(r.loaded.end.rss), 100*r.loaded.cores)

	// 4. Stop them all.
	logf("stopping the %d tasks", f.tasks)
	stopStart := time.Now()
	if err := stopTasks(ctx, c, w, names); err != nil {
		return err
	}
	if err := w.wait(ctx, names, "STOPPED", f.timeout, isStopped, a); err != nil {
		return err
	}
	r.batch = r.batch[:0]
	for _, n := range names {
		tl := w.get(n)
		r.batch = append(r.batch, tl)
		r.stopWall = max(r.stopWall, tl.stopped.Sub(stopStart))
	}
	logf("all STOPPED %s after the first stop request", ms(r.stopWall))
	if !sleepCtx(ctx, 10*time.Second) {
		return ctx.Err()
	}
	if r.afterStop, err = readStatus(a.pid()); err != nil {
		return err
	}
	r.watchRelist = w.relists()

	if r.agentExit, err = a.stop(30 * time.Second); err != nil {
		return err
	}
	r.loadAfter = procinfo.LoadAvg()
	out := r.markdown(f)
	fmt.Print(out)
	if f.out != "" {
		return os.WriteFile(f.out, []byte(out), 0o644)
	}
	return nil
}

type bins struct{ droverd, drover, agent string }

func binaries(f flags) (bins, error) {
	var b bins
	var err error
	if b.droverd, err = filepath.Abs(f.droverd); err != nil {
		return b, err
	}
	dir := filepath.Dir(b.droverd)
	b.drover, b.agent = f.drover, f.agent
	if b.drover == "" {
		b.drover = filepath.Join(dir, "drover")
	}
	if b.agent == "" {
		b.agent = filepath.Join(dir, "drover-agent")
	}
	for _, p := range []*string{&b.drover, &b.agent} {
		if *p, err = filepath.Abs(*p); err != nil {
			return b, err
		}
	}
	for _, p := range []string{b.droverd, b.drover, b.agent} {
		if _, err := os.Stat(p); err != nil {
			return b, fmt.Errorf("%w (run make build first)", err)
		}
	}
	return b, nil
}

// adminClient loads droverd's admin kubeconfig. Requests time out after a minute, except with the
// watch client, whose watches last as long as the server lets them.
func adminClient(dataDir string) (c, watcher client.WithWatch, kubeconfig string, err error) {
	kubeconfig = filepath.Join(dataDir, "admin.kubeconfig")
	cfg, err := harness.AdminConfig(dataDir, "drover-bench")
	if err != nil {
		return nil, nil, "", err
	}
	if watcher, err = client.NewWithWatch(cfg, client.Options{Scheme: manager.Scheme}); err != nil {
		return nil, nil, "", err
	}
	cfg.Timeout = time.Minute
	c, err = client.NewWithWatch(cfg, client.Options{Scheme: manager.Scheme})
	return c, watcher, kubeconfig, err
}

// registration is the part of the agent's config.json the benchmark needs.
type registration struct {
	Namespace         string `json:"namespace"`
	ContainerInstance string `json:"containerInstance"`
}

// registerHost creates an activation with `drover activation create` and registers a host with
// `drover-agent register`, passing the code in the environment as the docs advise.
func registerHost(ctx context.Context, b bins, kubeconfig, stateDir string) (registration, error) {
	var ci registration
	cmd := exec.CommandContext(ctx, b.drover, "activation", "create", "--kubeconfig", kubeconfig, "--cluster", cluster, "-o", "json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return ci, fmt.Errorf("drover activation create: %w\n%s", err, stderr.String())
	}
	var act struct {
		ActivationID   string `json:"activationId"`
		ActivationCode string `json:"activationCode"`
		Server         string `json:"server"`
		CACertHash     string `json:"caCertHash"`
	}
	if err := json.Unmarshal(out, &act); err != nil {
		return ci, fmt.Errorf("drover activation create printed %q: %w", out, err)
	}
	cmd = exec.CommandContext(ctx, b.agent, "register", "--server", act.Server, "--ca-cert-hash", act.CACertHash,
		"--activation-id", act.ActivationID, "--state-dir", stateDir, "--hostname", "bench-agent")
	cmd.Env = append(os.Environ(), "DROVER_ACTIVATION_CODE="+act.ActivationCode)
	if out, err := cmd.CombinedOutput(); err != nil {
		return ci, fmt.Errorf("drover-agent register: %w\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(stateDir, "config.json"))
	if err != nil {
		return ci, fmt.Errorf("reading the registration: %w", err)
	}
	if err := json.Unmarshal(data, &ci); err != nil || ci.ContainerInstance == "" || ci.Namespace == "" {
		return ci, fmt.Errorf("no container instance in %s/config.json: %s (%v)", stateDir, data, err)
	}
	return ci, nil
}

// waitConnected waits until the instance is marked connected and reports its resources.
func waitConnected(ctx context.Context, c client.Client, name string, timeout time.Duration, a *agentProc) error {
	deadline := time.Now().Add(timeout)
	for {
		ci := &ecsv1alpha1.ContainerInstance{}
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, ci)
		if err == nil && ci.Status.AgentConnected && ci.Status.RegisteredResources != nil {
			return nil
		}
		if a.exitedEarly() {
			return fmt.Errorf("the agent exited; log %s:\n%s", a.logPath, harness.TailFile(a.logPath, 3000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("instance %s not connected within %s (last error %v); agent log:\n%s", name, timeout, err, harness.TailFile(a.logPath, 3000))
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// createDefinition creates the task definition every task runs, and waits until a task of it can be
// created (the definition has a revision).
func createDefinition(ctx context.Context, c client.Client, image string, memory int) error {
	td := &ecsv1alpha1.TaskDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: taskDefinition, Namespace: namespace},
		Spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
			Name: "app", Image: image, Memory: ptr.To(int32(memory)),
			PortMappings: []ecsv1alpha1.PortMapping{{ContainerPort: 8080}},
		}}},
	}
	if err := c.Create(ctx, td); err != nil {
		return fmt.Errorf("creating the task definition: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.Get(ctx, client.ObjectKeyFromObject(td), td)
		if err == nil && td.Status.LatestRevision > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("task definition %s has no revision after 30s (%v)", taskDefinition, err)
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// createTasks creates the named tasks, all at once, recording when each create was sent.
func createTasks(ctx context.Context, c client.Client, w *watcher, names []string) error {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			task := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
				Spec: ecsv1alpha1.TaskSpec{Cluster: cluster, TaskDefinition: taskDefinition}}
			w.mark(name, func(tl *timeline) { tl.created = time.Now() })
			if err := c.Create(ctx, task); err != nil {
				errs[i] = fmt.Errorf("creating task %s: %w", name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopTasks sets desiredStatus STOPPED on the named tasks, all at once.
func stopTasks(ctx context.Context, c client.Client, w *watcher, names []string) error {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"desiredStatus":"STOPPED"}}`))
	for i, name := range names {
		wg.Go(func() {
			task := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
			w.mark(name, func(tl *timeline) { tl.stopRequested = time.Now() })
			if err := c.Patch(ctx, task, patch); err != nil {
				errs[i] = fmt.Errorf("stopping task %s: %w", name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// checkHTTP counts the tasks whose container answers HTTP 200 on its host port within 10 s (RUNNING
// means the container runs; the app in it may take a moment to listen).
func checkHTTP(tls []*timeline) int {
	ok := 0
	for _, tl := range tls {
		if tl.hostPort == 0 {
			logf("%s: no host port in its status", tl.name)
			continue
		}
		if err := waitHTTP(int(tl.hostPort), 10*time.Second); err != nil {
			logf("%s: %v", tl.name, err)
			continue
		}
		ok++
	}
	return ok
}

// waitHTTP waits until http://127.0.0.1:port/ answers 200.
func waitHTTP(port int, timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	var last error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := hc.Get(url)
		if err != nil {
			last = err
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return fmt.Errorf("%s did not answer within %s: %w", url, timeout, last)
}

// timeline is what the benchmark saw of one task, in its own clock.
type timeline struct {
	name          string
	created       time.Time // the create request was sent
	bound         time.Time // spec.containerInstance first seen
	pending       time.Time // status.lastStatus PENDING first seen
	running       time.Time // status.lastStatus RUNNING first seen
	stopRequested time.Time // the desiredStatus STOPPED patch was sent
	stopped       time.Time // status.lastStatus STOPPED first seen
	lastStatus    ecsv1alpha1.TaskState
	stoppedReason string
	hostPort      int32
}

func isRunning(tl *timeline) bool { return !tl.running.IsZero() }
func isStopped(tl *timeline) bool { return !tl.stopped.IsZero() }

// watcher watches the Tasks of the namespace and records when each reached each step.
type watcher struct {
	mu      sync.Mutex
	tasks   map[string]*timeline
	changed chan struct{}
	ready   chan struct{}
	relist  int
}

func newWatcher() *watcher {
	return &watcher{tasks: map[string]*timeline{}, changed: make(chan struct{}), ready: make(chan struct{})}
}

func (w *watcher) entry(name string) *timeline {
	tl := w.tasks[name]
	if tl == nil {
		tl = &timeline{name: name}
		w.tasks[name] = tl
	}
	return tl
}

func (w *watcher) mark(name string, f func(*timeline)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(w.entry(name))
}

// get returns a copy of the task's timeline.
func (w *watcher) get(name string) *timeline {
	w.mu.Lock()
	defer w.mu.Unlock()
	tl := *w.entry(name)
	return &tl
}

func (w *watcher) relists() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.relist
}

func (w *watcher) observe(t *ecsv1alpha1.Task, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	tl := w.entry(t.Name)
	if t.Spec.ContainerInstance != "" && tl.bound.IsZero() {
		tl.bound = now
	}
	tl.lastStatus = t.Status.LastStatus
	switch t.Status.LastStatus {
	case ecsv1alpha1.TaskStatePending:
		if tl.pending.IsZero() {
			tl.pending = now
		}
	case ecsv1alpha1.TaskStateRunning:
		if tl.running.IsZero() {
			tl.running = now
		}
	case ecsv1alpha1.TaskStateStopped:
		if tl.stopped.IsZero() {
			tl.stopped = now
		}
		tl.stoppedReason = t.Status.StoppedReason
	}
	for _, cs := range t.Status.Containers {
		for _, b := range cs.NetworkBindings {
			if b.ContainerPort == 8080 && b.HostPort != 0 {
				tl.hostPort = b.HostPort
			}
		}
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// run lists the Tasks and watches them from the list's resourceVersion, listing again whenever the
// watch ends, until ctx ends.
func (w *watcher) run(ctx context.Context, c client.WithWatch) {
	first := true
	for ctx.Err() == nil {
		list := &ecsv1alpha1.TaskList{}
		if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
			logf("listing tasks: %v", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		now := time.Now()
		for i := range list.Items {
			w.observe(&list.Items[i], now)
		}
		if first {
			close(w.ready)
			first = false
		} else {
			w.mu.Lock()
			w.relist++
			w.mu.Unlock()
		}
		wi, err := c.Watch(ctx, &ecsv1alpha1.TaskList{}, client.InNamespace(namespace),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			logf("watching tasks: %v", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		for ev := range wi.ResultChan() {
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			if t, ok := ev.Object.(*ecsv1alpha1.Task); ok {
				w.observe(t, time.Now())
			}
		}
		wi.Stop()
	}
}

// wait waits until ok holds for every named task. A task that stops while waiting for another
// state fails the wait with its reason.
func (w *watcher) wait(ctx context.Context, names []string, what string, timeout time.Duration, ok func(*timeline) bool, a *agentProc) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		var missing []string
		var failed []string
		for _, n := range names {
			tl := w.entry(n)
			if ok(tl) {
				continue
			}
			missing = append(missing, fmt.Sprintf("%s (%s)", n, tl.lastStatus))
			if !tl.stopped.IsZero() {
				failed = append(failed, fmt.Sprintf("%s: %s", n, tl.stoppedReason))
			}
		}
		changed := w.changed
		w.mu.Unlock()
		if len(missing) == 0 {
			return nil
		}
		if len(failed) > 0 {
			return fmt.Errorf("tasks stopped before they were %s: %s", what, strings.Join(failed, "; "))
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-a.exited:
			return fmt.Errorf("the agent exited while tasks were not %s; log %s:\n%s", what, a.logPath, harness.TailFile(a.logPath, 3000))
		case <-deadline.C:
			return fmt.Errorf("%d tasks not %s after %s: %s; agent log:\n%s", len(missing), what, timeout,
				strings.Join(missing, ", "), harness.TailFile(a.logPath, 3000))
		}
	}
}

// directRun is one container created, started and stopped through the Docker API.
type directRun struct{ create, start, stop time.Duration }

func directTimes(runs []directRun, withStop bool) []time.Duration {
	var ds []time.Duration
	for _, r := range runs {
		if withStop {
			ds = append(ds, r.stop)
		} else {
			ds = append(ds, r.create+r.start)
		}
	}
	return ds
}

// dockerBaseline creates and starts containers as the agent does (same image, memory limit, port
// mapping and restart policy), but straight through the Docker API: f.baseline alone, each stopped
// and removed before the next, then f.tasks with 4 at a time (the engine's workers). It removes
// every container it created.
func dockerBaseline(ctx context.Context, docker *dockerclient.Client, image string, f flags) ([]directRun, time.Duration, error) {
	label := fmt.Sprintf("agent-baseline-%d", os.Getpid())
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		list, err := docker.ContainerList(cctx, dockerclient.ContainerListOptions{All: true,
			Filters: dockerclient.Filters{}.Add("label", benchLabel+"="+label)})
		if err != nil {
			logf("listing the baseline's containers: %v", err)
			return
		}
		for _, c := range list.Items {
			_, _ = docker.ContainerRemove(cctx, c.ID, dockerclient.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		}
	}()
	port, err := network.ParsePort("8080/tcp")
	if err != nil {
		return nil, 0, err
	}
	create := func() (string, error) {
		stop := 30
		cfg := &container.Config{Image: image, Labels: map[string]string{benchLabel: label, framework.TestLabel: "1"},
			ExposedPorts: network.PortSet{port: {}}, StopTimeout: &stop}
		hc := &container.HostConfig{
			NetworkMode:   "bridge",
			Resources:     container.Resources{CPUShares: 2, Memory: int64(f.memory) << 20},
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
			PortBindings:  network.PortMap{port: {{HostIP: netip.IPv4Unspecified()}}},
		}
		res, err := docker.ContainerCreate(ctx, dockerclient.ContainerCreateOptions{Config: cfg, HostConfig: hc})
		if err != nil {
			return "", fmt.Errorf("creating a baseline container: %w", err)
		}
		return res.ID, nil
	}
	start := func(id string) error {
		if _, err := docker.ContainerStart(ctx, id, dockerclient.ContainerStartOptions{}); err != nil {
			return fmt.Errorf("starting a baseline container: %w", err)
		}
		return nil
	}
	var runs []directRun
	for range f.baseline {
		var r directRun
		t0 := time.Now()
		id, err := create()
		if err != nil {
			return nil, 0, err
		}
		t1 := time.Now()
		if err := start(id); err != nil {
			return nil, 0, err
		}
		t2 := time.Now()
		// Stopped once the app answers, as the agent's tasks are: an app that has not installed its
		// SIGTERM handler yet ignores SIGTERM as PID 1.
		ins, err := docker.ContainerInspect(ctx, id, dockerclient.ContainerInspectOptions{})
		if err != nil {
			return nil, 0, fmt.Errorf("inspecting a baseline container: %w", err)
		}
		hostPort := 0
		if ns := ins.Container.NetworkSettings; ns != nil {
			for _, b := range ns.Ports[port] {
				hostPort, _ = strconv.Atoi(b.HostPort)
			}
		}
		if err := waitHTTP(hostPort, 10*time.Second); err != nil {
			return nil, 0, fmt.Errorf("a baseline container: %w", err)
		}
		t3 := time.Now()
		timeout := 30
		if _, err := docker.ContainerStop(ctx, id, dockerclient.ContainerStopOptions{Timeout: &timeout}); err != nil {
			return nil, 0, fmt.Errorf("stopping a baseline container: %w", err)
		}
		r.create, r.start, r.stop = t1.Sub(t0), t2.Sub(t1), time.Since(t3)
		runs = append(runs, r)
		if _, err := docker.ContainerRemove(ctx, id, dockerclient.ContainerRemoveOptions{Force: true}); err != nil {
			return nil, 0, fmt.Errorf("removing a baseline container: %w", err)
		}
		if !sleepCtx(ctx, time.Second) {
			return nil, 0, ctx.Err()
		}
	}
	next := make(chan struct{}, f.tasks)
	for range f.tasks {
		next <- struct{}{}
	}
	close(next)
	errs := make(chan error, 4)
	t0 := time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range next {
				id, err := create()
				if err == nil {
					err = start(id)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	batch := time.Since(t0)
	close(errs)
	for err := range errs {
		return nil, 0, err
	}
	return runs, batch, nil
}

// removeContainers force-removes every container the agent created for the instance.
func removeContainers(ctx context.Context, docker *dockerclient.Client, instance string) (int, error) {
	list, err := docker.ContainerList(ctx, dockerclient.ContainerListOptions{All: true, Filters: ownFilters(instance)})
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, c := range list.Items {
		if _, err := docker.ContainerRemove(ctx, c.ID, dockerclient.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func countContainers(ctx context.Context, docker *dockerclient.Client, instance string, running bool) (int, error) {
	list, err := docker.ContainerList(ctx, dockerclient.ContainerListOptions{All: !running, Filters: ownFilters(instance)})
	if err != nil {
		return 0, fmt.Errorf("listing the agent's containers: %w", err)
	}
	return len(list.Items), nil
}

// ownFilters select the containers the agent created for the instance (Docker ANDs label filters).
func ownFilters(instance string) dockerclient.Filters {
	return dockerclient.Filters{}.Add("label", engine.LabelManagedBy+"="+engine.ManagedBy, engine.LabelContainerInstance+"="+instance)
}

// agentProc is the drover-agent child process.
type agentProc struct {
	bin, stateDir, logPath string
	heartbeat              time.Duration
	env                    []string
	cmd                    *exec.Cmd
	exited                 chan struct{}
	waitErr                error
	log                    *os.File
}

func (a *agentProc) pid() int { return a.cmd.Process.Pid }

func (a *agentProc) start() error {
	lf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	a.log = lf
	a.cmd = exec.Command(a.bin, "run", "--state-dir", a.stateDir, "--heartbeat-interval", a.heartbeat.String(),
		"--image-pull-behavior", "prefer-cached")
	a.cmd.Env = append(os.Environ(), a.env...)
	a.cmd.Stdout, a.cmd.Stderr = lf, lf
	a.exited = make(chan struct{})
	if err := a.cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("starting drover-agent: %w", err)
	}
	go func() { a.waitErr = a.cmd.Wait(); close(a.exited) }()
	return nil
}

func (a *agentProc) exitedEarly() bool {
	select {
	case <-a.exited:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits for the agent to exit, killing it after timeout.
func (a *agentProc) stop(timeout time.Duration) (time.Duration, error) {
	if a.exitedEarly() {
		return 0, fmt.Errorf("the agent had already exited: %v", a.waitErr)
	}
	defer a.log.Close()
	t0 := time.Now()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
		if a.waitErr != nil {
			return 0, fmt.Errorf("the agent exited with %v after SIGTERM; log %s:\n%s", a.waitErr, a.logPath, harness.TailFile(a.logPath, 3000))
		}
		return time.Since(t0), nil
	case <-time.After(timeout):
		_ = a.cmd.Process.Kill()
		<-a.exited
		return 0, fmt.Errorf("the agent did not exit within %s of SIGTERM", timeout)
	}
}

// sample is one reading of /proc/<pid>/status, memory in KiB.
type sample struct {
	rss, anon, file, hwm, threads int
}

func readStatus(pid int) (sample, error) {
	st, err := procinfo.Status(pid)
	return sample{rss: st["VmRSS"], anon: st["RssAnon"], file: st["RssFile"], hwm: st["VmHWM"], threads: st["Threads"]}, err
}

// mappings is a process's resident memory by mapping, in KiB, from /proc/<pid>/smaps: its own
// executable's code (r-x), read-only data (r--) and writable data (rw-), other files, and anonymous
// memory (the Go heap, stacks, the runtime's own).
type mappings struct{ code, rodata, data, files, anon int }

func readMappings(pid int) (mappings, error) {
	var m mappings
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return m, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return m, err
	}
	var cur *int
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") && strings.Contains(fields[0], "-") && len(fields) >= 5 {
			path, perms := "", fields[1]
			if len(fields) >= 6 {
				path = fields[5]
			}
			switch {
			case path == exe && strings.HasPrefix(perms, "r-x"):
				cur = &m.code
			case path == exe && strings.HasPrefix(perms, "rw"):
				cur = &m.data
			case path == exe:
				cur = &m.rodata
			case path == "" || strings.HasPrefix(path, "["):
				cur = &m.anon
			default:
				cur = &m.files
			}
			continue
		}
		if fields[0] == "Rss:" && cur != nil && len(fields) >= 2 {
			n, _ := strconv.Atoi(fields[1])
			*cur += n
		}
	}
	return m, nil
}

func (m mappings) String() string {
	return fmt.Sprintf("drover-agent binary %s (code %s, read-only data %s, data %s), anonymous %s, other files %s",
		mib(float64(m.code+m.rodata+m.data)), mib(float64(m.code)), mib(float64(m.rodata)), mib(float64(m.data)),
		mib(float64(m.anon)), mib(float64(m.files)))
}

// window is the agent's CPU and memory over a measurement window.
type window struct {
	length     time.Duration
	cores      float64 // CPU time / wall time
	rssMean    float64 // KiB, mean of the per-second samples
	rssMax     int
	rssMin     int
	end        sample
	maps       mappings // at the end
	samplesCnt int
}

// measure samples the process's memory every second for d and returns its CPU use over d.
func measure(ctx context.Context, pid int, d time.Duration) (window, error) {
	var w window
	c0, ok := procinfo.CPUTime(pid)
	if !ok {
		return w, fmt.Errorf("cannot read /proc/%d/stat", pid)
	}
	t0 := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.NewTimer(d)
	defer end.Stop()
	var sum float64
	add := func() error {
		s, err := readStatus(pid)
		if err != nil {
			return err
		}
		sum += float64(s.rss)
		w.samplesCnt++
		w.rssMax = max(w.rssMax, s.rss)
		if w.rssMin == 0 || s.rss < w.rssMin {
			w.rssMin = s.rss
		}
		w.end = s
		return nil
	}
	if err := add(); err != nil {
		return w, err
	}
loop:
	for {
		select {
		case <-ctx.Done():
			return w, ctx.Err()
		case <-tick.C:
			if err := add(); err != nil {
				return w, err
			}
		case <-end.C:
			break loop
		}
	}
	c1, ok := procinfo.CPUTime(pid)
	w.length = time.Since(t0)
	if !ok {
		return w, fmt.Errorf("cannot read /proc/%d/stat", pid)
	}
	if err := add(); err != nil {
		return w, err
	}
	maps, err := readMappings(pid)
	if err != nil {
		return w, err
	}
	w.maps = maps
	w.cores = (c1 - c0).Seconds() / w.length.Seconds()
	w.rssMean = sum / float64(w.samplesCnt)
	return w, nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func commandLine() string {
	return strings.Join(append([]string{"go run ./hack/bench/agent"}, os.Args[1:]...), " ")
}

// ms prints a duration; pct is the q-quantile (nearest rank) of durations.
var ms, pct = harness.Dur, harness.Quantile[time.Duration]

// durations returns to(tl) - from(tl) for every timeline.
func durations(tls []*timeline, from, to func(*timeline) time.Time) []time.Duration {
	var ds []time.Duration
	for _, tl := range tls {
		if f, t := from(tl), to(tl); !f.IsZero() && !t.IsZero() {
			ds = append(ds, t.Sub(f))
		}
	}
	return ds
}

func created(tl *timeline) time.Time       { return tl.created }
func bound(tl *timeline) time.Time         { return tl.bound }
func pending(tl *timeline) time.Time       { return tl.pending }
func runningAt(tl *timeline) time.Time     { return tl.running }
func stopRequested(tl *timeline) time.Time { return tl.stopRequested }
func stoppedAt(tl *timeline) time.Time     { return tl.stopped }

// p5090max formats the median, 90th percentile and maximum.
func p5090max(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s / %s", ms(pct(ds, 0.5)), ms(pct(ds, 0.9)), ms(slices.Max(ds)))
}

// p50minmax formats the median, minimum and maximum.
func p50minmax(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s / %s", ms(pct(ds, 0.5)), ms(slices.Min(ds)), ms(slices.Max(ds)))
}

func mib(kb float64) string { return fmt.Sprintf("%.1f MiB", kb/1024) }

func (w window) rss() string {
	return fmt.Sprintf("%s (min %s, max %s; at the end %s anonymous + %s file-backed)",
		mib(w.rssMean), mib(float64(w.rssMin)), mib(float64(w.rssMax)), mib(float64(w.end.anon)), mib(float64(w.end.file)))
}

func (w window) cpu() string {
	return fmt.Sprintf("%.2f%% of one core (%.0f ms CPU per second)", 100*w.cores, 1000*w.cores)
}

func (r *report) markdown(f flags) string {
	var b bytes.Buffer
	wr := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	wr("## Agent: tasks on Docker")
	wr("")
	wr("Machine: %s; Docker Engine %s. Load average %s before, %s after.", strings.Join(r.machine, ", "), r.dockerVersion, r.loadBefore, r.loadAfter)
	wr("")
	wr("Command: `%s`", r.command)
	wr("")
	env := "none"
	if len(r.agentEnv) > 0 {
		env = "`" + strings.Join(r.agentEnv, " ") + "`"
	}
	wr("Agent: `drover-agent run --heartbeat-interval %s --image-pull-behavior prefer-cached`, binary %.1f MiB, extra environment %s; image %s (cached), %d MiB memory limit, port 8080 on a dynamic host port.",
		f.heartbeat, float64(r.agentSize)/(1<<20), env, r.image, f.memory)
	wr("")
	wr("| figure | value |")
	wr("| --- | --- |")
	wr("| droverd start to /readyz ok | %s |", ms(r.droverdStartup))
	wr("| agent exec to instance connected with its resources | %s |", ms(r.connect))
	wr("| idle, no task (%s window after %s): agent RSS mean | %s |", ms(r.idle.length), f.settle, r.idle.rss())
	wr("| idle: agent RSS by mapping, at the end | %s |", r.idle.maps)
	wr("| idle: agent CPU | %s |", r.idle.cpu())
	wr("| idle: agent threads | %d |", r.idle.end.threads)
	if len(r.singles) > 0 {
		wr("| one task alone (n=%d): bound -> RUNNING, p50 / min / max | %s |", len(r.singles), p50minmax(durations(r.singles, bound, runningAt)))
		wr("| one task alone: bound -> PENDING seen, p50 / min / max | %s |", p50minmax(durations(r.singles, bound, pending)))
		wr("| one task alone: created -> RUNNING, p50 / min / max | %s |", p50minmax(durations(r.singles, created, runningAt)))
		wr("| one task alone: created -> bound, p50 / min / max | %s |", p50minmax(durations(r.singles, created, bound)))
		wr("| one task alone: stop requested -> STOPPED, p50 / min / max | %s |", p50minmax(durations(r.singles, stopRequested, stoppedAt)))
	}
	if len(r.direct) > 0 {
		var creates, starts []time.Duration
		for _, d := range r.direct {
			creates, starts = append(creates, d.create), append(starts, d.start)
		}
		wr("| Docker API directly, one container alone (n=%d): create + start, p50 / min / max | %s (create %s, start %s at p50) |",
			len(r.direct), p50minmax(directTimes(r.direct, false)), ms(pct(creates, 0.5)), ms(pct(starts, 0.5)))
		wr("| Docker API directly: stop (SIGTERM, clean exit), p50 / min / max | %s |", p50minmax(directTimes(r.direct, true)))
		wr("| Docker API directly: create + start %d containers, 4 at a time | %s |", f.tasks, ms(r.directBatch))
	}
	wr("| %d tasks at once: first create -> all RUNNING | %s |", f.tasks, ms(r.batchWall))
	wr("| %d tasks at once: bound -> RUNNING, p50 / p90 / max | %s |", f.tasks, p5090max(durations(r.batch, bound, runningAt)))
	wr("| %d tasks at once: created -> RUNNING, p50 / p90 / max | %s |", f.tasks, p5090max(durations(r.batch, created, runningAt)))
	wr("| %d tasks at once: created -> bound, p50 / p90 / max | %s |", f.tasks, p5090max(durations(r.batch, created, bound)))
	wr("| containers answering HTTP on their host port | %d of %d |", r.httpOK, f.tasks)
	wr("| %d running (%s window, %s after all RUNNING): agent RSS mean | %s |", f.tasks, ms(r.loaded.length), f.loadedSettle, r.loaded.rss())
	wr("| %d running: agent RSS by mapping, at the end | %s |", f.tasks, r.loaded.maps)
	wr("| %d running: agent CPU | %s |", f.tasks, r.loaded.cpu())
	wr("| %d running: agent threads | %d |", f.tasks, r.loaded.end.threads)
	wr("| stop all %d: first request -> all STOPPED | %s |", f.tasks, ms(r.stopWall))
	wr("| stop all %d: request -> STOPPED, p50 / p90 / max | %s |", f.tasks, p5090max(durations(r.batch, stopRequested, stoppedAt)))
	wr("| agent RSS 10 s after all stopped | %s (%s anonymous + %s file-backed) |", mib(float64(r.afterStop.rss)), mib(float64(r.afterStop.anon)), mib(float64(r.afterStop.file)))
	wr("| agent peak RSS (VmHWM) over the run | %s |", mib(float64(r.afterStop.hwm)))
	wr("| agent SIGTERM -> exit | %s |", ms(r.agentExit))
	verdict := "met"
	if r.idle.rssMean/1024 >= goalRSSMiB || r.loaded.rssMean/1024 >= goalRSSMiB {
		verdict = "not met"
	}
	wr("| goal: agent RSS under %d MiB | %s (idle %s, %d running %s) |", goalRSSMiB, verdict, mib(r.idle.rssMean), f.tasks, mib(r.loaded.rssMean))
	if r.watchRelist > 0 {
		wr("")
		wr("The benchmark's Task watch was re-listed %d times; times seen at a re-list are late by up to the gap.", r.watchRelist)
	}
	return b.String()
}
