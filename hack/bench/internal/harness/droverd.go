// Package harness holds what the benchmarks that run droverd with its controllers share: starting
// droverd as a child process, a client without rate limit, simulated container instances, droverd's
// /metrics and CPU profile, and small helpers for running work in parallel and printing figures.
package harness

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	"github.com/drover-dev/drover/hack/bench/internal/procinfo"
)

// Droverd is a droverd child process.
type Droverd struct {
	Cmd     *exec.Cmd
	DataDir string
	exited  chan error
	log     *os.File
}

// StartDroverd starts bin with its controllers on free loopback ports, the data dir dir and its log
// in dir.log, with --profiling when profiling is set, and waits until it is ready.
func StartDroverd(bin, dir string, profiling bool, timeout time.Duration) (*Droverd, error) {
	ports, err := procinfo.FreePorts(3)
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(dir + ".log")
	if err != nil {
		return nil, err
	}
	args := []string{
		"--data-dir", dir, "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(ports[0]),
		"--etcd-client-port", strconv.Itoa(ports[1]), "--etcd-peer-port", strconv.Itoa(ports[2]),
		"--controllers=true",
	}
	if profiling {
		args = append(args, "--profiling")
	}
	d := &Droverd{Cmd: exec.Command(bin, args...), DataDir: dir, exited: make(chan error, 1), log: logFile}
	d.Cmd.Stdout, d.Cmd.Stderr = logFile, logFile
	if err := d.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting droverd: %w", err)
	}
	go func() { d.exited <- d.Cmd.Wait() }()
	if err := waitReady(fmt.Sprintf("https://127.0.0.1:%d", ports[0]), dir, timeout, d.exited); err != nil {
		d.Stop()
		return nil, fmt.Errorf("%w\ndroverd log: %s", err, TailFile(logFile.Name(), 3000))
	}
	return d, nil
}

// PID is droverd's process id.
func (d *Droverd) PID() int { return d.Cmd.Process.Pid }

// Stop sends SIGTERM and waits up to a minute before killing droverd.
func (d *Droverd) Stop() {
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

// waitReady polls url/readyz, trusting the CA droverd writes to dataDir/pki/ca.crt.
func waitReady(url, dataDir string, timeout time.Duration, exited <-chan error) error {
	deadline := time.Now().Add(timeout)
	var hc *http.Client
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("droverd exited before it was ready: %v", err)
		default:
		}
		if hc == nil {
			if ca, err := os.ReadFile(filepath.Join(dataDir, "pki", "ca.crt")); err == nil {
				pool := x509.NewCertPool()
				if pool.AppendCertsFromPEM(ca) {
					hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
				}
			}
		}
		if hc != nil {
			resp, err := hc.Get(url + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
				last = resp.Status
			} else {
				last = err.Error()
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("droverd at %s not ready after %s: %s", url, timeout, last)
}

// Connect returns the admin REST config of droverd's data dir, without client-side rate limit, and a
// client for Drover's types, Leases and core types.
func Connect(dataDir, userAgent string) (*rest.Config, client.WithWatch, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dataDir, "admin.kubeconfig"))
	if err != nil {
		return nil, nil, fmt.Errorf("loading admin kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limit
	cfg.Timeout = time.Minute
	cfg.UserAgent = userAgent
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
