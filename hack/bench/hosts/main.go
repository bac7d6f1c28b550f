// Command hosts benchmarks droverd with many hosts: registrations per second through the real
// registration endpoint, and, for many container instances renewing their heartbeat Leases, the
// renewals achieved, their latency, droverd's CPU and RSS, and the embedded etcd's writes per second.
//
// It starts droverd as a child process (controllers on, since the containerinstance controller
// reacts to every Lease renewal) on free loopback ports with a temporary data dir. Hosts register
// as drover-agent does: each generates its own ECDSA key and CSR and posts them with an activation
// code, verifying droverd with its CA. The simulated agents then run in this process, each with its
// own client certificate and HTTP transport (so its own TLS connection), renewing its Lease with a
// GET and an UPDATE every --heartbeat like drover-agent's heartbeat. They do nothing else: no Task
// watch and no periodic status report. The report is markdown on stdout.
//
//	go run ./hack/bench/hosts --droverd ./bin/droverd [--registrations 200] [--concurrency 8] \
//	    [--instances 1000] [--heartbeat 5s] [--duration 60s] [--profile-dir DIR] [--out FILE]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
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
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/hack/bench/internal/harness"
	"github.com/drover-dev/drover/hack/bench/internal/procinfo"
	"github.com/drover-dev/drover/internal/registration/wire"
)

const (
	namespace = metav1.NamespaceDefault
	cluster   = "bench"
	// maxPerActivation is the largest registrationLimit an Activation takes.
	maxPerActivation = 1000
	// requestTimeout bounds each heartbeat request, as drover-agent's default --request-timeout does.
	requestTimeout = 10 * time.Second
	// registerTimeout bounds a registration, as drover-agent register's default --request-timeout does.
	registerTimeout = 30 * time.Second
	// registerAttempts is how often a host tries to register before the benchmark gives up.
	registerAttempts = 3
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

	reg      regResult // the timed registrations
	regCPU   [2]float64
	regEtcd  etcdDelta
	fill     regResult // further registrations up to --instances
	baseCPU  [2]float64
	baseEtcd etcdDelta
	rssIdle  procinfo.RSS // droverd after registering, before the heartbeats

	hb         hbResult
	hbCPU      [2]float64
	hbEtcd     etcdDelta
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
	etcd, err := newEtcdMetrics(dir, d.Ports[1])
	if err != nil {
		return err
	}
	if _, err := etcd.read(); err != nil {
		return fmt.Errorf("reading etcd's metrics: %w", err)
	}

	ctx := context.Background()
	if err := admin.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cluster, Namespace: namespace}}); err != nil {
		return fmt.Errorf("creating the cluster: %w", err)
	}
	total := max(f.registrations, f.instances)
	// Headroom for registrations that time out on the client but complete on the server.
	acts, err := createActivations(ctx, admin, total+total/10+10)
	if err != nil {
		return err
	}
	reg := &registrar{server: server, pool: pool, acts: acts}

	var hosts []*host
	prof := &profiler{cfg: adminCfg, dir: f.profileDir}
	if f.profileDir != "" {
		prof.cpu(ctx, "registrations.cpu.pprof", 20*time.Second)
	}
	if f.registrations > 0 {
		logf("registering %d hosts, %d at a time", f.registrations, f.concurrency)
		cpu := harness.StartCPU(d.PID())
		e0, _ := etcd.read()
		r.reg = reg.run(ctx, 0, f.registrations, f.concurrency)
		r.regCPU = cpu.Cores()
		e1, _ := etcd.read()
		r.regEtcd = e1.sub(e0, r.reg.wall)
		logf("registered %d in %s (%.1f/s), %d failed attempts", r.reg.ok(), ms(r.reg.wall), r.reg.rate(), r.reg.errs)
		if r.reg.ok() < f.registrations {
			return fmt.Errorf("%d of %d hosts could not register, first error: %v", f.registrations-r.reg.ok(), f.registrations, r.reg.firstErr)
		}
		hosts = append(hosts, r.reg.hosts...)
	}
	if more := f.instances - len(hosts); more > 0 {
		logf("registering %d more hosts for the heartbeats, %d at a time", more, f.concurrency)
		r.fill = reg.run(ctx, len(hosts), more, f.concurrency)
		logf("registered %d in %s (%.1f/s), %d failed attempts", r.fill.ok(), ms(r.fill.wall), r.fill.rate(), r.fill.errs)
		if r.fill.ok() < more {
			return fmt.Errorf("%d of %d hosts could not register, first error: %v", more-r.fill.ok(), more, r.fill.firstErr)
		}
		hosts = append(hosts, r.fill.hosts...)
	}
	hosts = hosts[:f.instances]
	prof.wait()
	r.profiles = append(r.profiles, prof.saved...)

	if f.baseline > 0 {
		// Controllers and Events trail the registrations; measure once etcd is quiet.
		settle(etcd, 30*time.Second)
		logf("measuring %s with %d instances registered and silent", f.baseline, total)
		cpu := harness.StartCPU(d.PID())
		e0, _ := etcd.read()
		time.Sleep(f.baseline)
		r.baseCPU = cpu.Cores()
		e1, _ := etcd.read()
		r.baseEtcd = e1.sub(e0, f.baseline)
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
func heartbeats(ctx context.Context, f flags, r *report, d *harness.Droverd, etcd *etcdMetrics, admin client.Client, adminCfg *rest.Config,
	server string, pool *x509.CertPool, hosts []*host) error {
	before := selfMem()
	agents := make([]*simAgent, len(hosts))
	for i, h := range hosts {
		a, err := newSimAgent(server, pool, h, f.heartbeat)
		if err != nil {
			return err
		}
		agents[i] = a
	}
	actx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, a := range agents {
		// Agents start at random moments, as real hosts do, so renewals spread over the interval.
		offset := time.Duration(mathrand.Int64N(int64(f.heartbeat)))
		wg.Go(func() { a.run(actx, offset) })
	}
	defer func() { stop(); wg.Wait() }()
	logf("%d simulated agents renewing every %s; warming up for %s", len(agents), f.heartbeat, f.warmup)
	if err := waitConnected(ctx, f, r, admin, agents); err != nil {
		return err
	}
	r.clientMem = selfMem().sub(before, len(agents))
	r.goroutines = runtime.NumGoroutine()

	prof := &profiler{cfg: adminCfg, dir: f.profileDir}
	if f.profileDir != "" {
		prof.cpu(ctx, "heartbeats.cpu.pprof", min(f.duration, 60*time.Second))
	}
	logf("measuring for %s", f.duration)
	cpu := harness.StartCPU(d.PID())
	e0, err := etcd.read()
	if err != nil {
		return fmt.Errorf("reading etcd's metrics: %w", err)
	}
	t0 := time.Now()
	time.Sleep(f.duration)
	t1 := time.Now()
	r.hbCPU = cpu.Cores()
	e1, err := etcd.read()
	if err != nil {
		return fmt.Errorf("reading etcd's metrics: %w", err)
	}
	r.hbEtcd = e1.sub(e0, t1.Sub(t0))
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
		beating[h.name] = true
	}
	for _, ci := range cis.Items {
		if beating[ci.Name] && ci.Status.AgentConnected {
			r.connected++
		}
	}
	r.profiles = append(r.profiles, prof.saved...)
	stop()
	wg.Wait()
	r.hb = collect(agents, t0, t1)
	logf("%.1f renewals/s, %d errors, %d of %d instances connected", r.hb.rate(), r.hb.errs, r.connected, len(hosts))
	return nil
}

// settle waits until etcd takes fewer than two writes in two seconds, at most limit.
func settle(etcd *etcdMetrics, limit time.Duration) {
	deadline := time.Now().Add(limit)
	prev, err := etcd.read()
	for err == nil && time.Now().Before(deadline) {
		time.Sleep(2 * time.Second)
		var cur etcdSample
		if cur, err = etcd.read(); err == nil {
			if cur["etcd_mvcc_put_total"]-prev["etcd_mvcc_put_total"] < 2 {
				return
			}
			prev = cur
		}
	}
}

// waitConnected waits out the warm-up, and then for the containerinstance controller to mark every
// heartbeating instance connected (up to --connect-wait from the start), polling every 2 s. An
// instance whose Lease is gone cannot be connected, so it is not waited for.
func waitConnected(ctx context.Context, f flags, r *report, admin client.Client, agents []*simAgent) error {
	names := map[string]bool{}
	for _, a := range agents {
		names[a.h.name] = true
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
		for _, a := range agents {
			if a.leaseGone.Load() {
				gone++
			}
		}
		elapsed := time.Since(t0)
		if n+gone == len(agents) && r.allConnected == 0 {
			r.allConnected = elapsed
			logf("%d instances connected %s after the agents started; %d have no Lease", n, ms(elapsed), gone)
		}
		if elapsed >= f.warmup && (r.allConnected > 0 || elapsed >= f.connectWait) {
			r.connectedAtStart = n
			if r.allConnected == 0 {
				logf("only %d of %d instances connected after %s (%d have no Lease); measuring anyway", n, len(agents), ms(elapsed), gone)
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

// activation is an Activation and its code.
type activation struct{ id, code string }

// createActivations creates Activations for n registrations, as drover activation create does.
func createActivations(ctx context.Context, c client.Client, n int) ([]activation, error) {
	var acts []activation
	for left := n; left > 0; left -= maxPerActivation {
		code, err := wire.NewCode()
		if err != nil {
			return nil, err
		}
		limit := min(left, maxPerActivation)
		act := &ecsv1alpha1.Activation{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-", Namespace: namespace},
			Spec: ecsv1alpha1.ActivationSpec{
				Cluster:           cluster,
				CodeHash:          wire.HashCode(code),
				ExpiresAt:         metav1.NewTime(time.Now().Add(time.Hour).UTC().Truncate(time.Second)),
				RegistrationLimit: int32(limit),
			},
		}
		if err := c.Create(ctx, act); err != nil {
			return nil, fmt.Errorf("creating an activation: %w", err)
		}
		acts = append(acts, activation{id: act.Namespace + "/" + act.Name, code: code})
	}
	return acts, nil
}

// host is a registered host: its instance and client certificate.
type host struct {
	namespace, name string
	cert            tls.Certificate
}

type registrar struct {
	server string
	pool   *x509.CertPool
	acts   []activation
	// slots counts the registrations attempted: attempt j uses activation j/maxPerActivation.
	slots atomic.Int64
}

type regResult struct {
	hosts     []*host
	latencies []time.Duration
	// errs counts failed attempts; a host tries registerAttempts times.
	errs     int
	firstErr error
	wall     time.Duration
}

func (r regResult) ok() int { return len(r.hosts) }

func (r regResult) rate() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.ok()) / r.wall.Seconds()
}

// run registers hosts first .. first+n-1 with workers concurrent registrations. Host i uses the
// activation that has room for it.
func (g *registrar) run(ctx context.Context, first, n, workers int) regResult {
	var next atomic.Int64
	var mu sync.Mutex
	res := regResult{}
	var wg sync.WaitGroup
	t0 := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := first + int(next.Add(1)) - 1
				if i >= first+n {
					return
				}
				for range registerAttempts {
					h, lat, err := g.register(ctx, i)
					mu.Lock()
					if err != nil {
						res.errs++
						if res.firstErr == nil {
							res.firstErr = err
						}
					} else {
						res.hosts = append(res.hosts, h)
						res.latencies = append(res.latencies, lat)
					}
					mu.Unlock()
					if err == nil {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	res.wall = time.Since(t0)
	return res
}

// register registers host i as drover-agent register does after checking the CA: a new key and
// CSR, and one POST on a new connection verified against the CA. The latency is the POST's.
func (g *registrar) register(ctx context.Context, i int) (*host, time.Duration, error) {
	slot := int(g.slots.Add(1)) - 1
	if slot >= len(g.acts)*maxPerActivation {
		return nil, 0, errors.New("all activations are used up")
	}
	act := g.acts[slot/maxPerActivation]
	hostname := fmt.Sprintf("bench-host-%05d", i)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, 0, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: hostname}}, key)
	if err != nil {
		return nil, 0, err
	}
	body, err := json.Marshal(wire.RegisterRequest{
		ActivationID: act.id, ActivationCode: act.code, Hostname: hostname,
		CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})),
	})
	if err != nil {
		return nil, 0, err
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: g.pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: registerTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.server+wire.RegisterPath, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	lat := time.Since(t0)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		var e wire.ErrorResponse
		_ = json.Unmarshal(data, &e)
		return nil, 0, fmt.Errorf("registering %s: %d %s", hostname, resp.StatusCode, e.Error)
	}
	var out wire.RegisterResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, 0, fmt.Errorf("registering %s: %w", hostname, err)
	}
	block, _ := pem.Decode([]byte(out.Certificate))
	if block == nil {
		return nil, 0, fmt.Errorf("registering %s: no PEM certificate in the answer", hostname)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, 0, fmt.Errorf("registering %s: %w", hostname, err)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, 0, fmt.Errorf("registering %s: the certificate is not for the key sent", hostname)
	}
	return &host{namespace: out.Namespace, name: out.ContainerInstance,
		cert: tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: key, Leaf: leaf}}, lat, nil
}

// simAgent renews one instance's Lease with the instance's own certificate and transport.
type simAgent struct {
	h        *host
	leases   coordinationv1client.LeaseInterface
	interval time.Duration
	// Filled by run, read after it returns.
	renewals []renewal
	// leaseGone is set while renewals find no Lease: the instance cannot be connected again.
	leaseGone atomic.Bool
}

type renewal struct {
	at  time.Time
	lat time.Duration
	err error
}

// newSimAgent builds the client drover-agent builds: an HTTP/2 transport of its own that presents
// the instance's certificate and verifies droverd with the CA.
func newSimAgent(server string, pool *x509.CertPool, h *host, interval time.Duration) (*simAgent, error) {
	tr := &http.Transport{
		DialContext: (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig: &tls.Config{
			RootCAs: pool, MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{h.cert},
		},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		HTTP2:                 &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}
	rc := &rest.Config{Host: server, Transport: tr, UserAgent: "drover-bench-agent", QPS: 20, Burst: 40}
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, err
	}
	c, err := coordinationv1client.NewForConfigAndClient(rc, hc)
	if err != nil {
		return nil, err
	}
	return &simAgent{h: h, leases: c.Leases(h.namespace), interval: interval}, nil
}

func (a *simAgent) run(ctx context.Context, offset time.Duration) {
	if !sleep(ctx, offset) {
		return
	}
	failures := 0
	for {
		start := time.Now()
		err := a.renew(ctx)
		if ctx.Err() != nil {
			return
		}
		a.renewals = append(a.renewals, renewal{at: start, lat: time.Since(start), err: err})
		a.leaseGone.Store(apierrors.IsNotFound(err))
		wait := a.interval - time.Since(start)
		if err != nil {
			// drover-agent's backoff: from 1s, doubling, up to the interval.
			wait = min(time.Second<<min(failures, 10), a.interval)
			failures++
		} else {
			failures = 0
		}
		if !sleep(ctx, max(wait, 0)) {
			return
		}
	}
}

// renew does what drover-agent's heartbeat does: read the Lease, set holder, duration and renew
// time, and update it with the resourceVersion read.
func (a *simAgent) renew(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	seconds := int32((2*a.interval + time.Second - 1).Truncate(time.Second) / time.Second)
	holder := a.h.name
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		lease, err := a.leases.Get(ctx, a.h.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.NewMicroTime(time.Now())
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != holder {
			lease.Spec.HolderIdentity = &holder
			lease.Spec.AcquireTime = &now
			transitions := int32(0)
			if lease.Spec.LeaseTransitions != nil {
				transitions = *lease.Spec.LeaseTransitions + 1
			}
			lease.Spec.LeaseTransitions = &transitions
		}
		lease.Spec.LeaseDurationSeconds = &seconds
		lease.Spec.RenewTime = &now
		_, err = a.leases.Update(ctx, lease, metav1.UpdateOptions{})
		return err
	})
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
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
func collect(agents []*simAgent, t0, t1 time.Time) hbResult {
	res := hbResult{window: t1.Sub(t0)}
	for _, a := range agents {
		gone := a.leaseGone.Load()
		if gone {
			res.gone++
		}
		last := t0
		for _, rn := range a.renewals {
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
					res.firstErr = fmt.Errorf("%s: %w", a.h.name, rn.err)
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

// etcdMetrics reads the embedded etcd's Prometheus metrics with droverd's etcd client certificate.
type etcdMetrics struct {
	url string
	hc  *http.Client
}

var etcdCounters = []string{
	"etcd_mvcc_put_total",
	"etcd_mvcc_delete_total",
	"etcd_mvcc_range_total",
	"etcd_server_proposals_committed_total",
	"etcd_disk_wal_fsync_duration_seconds_count",
	"etcd_disk_backend_commit_duration_seconds_count",
}

func newEtcdMetrics(dir string, port int) (*etcdMetrics, error) {
	pkiDir := filepath.Join(dir, "pki")
	cert, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, "etcd-client.crt"), filepath.Join(pkiDir, "etcd-client.key"))
	if err != nil {
		return nil, fmt.Errorf("loading etcd's client certificate: %w", err)
	}
	ca, err := os.ReadFile(filepath.Join(pkiDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &etcdMetrics{
		url: fmt.Sprintf("https://127.0.0.1:%d/metrics", port),
		hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
		}},
	}, nil
}

type etcdSample map[string]float64

func (e *etcdMetrics) read() (etcdSample, error) {
	resp, err := e.hc.Get(e.url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", e.url, resp.Status)
	}
	s := etcdSample{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		for _, name := range etcdCounters {
			rest, ok := strings.CutPrefix(line, name)
			if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
				continue
			}
			fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
			if len(fields) == 0 {
				continue
			}
			if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
				s[name] += v // summed over labels
			}
		}
	}
	return s, sc.Err()
}

// etcdDelta is what etcd did in a window, per second, and in all.
type etcdDelta struct {
	total  map[string]float64
	window time.Duration
}

func (s etcdSample) sub(before etcdSample, window time.Duration) etcdDelta {
	d := etcdDelta{total: map[string]float64{}, window: window}
	for k, v := range s {
		d.total[k] = v - before[k]
	}
	return d
}

func (d etcdDelta) perSec(name string) float64 {
	if d.window <= 0 {
		return 0
	}
	return d.total[name] / d.window.Seconds()
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
			r.reg.ok(), f.concurrency, r.reg.rate(), ms(r.reg.wall), r.reg.errs)
		w("| registration latency p50 / p90 / p99 / max | %s |", lats(r.reg.latencies))
		w("| CPU while registering, droverd / benchmark | %.2f / %.2f cores |", r.regCPU[0], r.regCPU[1])
		if n := float64(r.reg.ok()); n > 0 {
			w("| etcd per registration: puts / proposals committed | %.1f / %.1f |",
				r.regEtcd.total["etcd_mvcc_put_total"]/n, r.regEtcd.total["etcd_server_proposals_committed_total"]/n)
		}
	}
	if r.fill.ok() > 0 {
		w("| further registrations for the heartbeats, %d | %.1f /s, p50 / p99 %s / %s (%d failed attempts, retried) |",
			r.fill.ok(), r.fill.rate(), ms(pct(r.fill.latencies, 0.5)), ms(pct(r.fill.latencies, 0.99)), r.fill.errs)
	}
	if f.baseline > 0 {
		w("| %d instances registered, no heartbeats (%s): droverd CPU, etcd puts/s | %.2f cores, %.1f /s |",
			max(f.registrations, f.instances), f.baseline, r.baseCPU[0], r.baseEtcd.perSec("etcd_mvcc_put_total"))
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
		w("| renewal latency (GET + UPDATE) p50 / p90 / p99 / max | %s |", lats(r.hb.latencies))
		w("| longest time an instance with a Lease went without a renewal | %s (grace period 10 s) |", ms(r.hb.maxGap))
		w("| droverd CPU during the window | %.2f cores (%.2f cores per 100 renewals/s) |", r.hbCPU[0], r.hbCPU[0]/max(r.hb.rate(), 1e-9)*100)
		w("| benchmark process CPU during the window | %.2f cores |", r.hbCPU[1])
		w("| etcd puts/s (etcd_mvcc_put_total) | %.1f (%.2f per renewal) |", r.hbEtcd.perSec("etcd_mvcc_put_total"),
			r.hbEtcd.total["etcd_mvcc_put_total"]/max(float64(r.hb.ok), 1))
		w("| etcd proposals committed/s, ranges (reads)/s | %.1f, %.1f |", r.hbEtcd.perSec("etcd_server_proposals_committed_total"),
			r.hbEtcd.perSec("etcd_mvcc_range_total"))
		w("| etcd WAL fsyncs/s, backend commits/s | %.1f, %.1f |", r.hbEtcd.perSec("etcd_disk_wal_fsync_duration_seconds_count"),
			r.hbEtcd.perSec("etcd_disk_backend_commit_duration_seconds_count"))
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
