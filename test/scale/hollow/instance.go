package hollow

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/agent/backoff"
)

// AgentVersion is what hollow instances report as their agent's version.
const AgentVersion = "0.0.0-hollow"

// builtinAttributes are what drover-agent reports on linux/amd64.
var builtinAttributes = []ecsv1alpha1.Attribute{
	{Name: "ecs.capability.external"},
	{Name: "ecs.cpu-architecture", Value: "x86_64"},
	{Name: "ecs.os-family", Value: "LINUX"},
	{Name: "ecs.os-type", Value: "linux"},
}

// What an instance has done so far; it counts as started once it has done all it does.
const (
	startedRenewal uint32 = 1 << iota
	startedStatus
	startedWatch
)

// Instance is one hollow container instance.
type Instance struct {
	fleet *Fleet
	index int
	id    *Identity
	conn  *conn

	cancel context.CancelFunc
	dead   atomic.Bool
	// started holds the started* bits.
	started atomic.Uint32

	// mu guards tasks, the Tasks bound to the instance by uid; wake tells the report goroutine
	// that they changed.
	mu    sync.Mutex
	tasks map[types.UID]*task
	wake  chan struct{}

	// lease is the Lease as the last renewal wrote it, nil after a failure; only the heartbeat
	// goroutine uses it.
	lease *coordinationv1.Lease
}

// Name is the instance's ContainerInstance name.
func (in *Instance) Name() string { return in.id.Name }

// Identity is the instance's registration.
func (in *Instance) Identity() *Identity { return in.id }

// Dead reports whether the instance was killed.
func (in *Instance) Dead() bool { return in.dead.Load() }

func (in *Instance) markStarted(bit uint32) {
	want := startedRenewal
	if !in.fleet.cfg.HeartbeatOnly {
		want |= startedStatus | startedWatch
	}
	if old := in.started.Or(bit); old&want != want && (old|bit)&want == want {
		in.fleet.startedCount.Add(1)
	}
}

// run starts the instance's goroutines after offset; they end with ctx.
func (in *Instance) run(ctx context.Context, offset time.Duration, spawn func(func())) {
	spawn(func() {
		if !backoff.Sleep(ctx, offset) {
			return
		}
		if !in.fleet.cfg.HeartbeatOnly {
			spawn(func() { in.runTasks(ctx, spawn) })
		}
		in.heartbeat(ctx)
	})
}

// leaseDuration is how long a renewal keeps the Lease: two intervals, in whole seconds, as
// drover-agent's.
func (in *Instance) leaseDuration() time.Duration {
	return (2*in.fleet.cfg.HeartbeatInterval + time.Second - 1).Truncate(time.Second)
}

// heartbeat renews the Lease every interval, retrying failures sooner with backoff, as
// drover-agent's heartbeat does. It also reports the instance's status, as drover-agent's status
// reporter does: at start, after renewals resume following a gap longer than the Lease lasts, and
// every StatusInterval.
func (in *Instance) heartbeat(ctx context.Context) {
	cfg := &in.fleet.cfg
	st := &in.fleet.stats
	b := backoff.Backoff{Min: time.Second, Max: cfg.HeartbeatInterval}
	statusBackoff := backoff.Backoff{Min: time.Second, Max: cfg.HeartbeatInterval}
	var lastRenewed, nextStatus time.Time
	needStatus, reported := !cfg.HeartbeatOnly, false
	for {
		start := time.Now()
		err := in.renew(ctx)
		if ctx.Err() != nil {
			return
		}
		took := time.Since(start)
		if cfg.OnRenew != nil {
			cfg.OnRenew(in.index, start, took, err)
		}
		wait := cfg.HeartbeatInterval - took
		if err != nil {
			st.fail(&st.renewalErrors, fmt.Errorf("renewing the Lease of %s: %w", in.id.Name, err))
			wait = b.Next()
		} else {
			st.renewals.Add(1)
			now := time.Now()
			if !lastRenewed.IsZero() && now.Sub(lastRenewed) > in.leaseDuration() && !cfg.HeartbeatOnly {
				needStatus = true
			}
			lastRenewed = now
			b.Reset()
			in.markStarted(startedRenewal)
		}
		if needStatus || (cfg.StatusInterval > 0 && !cfg.HeartbeatOnly && !time.Now().Before(nextStatus)) {
			if err := in.reportStatus(ctx, !reported); err != nil {
				if ctx.Err() != nil {
					return
				}
				st.fail(&st.statusErrors, fmt.Errorf("reporting the status of %s: %w", in.id.Name, err))
				needStatus = true
				wait = min(wait, statusBackoff.Next())
			} else {
				st.statusReports.Add(1)
				needStatus, reported = false, true
				nextStatus = time.Now().Add(cfg.StatusInterval)
				statusBackoff.Reset()
				in.markStarted(startedStatus)
			}
		}
		if !backoff.Sleep(ctx, max(wait, 0)) {
			return
		}
	}
}

// renew sets the Lease's holder, duration and renew time and updates it with the resourceVersion
// it last wrote, reading the Lease first only after a failure or a conflict, as drover-agent does.
func (in *Instance) renew(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, in.fleet.cfg.RequestTimeout)
	defer cancel()
	holder := in.id.Name
	seconds := int32(in.leaseDuration() / time.Second)
	attempt := 0
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		attempt++
		lease := in.lease
		in.lease = nil
		if lease == nil {
			lease = &coordinationv1.Lease{}
			if err := readForWrite(ctx, in.conn.leases, in.id.Namespace, "leases", in.id.Name, lease, attempt); err != nil {
				return err
			}
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
		written := &coordinationv1.Lease{}
		if err := in.conn.leases.Put().Namespace(in.id.Namespace).Resource("leases").Name(in.id.Name).Body(lease).Do(ctx).Into(written); err != nil {
			return err
		}
		in.lease = written
		return nil
	})
}

// reportStatus reads the ContainerInstance and writes what the agent owns of its status with a
// merge patch that fails if the instance changed since it was read, so that it never undoes what
// the controller wrote in between. The first report of a run also resets remainingResources.
func (in *Instance) reportStatus(ctx context.Context, first bool) error {
	ctx, cancel := context.WithTimeout(ctx, in.fleet.cfg.RequestTimeout)
	defer cancel()
	attempt := 0
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		attempt++
		var ci ecsv1alpha1.ContainerInstance
		if err := readForWrite(ctx, in.conn.ecs, in.id.Namespace, "containerinstances", in.id.Name, &ci, attempt); err != nil {
			return err
		}
		orig := ci.DeepCopy()
		in.applyStatus(&ci, first, time.Now())
		patch, err := client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}).Data(&ci)
		if err != nil {
			return err
		}
		return in.conn.ecs.Patch(types.MergePatchType).Namespace(in.id.Namespace).Resource("containerinstances").Name(in.id.Name).
			SubResource("status").Body(patch).Do(ctx).Error()
	})
}

// applyStatus sets what drover-agent owns in the status, for a linux/amd64 host without Docker.
func (in *Instance) applyStatus(ci *ecsv1alpha1.ContainerInstance, first bool, now time.Time) {
	cfg := &in.fleet.cfg
	st := &ci.Status
	st.AgentConnected = true
	st.AgentVersion = AgentVersion
	st.OSType, st.CPUArchitecture, st.Hostname = "linux", "x86_64", in.id.Hostname
	if st.RegisteredAt == nil {
		created := ci.CreationTimestamp
		st.RegisteredAt = &created
	}
	heartbeat := metav1.NewTime(now)
	st.LastHeartbeatTime = &heartbeat
	st.RegisteredResources = &ecsv1alpha1.InstanceResources{CPU: cfg.CPU, Memory: cfg.Memory}
	if first || st.RemainingResources == nil {
		st.RemainingResources = &ecsv1alpha1.InstanceResources{CPU: cfg.CPU, Memory: cfg.Memory}
	}
	st.Attributes = append([]ecsv1alpha1.Attribute(nil), builtinAttributes...)
}

// readForWrite reads an object before a write that carries its resourceVersion, as drover-agent
// does: the first attempt from droverd's watch cache (resourceVersion 0), a retry after a conflict,
// or after the cache answered NotFound, from etcd.
func readForWrite(ctx context.Context, rc *rest.RESTClient, namespace, resource, name string, into runtime.Object, attempt int) error {
	if attempt == 1 {
		err := rc.Get().Namespace(namespace).Resource(resource).Name(name).Param("resourceVersion", "0").Do(ctx).Into(into)
		if !apierrors.IsNotFound(err) {
			return err
		}
	}
	return rc.Get().Namespace(namespace).Resource(resource).Name(name).Do(ctx).Into(into)
}
