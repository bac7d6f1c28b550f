// Command hosts benchmarks droverd with many hosts: registrations per second through the real
// registration endpoint, and, for many container instances renewing their heartbeat Leases, the
// renewals achieved, their latency, droverd's CPU and RSS, and the embedded etcd's writes per second.
//
// It starts droverd as a child process (controllers on, since the containerinstance controller
// reacts to every Lease renewal) on free loopback ports with a temporary data dir. Hosts register
// as drover-agent does: each generates its own ECDSA key and CSR and posts them with an activation
// code, verifying droverd with its CA (test/scale/hollow's Registrar). The simulated agents then run
// in this process as hollow instances that only renew their Leases (test/scale/hollow), each with its
// own client certificate and HTTP transport (so its own TLS connection), renewing its Lease every
// --heartbeat like drover-agent's heartbeat: an UPDATE of the Lease it last wrote (a GET first only
// after a failure). They do nothing else: no Task
// watch and no status report. The report is markdown on stdout.
//
//	go run ./hack/bench/hosts --droverd ./bin/droverd [--registrations 200] [--concurrency 8] \
//	    [--instances 1000] [--heartbeat 5s] [--duration 60s] [--profile-dir DIR] [--out FILE]
package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/hack/bench/internal/harness"
	"github.com/drover-dev/drover/hack/bench/internal/procinfo"
	"github.com/drover-dev/drover/test/scale/hollow"
)

const (
	namespace = metav1.NamespaceDefault
	cluster   = "bench"
)

type flags struct {
	droverd       string
	registrations int
	concurrency   int
	instances     int
	heartbeat     time.Duration
	duration      time.Duration
	warmup        time.Duration
	connectWait   time.Duration
	baseline      time.Duration
	profileDir    string
	out           string
	keepDataDir   bool
	readyTimeout  time.Duration
}

func main() {
	var f flags
	flag.StringVar(&f.droverd, "droverd", "./bin/droverd", "droverd binary to benchmark (make build puts it in ./bin)")
	flag.IntVar(&f.registrations, "registrations", 200, "registrations to time through the registration endpoint")
	flag.IntVar(&f.concurrency, "concurrency", 8, "concurrent registrations")
	flag.IntVar(&f.instances, "instances", 1000, "simulated agents renewing their Leases (registered the same way when more than --registrations)")
	flag.DurationVar(&f.heartbeat, "heartbeat", 5*time.Second, "Lease renewal interval of each simulated agent (drover-agent's default is 5s)")
	flag.DurationVar(&f.duration, "duration", 60*time.Second, "measurement window of the heartbeat phase")
	flag.DurationVar(&f.warmup, "warmup", 0, "heartbeats before the window, while connections are set up and instances marked connected (default 3 heartbeats, at least 15s)")
	flag.DurationVar(&f.connectWait, "connect-wait", time.Minute, "after the warm-up, wait at most this long (from the first heartbeat) for every instance to be marked connected before measuring")
	flag.DurationVar(&f.baseline, "baseline", 10*time.Second, "window measured with all instances registered but silent, before the heartbeats (0 to skip)")
	flag.StringVar(&f.profileDir, "profile-dir", "", "run droverd with --profiling and save CPU profiles of the registrations (their first 20s) and of the heartbeat window here")
	flag.StringVar(&f.out, "out", "", "also write the report to this file")
	flag.BoolVar(&f.keepDataDir, "keep-data-dir", false, "keep the temporary data dir (and droverd's log) for inspection")
	flag.DurationVar(&f.readyTimeout, "ready-timeout", 3*time.Minute, "give up when droverd is not ready within this")
	flag.Parse()
	if f.warmup == 0 {
		f.warmup = max(3*f.heartbeat, 15*time.Second)
	}
	if f.registrations < 0 || f.concurrency < 1 || f.instances < 0 || f.registrations+f.instances == 0 {
		fatalf("--registrations and --instances must not be negative (and not both 0), --concurrency must be positive")
	}
	if f.heartbeat < time.Second || f.duration < time.Second || f.warmup < 0 || f.baseline < 0 {
		fatalf("--heartbeat and --duration must be at least 1s, --warmup and --baseline not negative")
	}
	if err := run(f); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "hosts: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// report collects the figures.
type report struct {
	machine    []string
	command    string
	loadBefore string
	loadAfter  string
	startup    time.Duration

	reg      hollow.Registrations // the timed registrations
	regCPU   [2]float64
	regEtcd  harness.EtcdDelta
	fill     hollow.Registrations // further registrations up to --instances
	baseCPU  [2]float64
	baseEtcd harness.EtcdDelta
	rssIdle  procinfo.RSS // droverd after registering, before the heartbeats

	hb         hbResult
	hbCPU      [2]float64
	hbEtcd     harness.EtcdDelta
	rssHB      procinfo.RSS // droverd at the end of the heartbeat window
	connected  int
	registered int
	clientMem  clientMem
	// allConnected is when every heartbeating instance was first seen connected, from the agents'
	// start; zero if that did not happen within --connect-wait, when connectedAtStart says how many were.
	allConnected     time.Duration
	connectedAtStart int
	goroutines       int
	profiles         []string
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
	r := &report{machine: procinfo.Machine(), command: commandLine(), loadBefore: procinfo.LoadAvg()}
	logf("machine: %s; load average %s", strings.Join(r.machine, "; "), r.loadBefore)

	dir, err := os.MkdirTemp("", "drover-bench-hosts-")
	if err != nil {
		return err
	}
	if !f.keepDataDir {
		defer os.RemoveAll(dir)
		defer os.Remove(dir + ".log")
	} else {
		logf("data dir %s, droverd log %s.log", dir, dir)
	}
	d, err := harness.StartDroverdWith(context.Background(), bin, dir, harness.Options{Profiling: f.profileDir != "", Timeout: f.readyTimeout})
	if err != nil {
		return err
	}
	defer d.Kill()
	r.startup = d.Startup.Ready
	logf("droverd ready in %s (pid %d)", ms(r.startup), d.PID())
	server := d.URL

	admin, adminCfg, err := adminClient(dir)
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "pki", "ca.crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("no certificate in pki/ca.crt")
	}
	etcd, err := harness.NewEtcdMetrics(dir, d.Ports[3])
	if err != nil {
		return err
	}
	if _, err := etcd.Read(); err != nil {
		return fmt.Errorf("reading etcd's metrics: %w", err)
	}

	ctx := context.Background()
	if err := admin.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cluster, Namespace: namespace}}); err != nil {
		return fmt.Errorf("creating the cluster: %w", err)
	}
	total := max(f.registrations, f.instances)
	// Headroom for registrations that time out on the client but complete on the server.
	acts, err := hollow.CreateActivations(ctx, admin, namespace, cluster, total+total/10+10)
	if err != nil {
		return err
	}
	reg := &hollow.Registrar{Server: server, CA: pool, Activations: acts, HostnamePrefix: "bench-host"}

	var hosts []*hollow.Identity
	prof := &profiler{cfg: adminCfg, dir: f.profileDir}
	if f.profileDir != "" {
		prof.cpu(ctx, "registrations.cpu.pprof", 20*time.Second)
	}
	if f.registrations > 0 {
		logf("registering %d hosts, %d at a time", f.registrations, f.concurrency)
		cpu := harness.StartCPU(d.PID())
		e0, _ := etcd.Read()
		r.reg = reg.RegisterMany(ctx, 0, f.registrations, f.concurrency)
		r.regCPU = cpu.Cores()
		e1, _ := etcd.Read()
		r.regEtcd = e1.Sub(e0, r.reg.Wall)
		logf("registered %d in %s (%.1f/s), %d failed attempts", len(r.reg.Identities), ms(r.reg.Wall), r.reg.Rate(), r.reg.FailedAttempts)
		if len(r.reg.Identities) < f.registrations {
			return fmt.Errorf("%d of %d hosts could not register, first error: %v", f.registrations-len(r.reg.Identities), f.registrations, r.reg.FirstErr)
		}
		hosts = append(hosts, r.reg.Identities...)
	}
	if more := f.instances - len(hosts); more > 0 {
		logf("registering %d more hosts for the heartbeats, %d at a time", more, f.concurrency)
		r.fill = reg.RegisterMany(ctx, len(hosts), more, f.concurrency)
		logf("registered %d in %s (%.1f/s), %d failed attempts", len(r.fill.Identities), ms(r.fill.Wall), r.fill.Rate(), r.fill.FailedAttempts)
		if len(r.fill.Identities) < more {
			return fmt.Errorf("%d of %d hosts could not register, first error: %v", more-len(r.fill.Identities), more, r.fill.FirstErr)
		}
		hosts = append(hosts, r.fill.Identities...)
	}
	hosts = hosts[:f.instances]
	prof.wait()
	r.profiles = append(r.profiles, prof.saved...)

	if f.baseline > 0 {
		// Controllers and Events trail the registrations; measure once etcd is quiet.
		harness.Settle(etcd, 30*time.Second)
		logf("measuring %s with %d instances registered and silent", f.baseline, total)
		cpu := harness.StartCPU(d.PID())
		e0, _ := etcd.Read()
		time.Sleep(f.baseline)
		r.baseCPU = cpu.Cores()
		e1, _ := etcd.Read()
		r.baseEtcd = e1.Sub(e0, f.baseline)
	}
	if r.rssIdle, err = procinfo.ReadRSS(d.PID()); err != nil {
		return err
	}

	if len(hosts) > 0 {
		if err := heartbeats(ctx, f, r, d, etcd, admin, adminCfg, server, pool, hosts); err != nil {
			return err
		}
	}

	if _, err := d.Shutdown(60 * time.Second); err != nil {
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

// heartbeats runs the simulated agents through the warm-up and the measured window.
func heartbeats(ctx context.Context, f flags, r *report, d *harness.Droverd, etcd *harness.EtcdMetrics, admin client.Client, adminCfg *rest.Config,
	server string, pool *x509.CertPool, hosts []*hollow.Identity) error {
	before := selfMem()
	b := &beats{renewals: make([][]renewal, len(hosts)), leaseGone: make([]atomic.Bool, len(hosts))}
	fleet, err := hollow.NewFleet(hollow.Config{Server: server, CA: pool, HeartbeatInterval: f.heartbeat, HeartbeatOnly: true, OnRenew: b.record}, hosts)
	if err != nil {
		return err
	}
	// Agents start at random moments within an interval, as real hosts do, so renewals spread over it.
	fleet.Start(ctx)
	defer fleet.Stop()
	logf("%d simulated agents renewing every %s; warming up for %s", len(hosts), f.heartbeat, f.warmup)
	if err := waitConnected(ctx, f, r, admin, hosts, b); err != nil {
		return err
	}
	r.clientMem = selfMem().sub(before, len(hosts))
	r.goroutines = runtime.NumGoroutine()

	prof := &profiler{cfg: adminCfg, dir: f.profileDir}
	if f.profileDir != "" {
		prof.cpu(ctx, "heartbeats.cpu.pprof", min(f.duration, 60*time.Second))
	}
	logf("measuring for %s", f.duration)
	cpu := harness.StartCPU(d.PID())
	e0, err := etcd.Read()
	if err != nil {
		return fmt.Errorf("reading etcd's metrics: %w", err)
	}
	t0 := time.Now()
	time.Sleep(f.duration)
	t1 := time.Now()
	r.hbCPU = cpu.Cores()
	e1, err := etcd.Read()
	if err != nil {
		return fmt.Errorf("reading etcd's metrics: %w", err)
	}
	r.hbEtcd = e1.Sub(e0, t1.Sub(t0))
	if r.rssHB, err = procinfo.ReadRSS(d.PID()); err != nil {
		return err
	}
	prof.wait()
	if f.profileDir != "" {
		prof.heap(ctx, "heartbeats.heap.pprof")
	}
	// Counted while the agents still run.
	var cis ecsv1alpha1.ContainerInstanceList
	if err := admin.List(ctx, &cis, client.InNamespace(namespace)); err != nil {
		return fmt.Errorf("listing container instances: %w", err)
	}
	r.registered = len(cis.Items)
	beating := map[string]bool{}
	for _, h := range hosts {
		beating[h.Name] = true
	}
	for _, ci := range cis.Items {
		if beating[ci.Name] && ci.Status.AgentConnected {
			r.connected++
		}
	}
	r.profiles = append(r.profiles, prof.saved...)
	fleet.Stop()
	r.hb = collect(hosts, b, t0, t1)
	logf("%.1f renewals/s, %d errors, %d of %d instances connected", r.hb.rate(), r.hb.errs, r.connected, len(hosts))
	return nil
}

// waitConnected waits out the warm-up, and then for the containerinstance controller to mark every
// heartbeating instance connected (up to --connect-wait from the start), polling every 2 s. An
// instance whose Lease is gone cannot be connected, so it is not waited for.
func waitConnected(ctx context.Context, f flags, r *report, admin client.Client, hosts []*hollow.Identity, b *beats) error {
	names := map[string]bool{}
	for _, h := range hosts {
		names[h.Name] = true
	}
	t0 := time.Now()
	for {
		var cis ecsv1alpha1.ContainerInstanceList
		if err := admin.List(ctx, &cis, client.InNamespace(namespace)); err != nil {
			return fmt.Errorf("listing container instances: %w", err)
		}
		n := 0
		for _, ci := range cis.Items {
			if names[ci.Name] && ci.Status.AgentConnected {
				n++
			}
		}
		gone := 0
		for i := range hosts {
			if b.leaseGone[i].Load() {
				gone++
			}
		}
		elapsed := time.Since(t0)
		if n+gone == len(hosts) && r.allConnected == 0 {
			r.allConnected = elapsed
			logf("%d instances connected %s after the agents started; %d have no Lease", n, ms(elapsed), gone)
		}
		if elapsed >= f.warmup && (r.allConnected > 0 || elapsed >= f.connectWait) {
			r.connectedAtStart = n
			if r.allConnected == 0 {
				logf("only %d of %d instances connected after %s (%d have no Lease); measuring anyway", n, len(hosts), ms(elapsed), gone)
			}
			return nil
		}
		time.Sleep(2 * time.Second)
	}
}

// adminClient loads droverd's admin kubeconfig.
func adminClient(dir string) (client.Client, *rest.Config, error) {
	cfg, err := harness.AdminConfig(dir, "drover-bench")
	if err != nil {
		return nil, nil, err
	}
	cfg.Timeout = 2 * time.Minute
	scheme := kruntime.NewScheme()
	if err := ecsv1alpha1.AddToScheme(scheme); err != nil {
		return nil, nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	return c, cfg, err
}

// beats records the renewals of each simulated agent, as the hollow fleet reports them. Instance
// i's renewals are appended only by its own heartbeat, and read once the fleet has stopped.
type beats struct {
	renewals [][]renewal
	// leaseGone is set while renewals find no Lease: the instance cannot be connected again.
	leaseGone []atomic.Bool
}

type renewal struct {
	at  time.Time
	lat time.Duration
	err error
}

func (b *beats) record(i int, at time.Time, took time.Duration, err error) {
	b.renewals[i] = append(b.renewals[i], renewal{at: at, lat: took, err: err})
	b.leaseGone[i].Store(apierrors.IsNotFound(err))
}

type hbResult struct {
	ok, errs  int
	conflicts int
	// notFound counts the failed renewals that found no Lease; gone the instances whose last did.
	notFound  int
	gone      int
	firstErr  error
	latencies []time.Duration
	window    time.Duration
	// maxGap is the longest time between two successful renewals of one instance that still has
	// its Lease (or from the window's start to the first, and from the last to its end).
	maxGap time.Duration
}

func (h hbResult) rate() float64 { return float64(h.ok) / h.window.Seconds() }

// collect counts the renewals that started within [t0, t1).
func collect(hosts []*hollow.Identity, b *beats, t0, t1 time.Time) hbResult {
	res := hbResult{window: t1.Sub(t0)}
	for i, h := range hosts {
		gone := b.leaseGone[i].Load()
		if gone {
			res.gone++
		}
		last := t0
		for _, rn := range b.renewals[i] {
			if rn.at.Before(t0) || !rn.at.Before(t1) {
				continue
			}
			if rn.err != nil {
				res.errs++
				if apierrors.IsConflict(rn.err) {
					res.conflicts++
				}
				if apierrors.IsNotFound(rn.err) {
					res.notFound++
				}
				if res.firstErr == nil {
					res.firstErr = fmt.Errorf("%s: %w", h.Name, rn.err)
				}
				continue
			}
			res.ok++
			res.latencies = append(res.latencies, rn.lat)
			if !gone {
				res.maxGap = max(res.maxGap, rn.at.Add(rn.lat).Sub(last))
			}
			last = rn.at.Add(rn.lat)
		}
		if !gone {
			res.maxGap = max(res.maxGap, t1.Sub(last))
		}
	}
	return res
}

// clientMem is this process's memory for the simulated agents, per agent.
type clientMem struct{ heapPer, rssPer float64 }

type memSample struct{ heap, rss uint64 }

// selfMem returns this process's live heap and RSS after a collection that returns freed memory.
func selfMem() memSample {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r, _ := procinfo.ReadRSS(os.Getpid())
	return memSample{heap: ms.HeapInuse + ms.StackInuse, rss: uint64(r.RSSKB) * 1024}
}

func (m memSample) sub(before memSample, n int) clientMem {
	if n == 0 {
		return clientMem{}
	}
	return clientMem{
		heapPer: (float64(m.heap) - float64(before.heap)) / float64(n),
		rssPer:  (float64(m.rss) - float64(before.rss)) / float64(n),
	}
}

// profiler fetches a CPU profile from droverd (started with --profiling).
type profiler struct {
	cfg   *rest.Config
	dir   string
	wg    sync.WaitGroup
	mu    sync.Mutex
	saved []string
}

func (p *profiler) cpu(ctx context.Context, file string, d time.Duration) {
	p.wg.Go(func() {
		p.fetch(ctx, file, fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())), d+time.Minute)
	})
}

// heap saves a heap profile (in use after a collection) now.
func (p *profiler) heap(ctx context.Context, file string) {
	p.fetch(ctx, file, "/debug/pprof/heap?gc=1", time.Minute)
}

func (p *profiler) fetch(ctx context.Context, file, path string, timeout time.Duration) {
	hc, err := rest.HTTPClientFor(p.cfg)
	if err != nil {
		logf("profile: %v", err)
		return
	}
	hc.Timeout = timeout
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(p.cfg.Host, "/")+path, nil)
	if err != nil {
		logf("profile: %v", err)
		return
	}
	resp, err := hc.Do(req)
	if err != nil {
		logf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		logf("profile %s: %s %v", path, resp.Status, err)
		return
	}
	out := filepath.Join(p.dir, file)
	if err := os.WriteFile(out, body, 0o644); err != nil {
		logf("profile: %v", err)
		return
	}
	p.mu.Lock()
	p.saved = append(p.saved, out)
	p.mu.Unlock()
}

func (p *profiler) wait() { p.wg.Wait() }

func commandLine() string {
	return strings.Join(append([]string{"go run ./hack/bench/hosts"}, os.Args[1:]...), " ")
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
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("## Hosts: registrations and heartbeats (droverd with controllers)")
	w("")
	w("Machine: %s. Load average %s before, %s after.", strings.Join(r.machine, ", "), r.loadBefore, r.loadAfter)
	w("")
	w("Command: `%s`", r.command)
	w("")
	w("| figure | value |")
	w("| --- | --- |")
	w("| droverd start to /readyz ok | %s |", ms(r.startup))
	if f.registrations > 0 {
		w("| registrations, %d with %d concurrent (new key, CSR and TLS connection each) | %.1f /s (%s; %d failed attempts, retried) |",
			len(r.reg.Identities), f.concurrency, r.reg.Rate(), ms(r.reg.Wall), r.reg.FailedAttempts)
		w("| registration latency p50 / p90 / p99 / max | %s |", lats(r.reg.Latencies))
		w("| CPU while registering, droverd / benchmark | %.2f / %.2f cores |", r.regCPU[0], r.regCPU[1])
		if n := float64(len(r.reg.Identities)); n > 0 {
			w("| etcd per registration: puts / proposals committed | %.1f / %.1f |",
				r.regEtcd.Total["etcd_mvcc_put_total"]/n, r.regEtcd.Total["etcd_server_proposals_committed_total"]/n)
		}
	}
	if len(r.fill.Identities) > 0 {
		w("| further registrations for the heartbeats, %d | %.1f /s, p50 / p99 %s / %s (%d failed attempts, retried) |",
			len(r.fill.Identities), r.fill.Rate(), ms(pct(r.fill.Latencies, 0.5)), ms(pct(r.fill.Latencies, 0.99)), r.fill.FailedAttempts)
	}
	if f.baseline > 0 {
		w("| %d instances registered, no heartbeats (%s): droverd CPU, etcd puts/s | %.2f cores, %.1f /s |",
			max(f.registrations, f.instances), f.baseline, r.baseCPU[0], r.baseEtcd.PerSec("etcd_mvcc_put_total"))
	}
	w("| droverd RSS before the heartbeats | %s |", r.rssIdle)
	if f.instances > 0 {
		want := float64(f.instances) / f.heartbeat.Seconds()
		w("| heartbeats: %d instances, every %s, window %s after %s warm-up | %.1f renewals/s of %.1f expected |",
			f.instances, f.heartbeat, ms(r.hb.window), f.warmup, r.hb.rate(), want)
		errs := strconv.Itoa(r.hb.errs)
		if r.hb.errs > 0 {
			errs += fmt.Sprintf(" (%d NotFound, %d conflicts; first: %v)", r.hb.notFound, r.hb.conflicts, r.hb.firstErr)
		}
		if r.allConnected > 0 {
			w("| time for the controller to mark them connected, from the agents' start | %s (%d of %d; the others have no Lease) |",
				ms(r.allConnected), r.connectedAtStart, f.instances)
		} else {
			w("| instances marked connected before the window | %d of %d after %s (--connect-wait) |", r.connectedAtStart, f.instances, f.connectWait)
		}
		w("| instances whose Lease was gone (renewals answered NotFound) | %d |", r.hb.gone)
		w("| failed renewals in the window | %s |", errs)
		w("| renewal latency p50 / p90 / p99 / max | %s |", lats(r.hb.latencies))
		w("| longest time an instance with a Lease went without a renewal | %s (grace period 10 s) |", ms(r.hb.maxGap))
		w("| droverd CPU during the window | %.2f cores (%.2f cores per 100 renewals/s) |", r.hbCPU[0], r.hbCPU[0]/max(r.hb.rate(), 1e-9)*100)
		w("| benchmark process CPU during the window | %.2f cores |", r.hbCPU[1])
		w("| etcd puts/s (etcd_mvcc_put_total) | %.1f (%.2f per renewal) |", r.hbEtcd.PerSec("etcd_mvcc_put_total"),
			r.hbEtcd.Total["etcd_mvcc_put_total"]/max(float64(r.hb.ok), 1))
		w("| etcd proposals committed/s, ranges (reads)/s | %.1f, %.1f |", r.hbEtcd.PerSec("etcd_server_proposals_committed_total"),
			r.hbEtcd.PerSec("etcd_mvcc_range_total"))
		w("| etcd WAL fsyncs/s, backend commits/s | %.1f, %.1f |", r.hbEtcd.PerSec("etcd_disk_wal_fsync_duration_seconds_count"),
			r.hbEtcd.PerSec("etcd_disk_backend_commit_duration_seconds_count"))
		w("| droverd RSS at the end of the window | %s |", r.rssHB)
		w("| heartbeating instances with status.agentConnected=true at the end | %d of %d (%d container instances in all) |", r.connected, f.instances, r.registered)
		w("| benchmark memory per simulated agent (transport, TLS connection, client), heap / RSS | %s / %s (%d goroutines in all) |",
			kib(r.clientMem.heapPer), kib(r.clientMem.rssPer), r.goroutines)
	}
	if len(r.profiles) > 0 {
		w("")
		w("CPU profiles of droverd: %s", strings.Join(r.profiles, ", "))
	}
	return b.String()
}
