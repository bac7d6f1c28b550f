// Package harness holds what the benchmarks that run droverd with its controllers share: starting
// droverd as a child process, a client without rate limit, simulated container instances, droverd's
// /metrics and CPU profile, the embedded etcd's counters, and small helpers for running work in
// parallel and printing figures.
package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/test/framework/freeport"
)

// Droverd is a droverd child process.
type Droverd struct {
	Cmd     *exec.Cmd
	DataDir string
	// Ports are the API, etcd client, etcd peer and etcd HTTP ports; a restart keeps them.
	Ports []int
	// URL is the API server's address.
	URL string
	// Startup is how the last start went.
	Startup Startup
	bin     string
	opts    Options
	exited  chan error
	log     *os.File
}

// Options are what StartDroverdWith can change from StartDroverd's defaults.
type Options struct {
	// Profiling runs droverd with --profiling.
	Profiling bool
	// NoControllers runs droverd with --controllers=false.
	NoControllers bool
	// Timeout is how long droverd may take to be ready.
	Timeout time.Duration
	// PollEvery is how often /readyz is polled while droverd starts; 50 ms when zero.
	PollEvery time.Duration
	// Args are more droverd flags.
	Args []string
}

// Startup is one start of droverd, measured from exec: to the first answer on the API port, to
// /readyz ok, and to each /readyz check first passing.
type Startup struct {
	Ready     time.Duration
	Listening time.Duration
	Checks    map[string]time.Duration
}

// StartDroverd starts bin with its controllers on free loopback ports, the data dir dir and its log
// in dir.log, with --profiling when profiling is set, and waits until it is ready.
func StartDroverd(bin, dir string, profiling bool, timeout time.Duration) (*Droverd, error) {
	return StartDroverdWith(context.Background(), bin, dir, Options{Profiling: profiling, Timeout: timeout})
}

// StartDroverdWith starts bin on free loopback ports, the data dir dir and its log in dir.log, as
// opts say, and waits until it is ready or ctx is done.
func StartDroverdWith(ctx context.Context, bin, dir string, opts Options) (*Droverd, error) {
	ports, err := freeport.Pick(4)
	if err != nil {
		return nil, err
	}
	d := &Droverd{DataDir: dir, Ports: ports, URL: fmt.Sprintf("https://127.0.0.1:%d", ports[0]), bin: bin, opts: opts}
	if err := d.Start(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Start starts droverd (again, once stopped) on its data dir and ports, appending to its log, and
// waits until it is ready or ctx is done; Startup then tells how long that took.
func (d *Droverd) Start(ctx context.Context) error {
	logFile, err := os.OpenFile(d.DataDir+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := []string{
		"--data-dir", d.DataDir, "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(d.Ports[0]),
		"--etcd-client-port", strconv.Itoa(d.Ports[1]), "--etcd-peer-port", strconv.Itoa(d.Ports[2]),
		"--etcd-http-port", strconv.Itoa(d.Ports[3]),
		"--controllers=" + strconv.FormatBool(!d.opts.NoControllers),
	}
	if d.opts.Profiling {
		args = append(args, "--profiling")
	}
	args = append(args, d.opts.Args...)
	d.Cmd, d.exited, d.log = exec.Command(d.bin, args...), make(chan error, 1), logFile
	d.Cmd.Stdout, d.Cmd.Stderr = logFile, logFile
	// A benchmark killed by a signal runs none of its cleanup; without this its droverd would
	// live on and load the machine under the next benchmark.
	d.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	t0 := time.Now()
	if err := d.Cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting droverd: %w", err)
	}
	go func() { d.exited <- d.Cmd.Wait() }()
	poll := d.opts.PollEvery
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	d.Startup, err = waitReady(ctx, t0, d.URL, d.DataDir, d.opts.Timeout, poll, d.exited)
	if err != nil {
		d.Stop()
		return fmt.Errorf("%w\ndroverd log (%s):\n%s", err, logFile.Name(), TailFile(logFile.Name(), 3000))
	}
	return nil
}

// SetControllers sets whether the next Start runs droverd's controllers.
func (d *Droverd) SetControllers(on bool) { d.opts.NoControllers = !on }

// PID is droverd's process id.
func (d *Droverd) PID() int { return d.Cmd.Process.Pid }

// Stop sends SIGTERM and waits up to a minute before killing droverd.
func (d *Droverd) Stop() {
	if d.Cmd == nil {
		return
	}
	defer d.log.Close()
	if d.Cmd.ProcessState != nil {
		return
	}
	_ = d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(time.Minute):
		_ = d.Cmd.Process.Kill()
		<-d.exited
	}
}

// Shutdown sends SIGTERM and waits up to timeout for droverd to exit, returning how long that took;
// it is an error when droverd does not exit cleanly in time.
func (d *Droverd) Shutdown(timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	_ = d.Cmd.Process.Signal(syscall.SIGTERM)
	defer d.log.Close()
	select {
	case err := <-d.exited:
		if err != nil {
			return 0, fmt.Errorf("droverd exited with %v after SIGTERM; log %s:\n%s", err, d.log.Name(), TailFile(d.log.Name(), 3000))
		}
		return time.Since(t0), nil
	case <-time.After(timeout):
		_ = d.Cmd.Process.Kill()
		<-d.exited
		return 0, fmt.Errorf("droverd did not exit within %s of SIGTERM", timeout)
	}
}

// Kill kills droverd if it still runs and waits up to 10 s for it to exit.
func (d *Droverd) Kill() {
	if d.Cmd != nil && d.Cmd.ProcessState == nil {
		_ = d.Cmd.Process.Kill()
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
		}
	}
}

// waitReady polls url/readyz?verbose every poll from t0 on, trusting the CA droverd writes to
// dataDir/pki/ca.crt, and records when the port first answers and when each check first passes.
func waitReady(ctx context.Context, t0 time.Time, url, dataDir string, timeout, poll time.Duration, exited <-chan error) (Startup, error) {
	s := Startup{Checks: map[string]time.Duration{}}
	deadline := t0.Add(timeout)
	var hc *http.Client
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return s, fmt.Errorf("droverd exited before it was ready: %v", err)
		case <-ctx.Done():
			return s, ctx.Err()
		default:
		}
		if hc == nil {
			// The CA is written early at start; until it is complete there is nothing to verify against.
			if ca, err := os.ReadFile(filepath.Join(dataDir, "pki", "ca.crt")); err == nil {
				pool := x509.NewCertPool()
				if pool.AppendCertsFromPEM(ca) {
					hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
						TLSClientConfig: &tls.Config{RootCAs: pool},
						DialContext:     (&net.Dialer{Timeout: time.Second}).DialContext,
					}}
				}
			}
		}
		if hc != nil {
			resp, err := hc.Get(url + "/readyz?verbose")
			if err == nil {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				now := time.Since(t0)
				if s.Listening == 0 {
					s.Listening = now
				}
				for line := range strings.SplitSeq(string(body), "\n") {
					if name, ok := strings.CutPrefix(line, "[+]"); ok {
						name, _, _ = strings.Cut(name, " ")
						if _, seen := s.Checks[name]; !seen {
							s.Checks[name] = now
						}
					}
				}
				if resp.StatusCode == http.StatusOK {
					s.Ready = now
					return s, nil
				}
				last = fmt.Sprintf("%d %s", resp.StatusCode, body)
			} else {
				last = err.Error()
			}
		}
		time.Sleep(poll)
	}
	return s, fmt.Errorf("droverd at %s not ready after %s: %s", url, timeout, last)
}

// AdminConfig is the admin REST config of droverd's data dir, without client-side rate limit and
// without timeout.
func AdminConfig(dataDir, userAgent string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dataDir, "admin.kubeconfig"))
	if err != nil {
		return nil, fmt.Errorf("loading admin kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limit
	cfg.UserAgent = userAgent
	return cfg, nil
}

// Connect returns the admin REST config of droverd's data dir, without client-side rate limit, and a
// client for Drover's types, Leases and core types.
func Connect(dataDir, userAgent string) (*rest.Config, client.WithWatch, error) {
	cfg, err := AdminConfig(dataDir, userAgent)
	if err != nil {
		return nil, nil, err
	}
	cfg.Timeout = time.Minute
	scheme := kruntime.NewScheme()
	for _, add := range []func(*kruntime.Scheme) error{ecsv1alpha1.AddToScheme, coordinationv1.AddToScheme, corev1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, nil, err
		}
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, nil, err
	}
	return cfg, c, nil
}

// RawClient returns a REST client for paths such as /metrics; it has no overall timeout, so that a
// long CPU profile can be fetched.
func RawClient(cfg *rest.Config) (rest.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 0
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return cs.CoreV1().RESTClient(), nil
}

// TailFile is the last n bytes of a file, or the error reading it.
func TailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b[max(0, len(b)-n):])
}

// Launch is the start of a benchmark run: it checks the droverd binary, makes a data directory
// (removed again by the returned cleanup unless keep is set), creates profileDir when given, starts
// droverd with profiling when profileDir is set, and connects as admin with userAgent.
func Launch(droverdPath, userAgent string, keep bool, profileDir string, readyTimeout time.Duration,
	logf func(string, ...any)) (d *Droverd, cfg *rest.Config, c client.WithWatch, cleanup func(), err error) {
	return LaunchWith(droverdPath, userAgent, keep, profileDir, Options{Timeout: readyTimeout}, logf)
}

// LaunchWith is Launch with droverd started as opts say (and with profiling when profileDir is set).
func LaunchWith(droverdPath, userAgent string, keep bool, profileDir string, opts Options,
	logf func(string, ...any)) (d *Droverd, cfg *rest.Config, c client.WithWatch, cleanup func(), err error) {
	cleanup = func() {}
	bin, err := filepath.Abs(droverdPath)
	if err != nil {
		return nil, nil, nil, cleanup, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, nil, nil, cleanup, fmt.Errorf("droverd binary: %w (make build first)", err)
	}
	dir, err := os.MkdirTemp("", userAgent+"-")
	if err != nil {
		return nil, nil, nil, cleanup, err
	}
	if keep {
		logf("data dir %s, log %s.log", dir, dir)
	} else {
		cleanup = func() { _ = os.RemoveAll(dir); _ = os.Remove(dir + ".log") }
	}
	if profileDir != "" {
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			return nil, nil, nil, cleanup, err
		}
	}
	opts.Profiling = opts.Profiling || profileDir != ""
	d, err = StartDroverdWith(context.Background(), bin, dir, opts)
	if err != nil {
		return nil, nil, nil, cleanup, err
	}
	remove := cleanup
	cleanup = func() { d.Stop(); remove() }
	logf("droverd ready (pid %d)", d.PID())
	cfg, c, err = Connect(dir, userAgent)
	if err != nil {
		return nil, nil, nil, cleanup, err
	}
	return d, cfg, c, cleanup, nil
}
