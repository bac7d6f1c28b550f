package agent

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/drover-dev/drover/internal/agent/backoff"
)

// heartbeat renews the instance's Lease (same name and namespace as its ContainerInstance; the
// registration creates it) every interval. The Lease is the heartbeat: the containerinstance
// controller marks the instance disconnected when it expires. Failed renewals are retried sooner
// than the interval, with backoff.
type heartbeat struct {
	conn     *conn
	interval time.Duration
	timeout  time.Duration
	// reconnected is signalled when a renewal succeeds after the Lease may have expired, so the
	// instance's status is reported again at once.
	reconnected []chan<- struct{}
	// last is the Lease as the last renewal wrote it; the next renewal updates it without reading
	// it again, as the kubelet renews its node Lease. Nil after a failure, when the next renewal
	// reads the Lease first.
	last *coordinationv1.Lease
}

func (h *heartbeat) name() string { return "heartbeat" }

// leaseDuration is how long a renewal keeps the Lease: two intervals, in whole seconds.
func (h *heartbeat) leaseDuration() time.Duration {
	return (2*h.interval + time.Second - 1).Truncate(time.Second)
}

func (h *heartbeat) run(ctx context.Context) {
	log := klog.FromContext(ctx)
	b := backoff.Backoff{Min: time.Second, Max: h.interval}
	var lastRenewed time.Time
	failures := 0
	for {
		start := time.Now()
		err := h.renew(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := h.interval - time.Since(start)
		if err != nil {
			failures++
			log.Error(err, "Cannot renew the heartbeat Lease; trying again", "failures", failures)
			wait = b.Next()
		} else {
			now := time.Now()
			if failures > 0 {
				log.Info("Heartbeat Lease renewed again", "failures", failures)
			}
			if !lastRenewed.IsZero() && now.Sub(lastRenewed) > h.leaseDuration() {
				for _, c := range h.reconnected {
					select {
					case c <- struct{}{}:
					default:
					}
				}
			}
			lastRenewed, failures = now, 0
			b.Reset()
		}
		if !backoff.Sleep(ctx, max(wait, 0)) {
			return
		}
	}
}

// renew sets the Lease's holder, duration and renew time, with the resourceVersion it last wrote
// or, after a failure or a conflict, read (see readForWrite).
func (h *heartbeat) renew(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	key := client.ObjectKey{Namespace: h.conn.cfg.Namespace, Name: h.conn.cfg.ContainerInstance}
	holder := h.conn.cfg.ContainerInstance
	seconds := int32(h.leaseDuration() / time.Second)
	attempt := 0
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		attempt++
		lease := h.last
		h.last = nil
		if lease == nil {
			lease = &coordinationv1.Lease{}
			if err := readForWrite(ctx, h.conn.client, key, lease, attempt); err != nil {
				if apierrors.IsNotFound(err) {
					return fmt.Errorf("the Lease %s does not exist; registration creates it, so the instance may have been deregistered: %w", key, err)
				}
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
		if err := h.conn.client.Update(ctx, lease); err != nil {
			return err
		}
		h.last = lease
		return nil
	})
}

// readForWrite reads obj before a write that carries its resourceVersion. The first attempt reads
// droverd's watch cache (resourceVersion 0), which costs droverd no etcd read; a retry after a
// conflict, when the cache was behind, and a read that the cache answers NotFound (an object
// created a moment ago) read etcd. Thousands of hosts reconnecting at once after an outage make
// these reads, so where they are served matters.
func readForWrite(ctx context.Context, c client.Client, key client.ObjectKey, obj client.Object, attempt int) error {
	if attempt == 1 {
		err := c.Get(ctx, key, obj, &client.GetOptions{Raw: &metav1.GetOptions{ResourceVersion: "0"}})
		if !apierrors.IsNotFound(err) {
			return err
		}
	}
	return c.Get(ctx, key, obj)
}
