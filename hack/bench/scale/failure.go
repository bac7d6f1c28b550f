package main

import (
	"context"
	"time"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/test/scale/hollow"
)

// steady is the services that the failure and restart scenarios run on the fleet.
type steady struct {
	set *serviceSet
	// ready is how long they took from the first create until every task ran.
	ready time.Duration
	// flapped counts the instances a watch saw disconnected while the services started.
	flapped int
	tk      *tasks
	ci      *instances
}

// startSteady creates f.serviceTasks tasks per instance (f.serviceTaskCount in all) in services
// of f.serviceSize, whose disconnect policy replaces tasks f.replaceAfter after their instance's
// last heartbeat, and waits until they all run.
func startSteady(ctx context.Context, f flags, c client.WithWatch) (*steady, error) {
	s := &steady{tk: watchTasks(ctx, c), ci: watchInstances(ctx, c)}
	policy := &ecsv1alpha1.DisconnectPolicy{Action: ecsv1alpha1.DisconnectActionReplace,
		GracePeriodSeconds: ptr.To(int32(f.replaceAfter / time.Second))}
	counts := splitCounts(f.serviceTaskCount(), f.serviceSize)
	logf("services: creating %d services with %d tasks in all (disconnectPolicy Replace after %s)", len(counts), f.serviceTaskCount(), f.replaceAfter)
	t0 := time.Now()
	var err error
	if s.set, err = createServices(ctx, c, "steady", counts, policy); err != nil {
		return nil, err
	}
	at, err := waitServices(ctx, s.tk, s.set, nil, f.timeout, "services")
	if err != nil {
		return nil, err
	}
	s.ready = at.Sub(t0)
	flapped := map[string]bool{}
	for _, e := range s.ci.since(t0) {
		if !e.connected {
			flapped[e.name] = true
		}
	}
	s.flapped = len(flapped)
	logf("services: all %d tasks RUNNING %s after the first create", s.set.total, ms(s.ready))
	return s, nil
}

type failureResult struct {
	killed, tasksOnKilled int
	// disconnected are the times from the kill until a watch saw each killed instance disconnected;
	// missed counts those never seen so.
	disconnected []time.Duration
	missed       int
	// replaced is from the kill until every service ran its desired count on live instances again.
	replaced time.Duration
	// liveStopped counts the Tasks RUNNING on live instances at the kill that were later stopped,
	// told to stop or gone; liveFlaps the times a live instance was seen disconnected.
	liveRunning, liveStopped, liveFlaps int
	// orphansToldToStop counts the Tasks on the killed instances told to stop by the end.
	orphansToldToStop int
	extra             int
}

// failure kills 1% of the instances (at least one), each running some of the services' tasks,
// and times how long droverd takes to mark them disconnected and to run their tasks elsewhere.
func failure(ctx context.Context, f flags, s *steady, fleet *hollow.Fleet) (*failureResult, error) {
	res := &failureResult{}
	before := s.tk.snapshot()
	on := map[string]int{}
	for _, t := range before {
		if t.running() && t.service != "" {
			on[t.instance]++
		}
	}
	// Evenly spread over the fleet, and only instances that run tasks.
	k := max(1, f.instances/100)
	var victims []string
	all := fleet.Instances()
	dead := map[string]bool{}
	for i := 0; i < len(all) && len(victims) < k; i += max(1, len(all)/k) {
		for j := i; j < len(all); j++ {
			if name := all[j].Name(); on[name] > 0 && !all[j].Dead() && !dead[name] {
				victims, dead[name] = append(victims, name), true
				res.tasksOnKilled += on[name]
				break
			}
		}
	}
	res.killed = len(victims)
	live := map[string]taskInfo{}
	for name, t := range before {
		if t.running() && !dead[t.instance] {
			live[name] = t
		}
	}
	res.liveRunning = len(live)
	logf("failure: killing %d instances running %d tasks", len(victims), res.tasksOnKilled)
	t0 := time.Now()
	if err := fleet.Kill(victims...); err != nil {
		return nil, err
	}
	at, err := waitServices(ctx, s.tk, s.set, dead, f.timeout, "failure")
	if err != nil {
		return nil, err
	}
	res.replaced = at.Sub(t0)
	// Tasks on the dead instances are told to stop once their replacements run; give the service
	// controller a moment to have done so.
	time.Sleep(2 * time.Second)
	after := s.tk.snapshot()
	seen := map[string]bool{}
	for _, e := range s.ci.since(t0) {
		switch {
		case dead[e.name] && !e.connected && !seen[e.name]:
			seen[e.name] = true
			res.disconnected = append(res.disconnected, e.at.Sub(t0))
		case !dead[e.name] && !e.connected:
			res.liveFlaps++
		}
	}
	res.missed = len(victims) - len(res.disconnected)
	for name, t := range live {
		if a, ok := after[name]; !ok || a.uid != t.uid || !a.running() {
			res.liveStopped++
		}
	}
	for _, t := range after {
		if dead[t.instance] && t.service != "" && t.desiredStopped {
			res.orphansToldToStop++
		}
	}
	res.extra = s.set.health(after, dead).active - s.set.total
	logf("failure: marked disconnected p50 %s, max %s after the kill; services whole again %s after the kill; %d live tasks stopped",
		ms(pct(res.disconnected, 0.5)), ms(maxDur(res.disconnected)), ms(res.replaced), res.liveStopped)
	return res, nil
}

func maxDur(ds []time.Duration) time.Duration {
	m := time.Duration(0)
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func (r *failureResult) rows(f flags, w func(string, ...any)) {
	w("| failure: instances killed (stop renewing, watching, reporting) | %d of %d, running %d service tasks |", r.killed, f.instances, r.tasksOnKilled)
	w("| failure: **kill to marked disconnected** (agentConnected false or Connected False, as a watch sees it) p50 / max | **%s / %s** (grace period 10 s, renewals every %s; %d never seen) |",
		ms(pct(r.disconnected, 0.5)), ms(maxDur(r.disconnected)), f.heartbeat, r.missed)
	w("| failure: **kill to every service back at desiredCount RUNNING, none on a killed instance** | **%s** (disconnectPolicy Replace, gracePeriodSeconds %d) |",
		ms(r.replaced), int(f.replaceAfter/time.Second))
	w("| failure: tasks on the killed instances told to stop | %d of %d |", r.orphansToldToStop, r.tasksOnKilled)
	w("| failure: tasks RUNNING on live instances at the kill that were stopped | %d of %d |", r.liveStopped, r.liveRunning)
	w("| failure: live instances seen disconnected meanwhile; active tasks beyond desiredCount at the end | %d; %d |", r.liveFlaps, r.extra)
}
