// Package framework starts real droverd servers for integration and e2e tests: in-process (real
// etcd, real API server, real controllers) or as a separate droverd process built from ./cmd/droverd.
package framework

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/drover-dev/drover/internal/apiserver"
	"github.com/drover-dev/drover/internal/droverd"
	"github.com/drover-dev/drover/internal/manager"
	"github.com/drover-dev/drover/test/framework/freeport"
)

// Server is a running droverd.
type Server struct {
	// URL is the API server's https URL on loopback.
	URL string
	// DataDir is the server's data directory.
	DataDir string
	// Kubeconfig is the admin kubeconfig's path.
	Kubeconfig string
	// Config is an admin rest.Config.
	Config *rest.Config
	// Client is an admin controller-runtime client that knows Drover's types.
	Client client.Client
	// Options are the options the server was started with.
	Options *droverd.Options
}

// Option adjusts a server's options before it starts.
type Option func(*droverd.Options)

// WithoutControllers serves the API only.
func WithoutControllers() Option { return func(o *droverd.Options) { o.Controllers = false } }

// WithDataDir uses dir instead of a fresh temporary directory.
func WithDataDir(dir string) Option { return func(o *droverd.Options) { o.DataDir = dir } }

// NewOptions returns droverd options for a test: loopback only, free ports, a temporary data dir.
func NewOptions(t testing.TB, opts ...Option) *droverd.Options {
	t.Helper()
	o := droverd.NewOptions()
	o.DataDir = t.TempDir()
	o.BindAddress = "127.0.0.1"
	ports := FreePorts(t, 4)
	o.SecurePort, o.EtcdClientPort, o.EtcdPeerPort, o.EtcdHTTPPort = ports[0], ports[1], ports[2], ports[3]
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// Start runs droverd in this process and waits until /readyz passes. It stops when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := NewOptions(t, opts...)
	if err := o.Complete(); err != nil {
		t.Fatalf("completing options: %v", err)
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("invalid options: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := apiserver.New(ctx, o.ServerConfig())
	if err != nil {
		cancel()
		t.Fatalf("starting droverd: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			t.Errorf("droverd did not shut down within 90s")
		}
	})
	s := &Server{URL: srv.URL, DataDir: o.DataDir, Kubeconfig: srv.AdminKubeconfig, Options: o}
	s.waitReady(t, done)
	return s
}

func (s *Server) waitReady(t testing.TB, exited <-chan error) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		t.Fatalf("loading admin kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	s.Config = cfg
	if err := WaitReady(t.Context(), s.URL, s.DataDir, 3*time.Minute, exited); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: manager.Scheme})
	if err != nil {
		t.Fatalf("creating client: %v", err)
	}
	s.Client = c
}

// WaitReady polls url/readyz, verifying the server with the CA in dataDir, until it answers ok,
// the timeout passes, or exited reports that the server stopped.
func WaitReady(ctx context.Context, url, dataDir string, timeout time.Duration, exited <-chan error) error {
	ca, err := os.ReadFile(filepath.Join(dataDir, "pki", "ca.crt"))
	for i := 0; err != nil && i < 100; i++ { // the CA is written at start
		time.Sleep(100 * time.Millisecond)
		ca, err = os.ReadFile(filepath.Join(dataDir, "pki", "ca.crt"))
	}
	if err != nil {
		return fmt.Errorf("reading CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("droverd exited before it was ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := hc.Get(url + "/readyz")
		if err == nil {
			body := make([]byte, 4096)
			n, _ := resp.Body.Read(body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body[:n])
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("droverd at %s not ready after %s: %s", url, timeout, last)
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment ago (see freeport).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := freeport.Pick(n)
	if err != nil {
		t.Fatalf("finding free ports: %v", err)
	}
	return ports
}

// Args turns options into droverd command-line flags, for starting a droverd process.
func Args(o *droverd.Options) []string {
	args := []string{
		"--data-dir", o.DataDir, "--bind-address", o.BindAddress, "--secure-port", strconv.Itoa(o.SecurePort),
		"--etcd-client-port", strconv.Itoa(o.EtcdClientPort), "--etcd-peer-port", strconv.Itoa(o.EtcdPeerPort),
		"--etcd-http-port", strconv.Itoa(o.EtcdHTTPPort),
		"--controllers=" + strconv.FormatBool(o.Controllers),
	}
	if len(o.EtcdServers) > 0 {
		args = append(args, "--etcd-servers", joinComma(o.EtcdServers),
			"--etcd-cafile", o.EtcdCAFile, "--etcd-certfile", o.EtcdCertFile, "--etcd-keyfile", o.EtcdKeyFile)
	}
	return args
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ","
		}
		out += v
	}
	return out
}
