// Package droverd turns droverd's command line into a running control plane: the API server with
// embedded or external etcd, and the controllers (in-process, or alone against another API server).
package droverd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/drover-dev/drover/controllers/containerinstance"
	"github.com/drover-dev/drover/internal/apiserver"
	"github.com/drover-dev/drover/internal/apiserver/builtin"
	"github.com/drover-dev/drover/internal/liveness"
	"github.com/drover-dev/drover/internal/manager"
)

// Options are droverd's flags. Names follow kube-apiserver's where it has the same setting.
type Options struct {
	DataDir        string
	BindAddress    string
	SecurePort     int
	TLSSANs        []string
	EtcdServers    []string
	EtcdCAFile     string
	EtcdCertFile   string
	EtcdKeyFile    string
	EtcdPrefix     string
	EtcdClientPort int
	EtcdPeerPort   int
	EtcdHTTPPort   int
	Profiling      bool
	// MaxRequestsInFlight and MaxMutatingRequestsInFlight bound the API requests served at once;
	// further ones are answered 429 with Retry-After.
	MaxRequestsInFlight         int
	MaxMutatingRequestsInFlight int
	// InstanceCertValidity is the lifetime of container instance certificates.
	InstanceCertValidity time.Duration

	Controllers     bool
	ControllersOnly bool
	Kubeconfig      string
	LeaderElect     bool
	HealthProbeBind string
	// HeartbeatPersistInterval bounds how far an instance Lease's stored renewTime may fall behind
	// its latest renewal while this droverd's controllers lead; 0 writes every renewal.
	HeartbeatPersistInterval time.Duration
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		DataDir:        "./drover-data",
		BindAddress:    "0.0.0.0",
		SecurePort:     6443,
		EtcdPrefix:     "/drover",
		EtcdClientPort: 2379,
		EtcdPeerPort:   2380,
		EtcdHTTPPort:   2381,
		Controllers:    true,
		LeaderElect:    true,

		MaxRequestsInFlight:         400,
		MaxMutatingRequestsInFlight: 200,
		InstanceCertValidity:        30 * 24 * time.Hour,
		HeartbeatPersistInterval:    liveness.DefaultPersistInterval,
	}
}

// AddFlags registers the flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "Directory for the CA and certificates (pki/), the admin kubeconfig and the embedded etcd's data (etcd/).")
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "IP address to serve the API on (0.0.0.0 for all interfaces).")
	fs.IntVar(&o.SecurePort, "secure-port", o.SecurePort, "Port to serve the API on, over TLS.")
	fs.StringSliceVar(&o.TLSSANs, "tls-san", o.TLSSANs, "Extra DNS names or IP addresses for the serving certificate (hosts and clients dial these).")
	fs.StringSliceVar(&o.EtcdServers, "etcd-servers", o.EtcdServers, "External etcd endpoints (https://host:port, comma separated). Without it droverd runs etcd embedded.")
	fs.StringVar(&o.EtcdCAFile, "etcd-cafile", o.EtcdCAFile, "CA bundle that verifies the external etcd's serving certificate.")
	fs.StringVar(&o.EtcdCertFile, "etcd-certfile", o.EtcdCertFile, "Client certificate for the external etcd.")
	fs.StringVar(&o.EtcdKeyFile, "etcd-keyfile", o.EtcdKeyFile, "Client key for the external etcd.")
	fs.StringVar(&o.EtcdPrefix, "etcd-prefix", o.EtcdPrefix, "Key prefix of every object in etcd; droverds sharing an etcd must use the same prefix.")
	fs.IntVar(&o.EtcdClientPort, "etcd-client-port", o.EtcdClientPort, "Client port of the embedded etcd (on 127.0.0.1, mutual TLS).")
	fs.IntVar(&o.EtcdPeerPort, "etcd-peer-port", o.EtcdPeerPort, "Peer port of the embedded etcd (on 127.0.0.1, mutual TLS).")
	fs.IntVar(&o.EtcdHTTPPort, "etcd-http-port", o.EtcdHTTPPort, "Port of the embedded etcd's HTTP endpoints (/metrics, /health; on 127.0.0.1, mutual TLS), apart from its gRPC client port.")
	fs.BoolVar(&o.Profiling, "profiling", o.Profiling, "Serve /debug/pprof to admins.")
	fs.IntVar(&o.MaxRequestsInFlight, "max-requests-inflight", o.MaxRequestsInFlight, "Most non-mutating API requests (watches aside) served at once; further ones are answered 429 with Retry-After.")
	fs.IntVar(&o.MaxMutatingRequestsInFlight, "max-mutating-requests-inflight", o.MaxMutatingRequestsInFlight, "Most mutating API requests served at once; further ones are answered 429 with Retry-After.")
	fs.DurationVar(&o.InstanceCertValidity, "instance-cert-validity", o.InstanceCertValidity, "Lifetime of the client certificates issued to container instances; agents renew them when a third is left.")
	fs.BoolVar(&o.Controllers, "controllers", o.Controllers, "Run Drover's controllers in this process (leader-elected). --controllers=false serves the API only.")
	fs.BoolVar(&o.ControllersOnly, "controllers-only", o.ControllersOnly, "Run only the controllers, against the API server in --kubeconfig (for example a Kubernetes cluster with Drover's CRDs).")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig of the API server to run the controllers against (with --controllers-only; in-cluster config when empty).")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Elect one leader among controller processes with a Lease, so that several can run at once.")
	fs.DurationVar(&o.HeartbeatPersistInterval, "heartbeat-persist-interval", o.HeartbeatPersistInterval, "While this droverd's controllers lead, host heartbeats that only renew their Lease are kept in memory and written to etcd at most this often per host (reads through droverd show the latest); 0 writes every heartbeat.")
	fs.StringVar(&o.HealthProbeBind, "health-probe-bind-address", o.HealthProbeBind, "With --controllers-only: address for the controllers' /healthz and /readyz (e.g. :8081); empty is off.")
}

// Complete fills in derived values.
func (o *Options) Complete() error {
	if o.DataDir != "" {
		abs, err := filepath.Abs(o.DataDir)
		if err != nil {
			return err
		}
		o.DataDir = abs
	}
	if o.Kubeconfig == "" && o.ControllersOnly {
		o.Kubeconfig = os.Getenv("KUBECONFIG")
	}
	return nil
}

// Validate checks the flags and says how to fix what is wrong.
func (o *Options) Validate() error {
	var errs []error
	if o.ControllersOnly {
		if !o.Controllers {
			errs = append(errs, errors.New("--controllers-only and --controllers=false exclude each other"))
		}
		return errors.Join(errs...)
	}
	if o.Kubeconfig != "" {
		errs = append(errs, errors.New("--kubeconfig is only used with --controllers-only"))
	}
	for name, limit := range map[string]int{"--max-requests-inflight": o.MaxRequestsInFlight, "--max-mutating-requests-inflight": o.MaxMutatingRequestsInFlight} {
		if limit < 1 {
			errs = append(errs, fmt.Errorf("%s %d must be at least 1", name, limit))
		}
	}
	if o.HeartbeatPersistInterval < 0 {
		errs = append(errs, fmt.Errorf("--heartbeat-persist-interval %s is negative; use 0 to write every heartbeat", o.HeartbeatPersistInterval))
	}
	if net.ParseIP(o.BindAddress) == nil {
		errs = append(errs, fmt.Errorf("--bind-address %q is not an IP address", o.BindAddress))
	}
	for name, port := range map[string]int{"--secure-port": o.SecurePort, "--etcd-client-port": o.EtcdClientPort, "--etcd-peer-port": o.EtcdPeerPort, "--etcd-http-port": o.EtcdHTTPPort} {
		if port < 1 || port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d is out of range 1-65535", name, port))
		}
	}
	if len(o.EtcdServers) == 0 && (o.EtcdClientPort == o.EtcdPeerPort || o.EtcdHTTPPort == o.EtcdClientPort || o.EtcdHTTPPort == o.EtcdPeerPort) {
		errs = append(errs, fmt.Errorf("--etcd-client-port, --etcd-peer-port and --etcd-http-port must differ (%d, %d, %d)", o.EtcdClientPort, o.EtcdPeerPort, o.EtcdHTTPPort))
	}
	for _, s := range o.EtcdServers {
		if !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") {
			errs = append(errs, fmt.Errorf("--etcd-servers entry %q must be a URL such as https://127.0.0.1:2379", s))
		}
	}
	if len(o.EtcdServers) > 0 && (o.EtcdCertFile == "") != (o.EtcdKeyFile == "") {
		errs = append(errs, errors.New("--etcd-certfile and --etcd-keyfile go together"))
	}
	if !strings.HasPrefix(o.EtcdPrefix, "/") {
		errs = append(errs, fmt.Errorf("--etcd-prefix %q must start with /", o.EtcdPrefix))
	}
	if o.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	if o.InstanceCertValidity < time.Minute || o.InstanceCertValidity > 365*24*time.Hour {
		errs = append(errs, fmt.Errorf("--instance-cert-validity %s must be between 1m and 8760h", o.InstanceCertValidity))
	}
	return errors.Join(errs...)
}

// Run runs droverd until ctx ends.
func (o *Options) Run(ctx context.Context) error {
	if o.ControllersOnly {
		cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
		if err != nil {
			return fmt.Errorf("loading --kubeconfig: %w", err)
		}
		klog.InfoS("running controllers only", "server", cfg.Host)
		return manager.Run(ctx, cfg, manager.Options{
			LeaderElection: o.LeaderElect, LeaderElectionNamespace: builtin.SystemNamespace,
			HealthProbeBindAddress: o.HealthProbeBind,
		})
	}
	srv, err := apiserver.New(ctx, o.ServerConfig())
	if err != nil {
		return err
	}
	klog.InfoS("droverd is starting", "url", srv.URL, "adminKubeconfig", srv.AdminKubeconfig)
	fmt.Fprintf(os.Stderr, "\nAdmin kubeconfig: %s\nTry: kubectl --kubeconfig %s get namespaces\n\n", srv.AdminKubeconfig, relative(srv.AdminKubeconfig))
	return srv.Run(ctx)
}

// controllersStopTimeout bounds how long shutdown waits for the controllers to stop.
const controllersStopTimeout = 20 * time.Second

// ServerConfig is the API server configuration these options describe.
func (o *Options) ServerConfig() apiserver.Config {
	cfg := apiserver.Config{
		DataDir: o.DataDir, BindAddress: net.ParseIP(o.BindAddress), SecurePort: o.SecurePort, TLSSANs: o.TLSSANs,
		EtcdServers: o.EtcdServers, EtcdCAFile: o.EtcdCAFile, EtcdCertFile: o.EtcdCertFile, EtcdKeyFile: o.EtcdKeyFile,
		EtcdPrefix: o.EtcdPrefix, EtcdClientPort: o.EtcdClientPort, EtcdPeerPort: o.EtcdPeerPort, EtcdHTTPPort: o.EtcdHTTPPort,
		EnableProfiling: o.Profiling, InstanceCertValidity: o.InstanceCertValidity,
		MaxRequestsInFlight: o.MaxRequestsInFlight, MaxMutatingRequestsInFlight: o.MaxMutatingRequestsInFlight,
	}
	if o.Controllers {
		leaderElect := o.LeaderElect
		// While this droverd's controllers lead, its Lease storage keeps instances' renewals in
		// memory for them instead of writing each to etcd.
		var renewals *liveness.Renewals
		if o.HeartbeatPersistInterval > 0 {
			renewals = liveness.New(containerinstance.DefaultGracePeriod, o.HeartbeatPersistInterval)
			cfg.Renewals = renewals
		}
		// The controllers stop before the API does, so that the leader can still release its
		// lease and the next droverd takes over at once instead of after the lease expires.
		var (
			mu   sync.Mutex
			stop = func() {}
		)
		cfg.PostStart = append(cfg.PostStart, apiserver.NamedHook{Name: "drover-controllers", Fn: func(hc genericapiserver.PostStartHookContext) error {
			if err := manager.WaitForAPIs(hc.Context, hc.LoopbackClientConfig, 2*time.Minute); err != nil {
				return err
			}
			mgr, err := manager.New(hc.LoopbackClientConfig, manager.Options{LeaderElection: leaderElect, LeaderElectionNamespace: builtin.SystemNamespace,
				Renewals: renewals})
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				stopped := make(chan error, 1)
				go func() { stopped <- mgr.Start(ctx) }()
				// Renewals are kept in memory only while the controllers that read them lead here:
				// once they stop, leadership may pass to another droverd, which reads the Leases.
				var err error
				select {
				case <-mgr.Elected():
					renewals.Activate()
					err = <-stopped
					renewals.Deactivate()
				case err = <-stopped:
				}
				if err != nil {
					klog.ErrorS(err, "controllers stopped")
				}
			}()
			mu.Lock()
			stop = func() {
				cancel()
				select {
				case <-done:
				case <-time.After(controllersStopTimeout):
					klog.InfoS("controllers did not stop in time; shutting the API down anyway", "timeout", controllersStopTimeout)
				}
			}
			mu.Unlock()
			return nil
		}, PreShutdown: func() error {
			mu.Lock()
			defer mu.Unlock()
			stop()
			return nil
		}})
	}
	return cfg
}

func relative(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return "./" + rel
	}
	return path
}
