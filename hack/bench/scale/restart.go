package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/hack/bench/internal/harness"
	"github.com/drover-dev/drover/test/scale/hollow"
)

type restartResult struct {
	stop      time.Duration // SIGTERM to exit
	startup   harness.Startup
	renewed   time.Duration // from ready until every instance had renewed its Lease
	reconnect time.Duration // from ready until every instance was connected again
	// lastReconnect is from ready until the watch saw the last instance marked connected again.
	lastReconnect time.Duration
	down          time.Duration // from SIGTERM until every instance was connected again
	// flapped counts the instances recorded disconnected after the restart began.
	flapped int
	settle  time.Duration
	// Tasks: RUNNING before; of those, RUNNING after with the same uid; stopped, told to stop or
	// gone; and the services' Tasks that are new.
	before, kept, lost, added                  int
	wholeServices, servicesAtDesired, services int
	renewalErrors                              int64
}

// restart stops droverd with everything running and starts it again on the same data dir and
// ports, and checks that the hollow instances reconnect and that no task stopped or was added.
func restart(ctx context.Context, f flags, d *harness.Droverd, c client.WithWatch, s *steady, fleet *hollow.Fleet, rec *renewals, ph *phases) (*restartResult, error) {
	res := &restartResult{}
	// Instances marked disconnected while the services started (see steady.flapped) come back
	// with their next renewal.
	for deadline := time.Now().Add(f.timeout); s.ci.countConnected() != f.instances; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("restart: %d of %d instances connected before the restart", s.ci.countConnected(), f.instances)
		}
	}
	// Heartbeats going, and the services' last writes done.
	time.Sleep(f.heartbeat)
	before := s.tk.snapshot()
	running := map[string]taskInfo{}
	for name, t := range before {
		if t.running() && t.service != "" {
			running[name] = t
		}
	}
	res.before = len(running)
	errs0 := fleet.Stats().RenewalErrors
	logf("restart: stopping droverd with %d service tasks RUNNING", res.before)
	t0 := time.Now()
	d.Stop()
	res.stop = time.Since(t0)
	if err := d.Start(ctx); err != nil {
		return nil, fmt.Errorf("restarting droverd: %w", err)
	}
	ready := time.Now()
	ph.restarted()
	res.startup = d.Startup
	logf("restart: droverd stopped in %s, ready %s after exec (pid %d)", ms(res.stop), ms(res.startup.Ready), d.PID())
	// Connected again is: every instance renewed its Lease after droverd was ready, a list then
	// finds every instance connected (the status may still be as it was before the restart), and
	// the watch saw every instance that was marked disconnected meanwhile marked connected again.
	deadline := time.Now().Add(f.timeout)
	for {
		n, last := rec.renewedSince(ready)
		res.renewed = last.Sub(ready)
		if n == f.instances {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("restart: %d of %d instances renewed their Leases %s after droverd was ready", n, f.instances, f.timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		n, err := countConnected(ctx, c)
		if err == nil && n == f.instances {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("restart: %d of %d instances connected %s after droverd was ready (%v)", n, f.instances, f.timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for s.ci.countConnected() != f.instances {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("restart: the watch sees %d of %d instances connected %s after droverd was ready", s.ci.countConnected(), f.instances, f.timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.reconnect, res.down = time.Since(ready), time.Since(t0)
	for _, e := range s.ci.since(ready) {
		if e.connected {
			res.lastReconnect = max(res.lastReconnect, e.at.Sub(ready))
		}
	}
	logf("restart: every instance connected %s after droverd was ready", ms(res.reconnect))
	// Long enough for the service controller to have replaced tasks, had it judged their
	// instances gone.
	res.settle = f.replaceAfter + 2*f.heartbeat
	time.Sleep(res.settle)
	var err error
	if res.flapped, err = disconnectEvents(ctx, c, t0); err != nil {
		return nil, err
	}
	after := s.tk.snapshot()
	for name, t := range running {
		if a, ok := after[name]; ok && a.uid == t.uid && a.running() {
			res.kept++
		} else {
			res.lost++
		}
	}
	for name, t := range after {
		if _, ours := s.set.desired[t.service]; ours {
			if _, was := before[name]; !was {
				res.added++
			}
		}
	}
	h := s.set.health(after, nil)
	res.services = len(s.set.desired)
	res.wholeServices = res.services - h.short - h.extra
	var svcs ecsv1alpha1.ServiceList
	if err := c.List(ctx, &svcs, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	for _, svc := range svcs.Items {
		if want, ours := s.set.desired[svc.Name]; ours && int(svc.Status.RunningCount) == want && int(svc.Status.DesiredCount) == want {
			res.servicesAtDesired++
		}
	}
	res.renewalErrors = fleet.Stats().RenewalErrors - errs0
	logf("restart: %d of %d tasks kept, %d lost, %d added; %d of %d services report runningCount = desiredCount",
		res.kept, res.before, res.lost, res.added, res.servicesAtDesired, res.services)
	return res, nil
}

// countConnected lists the instances and counts those connected (status.agentConnected and the
// Connected condition True).
func countConnected(ctx context.Context, c client.Client) (int, error) {
	var list ecsv1alpha1.ContainerInstanceList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return 0, err
	}
	n := 0
	for _, ci := range list.Items {
		if ci.Status.AgentConnected && meta.IsStatusConditionTrue(ci.Status.Conditions, ecsv1alpha1.ContainerInstanceConditionConnected) {
			n++
		}
	}
	return n, nil
}

// disconnectEvents counts the instances the containerinstance controller recorded a Disconnected
// Event for since t: a watch resumed after a restart may miss a change and its undoing.
func disconnectEvents(ctx context.Context, c client.Client, t time.Time) (int, error) {
	var list corev1.EventList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return 0, err
	}
	names := map[string]bool{}
	for _, e := range list.Items {
		at := e.LastTimestamp.Time
		if at.IsZero() {
			at = e.EventTime.Time
		}
		if e.Reason == "Disconnected" && e.InvolvedObject.Kind == "ContainerInstance" && !at.Before(t.Truncate(time.Second)) {
			names[e.InvolvedObject.Name] = true
		}
	}
	return len(names), nil
}

func (r *restartResult) rows(f flags, w func(string, ...any)) {
	w("| restart: droverd SIGTERM to exit / **exec to ready** (/readyz) | %s / **%s** (listening after %s; last /readyz checks to pass: %s) |",
		ms(r.stop), ms(r.startup.Ready), ms(r.startup.Listening), slowestChecks(r.startup.Checks, 3))
	w("| restart: ready to every instance's first renewal / **to every instance connected again** (status; list and watch) / from SIGTERM | %s / **%s** / %s (last reconnection the watch saw %s after ready) |",
		ms(r.renewed), ms(r.reconnect), ms(r.down), ms(r.lastReconnect))
	w("| restart: instances recorded Disconnected (Events) after the restart began; failed renewals meanwhile | %d of %d; %d |", r.flapped, f.instances, r.renewalErrors)
	w("| restart: **service tasks RUNNING before / same name and uid RUNNING after / stopped or gone / new** (%s after all reconnected) | **%d / %d / %d / %d** |",
		ms(r.settle), r.before, r.kept, r.lost, r.added)
	w("| restart: services with exactly desiredCount RUNNING (by the Tasks / by status.runningCount) | %d / %d of %d |", r.wholeServices, r.servicesAtDesired, r.services)
}

// slowestChecks names the n /readyz checks that passed last, with when, from exec.
func slowestChecks(checks map[string]time.Duration, n int) string {
	names := make([]string, 0, len(checks))
	for name := range checks {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return checks[names[i]] > checks[names[j]] })
	var parts []string
	for _, name := range names[:min(n, len(names))] {
		parts = append(parts, fmt.Sprintf("%s %s", name, ms(checks[name])))
	}
	return strings.Join(parts, ", ")
}
