package agent

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/agent/backoff"
	rt "github.com/drover-dev/drover/internal/agent/runtime"
)

// dockerTimeout bounds asking the Docker Engine its version.
const dockerTimeout = 5 * time.Second

// statusReporter reports the host on its ContainerInstance's status: at start, every interval,
// and when the heartbeat comes back after a gap. The Lease carries the heartbeat; this writes the
// ContainerInstance only that often.
type statusReporter struct {
	conn     *conn
	host     host
	docker   rt.Runtime
	version  string
	interval time.Duration
	timeout  time.Duration
	trigger  <-chan struct{}

	// reported is set after the first report of this process, which also resets
	// remainingResources.
	reported     bool
	dockerFailed bool
}

func (s *statusReporter) name() string { return "status" }

func (s *statusReporter) run(ctx context.Context) {
	log := klog.FromContext(ctx)
	b := backoff.Backoff{Min: time.Second, Max: s.interval}
	for {
		wait := s.interval
		if err := s.report(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error(err, "Cannot report the instance's status; trying again")
			wait = b.Next()
		} else {
			b.Reset()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.trigger:
			t.Stop()
		case <-t.C:
		}
	}
}

// report writes the instance's status with a merge patch that fails if the instance changed since
// it was read, so that it never undoes what the controller wrote in between (agentConnected).
func (s *statusReporter) report(ctx context.Context) error {
	dockerVersion := s.dockerVersion(ctx)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key := client.ObjectKey{Namespace: s.conn.cfg.Namespace, Name: s.conn.cfg.ContainerInstance}
	attempt := 0
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		attempt++
		var ci ecsv1alpha1.ContainerInstance
		if err := readForWrite(ctx, s.conn.client, key, &ci, attempt); err != nil {
			return err
		}
		orig := ci.DeepCopy()
		s.apply(&ci, dockerVersion, time.Now())
		return s.conn.client.Status().Patch(ctx, &ci, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	})
	if err != nil {
		if apierrors.IsNotFound(err) {
			klog.FromContext(ctx).Info("The ContainerInstance does not exist: it was deregistered. Register the host again to use it", "error", err.Error())
		}
		return err
	}
	if !s.reported {
		klog.FromContext(ctx).Info("Reported the instance's status", "cpu", s.host.resources.CPU, "memoryMiB", s.host.resources.Memory, "dockerVersion", dockerVersion)
	}
	s.reported = true
	return nil
}

// apply sets what the agent owns in the status.
func (s *statusReporter) apply(ci *ecsv1alpha1.ContainerInstance, dockerVersion string, now time.Time) {
	st := &ci.Status
	st.AgentConnected = true
	st.AgentVersion = truncate(s.version, 64)
	st.DockerVersion = truncate(dockerVersion, 64)
	st.OSType = s.host.osType
	st.CPUArchitecture = s.host.arch
	st.Hostname = s.host.hostname
	if st.RegisteredAt == nil {
		created := ci.CreationTimestamp
		st.RegisteredAt = &created
	}
	heartbeat := metav1.NewTime(now)
	st.LastHeartbeatTime = &heartbeat
	registered := s.host.resources
	st.RegisteredResources = &registered
	if !s.reported || st.RemainingResources == nil {
		remaining := s.host.resources
		st.RemainingResources = &remaining
	}
	st.Attributes = append([]ecsv1alpha1.Attribute(nil), s.host.attributes...)
}

// dockerVersion asks the Docker Engine its version, "" when it cannot be reached.
func (s *statusReporter) dockerVersion(ctx context.Context) string {
	if s.docker == nil {
		return ""
	}
	log := klog.FromContext(ctx)
	ctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	v, err := s.docker.Version(ctx)
	switch {
	case err != nil && !s.dockerFailed:
		log.Error(err, "Cannot reach the Docker Engine; reporting no Docker version")
		s.dockerFailed = true
	case err == nil && s.dockerFailed:
		log.Info("Reached the Docker Engine", "version", v)
		s.dockerFailed = false
	}
	return v
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
