package agent

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/drover-dev/drover/internal/agent/engine"
	rt "github.com/drover-dev/drover/internal/agent/runtime"
	"github.com/drover-dev/drover/internal/version"
)

// ActivationCodeEnv names the environment variable that may carry the activation code instead of
// --activation-code, which other users of the host can read in the process list.
const ActivationCodeEnv = "DROVER_ACTIVATION_CODE"

// RegisterOptions are the inputs of Register.
type RegisterOptions struct {
	// Server is the control plane's https URL.
	Server string
	// CACertHash pins the control plane's CA: "sha256:<hex>" of its certificate's
	// SubjectPublicKeyInfo, as `drover activation create` prints it.
	CACertHash string
	// ActivationID is "<namespace>/<name>" of the Activation.
	ActivationID string
	// ActivationCode is the Activation's secret code. It is sent only to a server whose CA
	// matches CACertHash, and never logged.
	ActivationCode string
	// StateDir receives the identity (key.pem, cert.pem, ca.pem, config.json).
	StateDir string
	// Hostname is reported at registration; the host's name by default.
	Hostname string
	// Force replaces a registration already in StateDir.
	Force bool

	// RequestTimeout bounds each request to the server.
	RequestTimeout time.Duration
	// Attempts bounds the registration attempts while the server answers 429 or 503.
	Attempts int
	// MaxRetryWait caps the wait between attempts, whatever Retry-After asks.
	MaxRetryWait time.Duration
}

// NewRegisterOptions returns the defaults.
func NewRegisterOptions() *RegisterOptions {
	return &RegisterOptions{
		StateDir:       DefaultStateDir,
		RequestTimeout: 30 * time.Second,
		Attempts:       5,
		MaxRetryWait:   time.Minute,
	}
}

// AddFlags binds the options to fs.
func (o *RegisterOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Server, "server", o.Server, "URL of the Drover control plane, for example https://drover.example.com:6443.")
	fs.StringVar(&o.CACertHash, "ca-cert-hash", o.CACertHash, "Hash of the control plane's CA (sha256:<hex>), as 'drover activation create' prints it. The activation code is sent only to a server whose CA matches it.")
	fs.StringVar(&o.ActivationID, "activation-id", o.ActivationID, "Activation to register with, as <namespace>/<name>.")
	fs.StringVar(&o.ActivationCode, "activation-code", o.ActivationCode, "The activation's code. Prefer the "+ActivationCodeEnv+" environment variable: command lines are visible to other users of the host.")
	fs.StringVar(&o.StateDir, "state-dir", o.StateDir, "Directory for the host's identity: key, certificate, CA and config.")
	fs.StringVar(&o.Hostname, "hostname", o.Hostname, "Hostname to report (default: this host's name).")
	fs.BoolVar(&o.Force, "force", o.Force, "Replace a registration already in --state-dir. The old ContainerInstance stays registered until deleted.")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", o.RequestTimeout, "Timeout of each request to the control plane.")
}

// Complete fills in the hostname and the code from the environment.
func (o *RegisterOptions) Complete() error {
	if o.ActivationCode == "" {
		o.ActivationCode = os.Getenv(ActivationCodeEnv)
	}
	o.Server = strings.TrimRight(strings.TrimSpace(o.Server), "/")
	o.CACertHash = strings.ToLower(strings.TrimSpace(o.CACertHash))
	o.ActivationID = strings.TrimSpace(o.ActivationID)
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("finding the hostname (set --hostname): %w", err)
		}
		o.Hostname = h
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.Attempts <= 0 {
		o.Attempts = 1
	}
	if o.MaxRetryWait <= 0 {
		o.MaxRetryWait = time.Minute
	}
	return nil
}

var caHashPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Validate reports every invalid option at once.
func (o *RegisterOptions) Validate() error {
	var errs []error
	if err := validateServer(o.Server); err != nil {
		errs = append(errs, err)
	}
	if !caHashPattern.MatchString(o.CACertHash) {
		errs = append(errs, errors.New("--ca-cert-hash must be sha256: followed by 64 hex digits, as `drover activation create` prints it"))
	}
	if _, _, err := splitActivationID(o.ActivationID); err != nil {
		errs = append(errs, err)
	}
	if o.ActivationCode == "" {
		errs = append(errs, fmt.Errorf("the activation code is required: --activation-code or %s", ActivationCodeEnv))
	}
	if len(o.Hostname) > 253 {
		errs = append(errs, errors.New("--hostname must be at most 253 characters"))
	}
	return errors.Join(errs...)
}

func validateServer(server string) error {
	if server == "" {
		return errors.New("--server is required")
	}
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("--server %q must be an https URL such as https://drover.example.com:6443", server)
	}
	return nil
}

func splitActivationID(id string) (namespace, name string, err error) {
	namespace, name, ok := strings.Cut(id, "/")
	if !ok || len(validation.IsDNS1123Label(namespace)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return "", "", fmt.Errorf("--activation-id %q must be <namespace>/<name>, as `drover activation create` prints it", id)
	}
	return namespace, name, nil
}

// RunOptions are the inputs of Run.
type RunOptions struct {
	// StateDir holds the identity written by Register.
	StateDir string
	// Hostname is reported in the instance's status; the host's name by default.
	Hostname string
	// HeartbeatInterval is how often the Lease is renewed. The Lease lasts twice as long.
	HeartbeatInterval time.Duration
	// StatusInterval is how often the instance's status is refreshed (lastHeartbeatTime) when
	// nothing else changed. The Lease is the heartbeat; like the kubelet's node status report
	// every 5 minutes, this refresh only keeps the status from going stale, and every one is a
	// storage write.
	StatusInterval time.Duration
	// CertCheckInterval is how often the certificate's remaining validity is checked.
	CertCheckInterval time.Duration
	// RequestTimeout bounds each request to the control plane.
	RequestTimeout time.Duration
	// ReservedCPU (CPU units) and ReservedMemory (MiB) are kept from tasks.
	ReservedCPU, ReservedMemory int32

	// MeminfoPath is read for the host's memory; /proc/meminfo by default.
	MeminfoPath string
	// Runtime runs the containers; when nil, the Docker Engine at DOCKER_HOST or its default
	// socket.
	Runtime rt.Runtime

	// ImagePullBehavior is when images are pulled: default, always, once or prefer-cached.
	ImagePullBehavior string
	// DockerConfig is a Docker config.json whose "auths" hold registry credentials.
	DockerConfig string
	// ImagePullTimeout bounds one image pull.
	ImagePullTimeout time.Duration
	// StopTimeout is the time between SIGTERM and SIGKILL for containers without stopTimeout.
	StopTimeout time.Duration
	// TaskCleanupDelay is how long a stopped task's containers are kept, for their logs.
	TaskCleanupDelay time.Duration
	// ImageCleanupInterval is how often unused images the agent pulled are removed; 0 never.
	ImageCleanupInterval time.Duration
	// ImageMinimumAge is how long an image the agent pulled stays unused before removal.
	ImageMinimumAge time.Duration
	// Version is the agent version reported; version.Version by default.
	Version string
}

// NewRunOptions returns the defaults.
func NewRunOptions() *RunOptions {
	return &RunOptions{
		StateDir:          DefaultStateDir,
		HeartbeatInterval: 5 * time.Second,
		StatusInterval:    5 * time.Minute,
		CertCheckInterval: time.Minute,
		RequestTimeout:    10 * time.Second,
		ReservedMemory:    256,
		MeminfoPath:       "/proc/meminfo",
		Version:           version.Version,

		ImagePullBehavior:    string(engine.PullDefault),
		ImagePullTimeout:     10 * time.Minute,
		StopTimeout:          30 * time.Second,
		TaskCleanupDelay:     time.Hour,
		ImageCleanupInterval: time.Hour,
		ImageMinimumAge:      time.Hour,
	}
}

// AddFlags binds the options to fs.
func (o *RunOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.StateDir, "state-dir", o.StateDir, "Directory holding the host's identity, written by 'drover-agent register'.")
	fs.StringVar(&o.Hostname, "hostname", o.Hostname, "Hostname to report (default: this host's name).")
	fs.DurationVar(&o.HeartbeatInterval, "heartbeat-interval", o.HeartbeatInterval, "How often to renew the heartbeat Lease; the Lease lasts twice as long.")
	fs.DurationVar(&o.StatusInterval, "status-interval", o.StatusInterval, "How often to refresh the instance's status (lastHeartbeatTime) when nothing else changed.")
	fs.DurationVar(&o.CertCheckInterval, "cert-check-interval", o.CertCheckInterval, "How often to check whether the client certificate needs renewing.")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", o.RequestTimeout, "Timeout of each request to the control plane.")
	fs.Int32Var(&o.ReservedCPU, "reserved-cpu", o.ReservedCPU, "CPU units (1024 per vCPU) kept from tasks.")
	fs.Int32Var(&o.ReservedMemory, "reserved-memory", o.ReservedMemory, "Memory in MiB kept from tasks, for the host and the agent.")
	fs.StringVar(&o.ImagePullBehavior, "image-pull-behavior", o.ImagePullBehavior, "When to pull images: default (pull, use the cached image if the pull fails), always (pull, fail if it fails), once (pull only images this agent has not pulled before), prefer-cached (pull only images not on the host).")
	fs.StringVar(&o.DockerConfig, "docker-config", o.DockerConfig, "Docker config.json whose \"auths\" give registry credentials for pulls (for example /root/.docker/config.json). Credential helpers are not used.")
	fs.DurationVar(&o.ImagePullTimeout, "image-pull-timeout", o.ImagePullTimeout, "Time one image pull may take before the task fails.")
	fs.DurationVar(&o.StopTimeout, "stop-timeout", o.StopTimeout, "Time between SIGTERM and SIGKILL when a container without stopTimeout stops.")
	fs.DurationVar(&o.TaskCleanupDelay, "task-cleanup-delay", o.TaskCleanupDelay, "How long a stopped task's containers are kept, with their logs, before they are removed.")
	fs.DurationVar(&o.ImageCleanupInterval, "image-cleanup-interval", o.ImageCleanupInterval, "How often unused images that the agent pulled are removed; 0 never removes them. Images the agent did not pull are never removed.")
	fs.DurationVar(&o.ImageMinimumAge, "image-minimum-age", o.ImageMinimumAge, "How long an image the agent pulled must be unused before it is removed.")
}

// Complete fills in defaults left empty.
func (o *RunOptions) Complete() error {
	d := NewRunOptions()
	if o.StateDir == "" {
		o.StateDir = d.StateDir
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = d.HeartbeatInterval
	}
	if o.StatusInterval <= 0 {
		o.StatusInterval = d.StatusInterval
	}
	if o.CertCheckInterval <= 0 {
		o.CertCheckInterval = d.CertCheckInterval
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = d.RequestTimeout
	}
	if o.MeminfoPath == "" {
		o.MeminfoPath = d.MeminfoPath
	}
	if o.Version == "" {
		o.Version = d.Version
	}
	if o.ImagePullBehavior == "" {
		o.ImagePullBehavior = d.ImagePullBehavior
	}
	for _, f := range []struct{ v, d *time.Duration }{{&o.ImagePullTimeout, &d.ImagePullTimeout}, {&o.StopTimeout, &d.StopTimeout},
		{&o.TaskCleanupDelay, &d.TaskCleanupDelay}, {&o.ImageMinimumAge, &d.ImageMinimumAge}} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	if o.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("finding the hostname (set --hostname): %w", err)
		}
		o.Hostname = h
	}
	return nil
}

// Validate reports every invalid option at once.
func (o *RunOptions) Validate() error {
	var errs []error
	if o.HeartbeatInterval < time.Second || o.HeartbeatInterval > 5*time.Minute {
		errs = append(errs, errors.New("--heartbeat-interval must be between 1s and 5m"))
	}
	if o.StatusInterval < o.HeartbeatInterval {
		errs = append(errs, errors.New("--status-interval must be at least --heartbeat-interval"))
	}
	if o.ReservedCPU < 0 || o.ReservedMemory < 0 {
		errs = append(errs, errors.New("--reserved-cpu and --reserved-memory must not be negative"))
	}
	if len(o.Hostname) > 253 {
		errs = append(errs, errors.New("--hostname must be at most 253 characters"))
	}
	if !slices.Contains(engine.PullBehaviors, engine.PullBehavior(o.ImagePullBehavior)) {
		errs = append(errs, fmt.Errorf("--image-pull-behavior %q must be one of default, always, once, prefer-cached", o.ImagePullBehavior))
	}
	if o.ImageCleanupInterval < 0 {
		errs = append(errs, errors.New("--image-cleanup-interval must not be negative (0 disables image cleanup)"))
	}
	return errors.Join(errs...)
}
