package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/hack/bench/internal/harness"
	"github.com/drover-dev/drover/hack/bench/internal/procinfo"
)

// labelRole tells the timed Tasks (startup) from the background ones (churn).
const labelRole = "bench.drover.dev/role"

type startupResult struct {
	// total is from the first create to the last Task seen RUNNING.
	total                                     time.Duration
	running, bound, boundToRunning, createLat []time.Duration
	// createRetries counts the creates droverd turned away (429, timeouts) and that were sent again.
	createRetries int
	churn         churnResult
	cpu           [2]float64
	rss           procinfo.RSS
	profile       string
}

// startup creates f.tasks standalone Tasks at f.rate per second while the churn runs, and times
// each from its create to RUNNING as a watch sees it.
func startup(ctx context.Context, f flags, d *harness.Droverd, raw rest.Interface, c client.WithWatch) (*startupResult, error) {
	w, err := startWatch(ctx, c, f.tasks)
	if err != nil {
		return nil, err
	}
	defer w.stop()
	res := &startupResult{}

	cctx, stopChurn := context.WithCancel(ctx)
	ch := &churner{c: c}
	var churnDone sync.WaitGroup
	if f.churn > 0 {
		churnDone.Go(func() { ch.run(cctx, f.churn) })
		logf("startup: churning %.1f operations/s for %s before the timed creates", f.churn, ms(f.churnWarmup))
		time.Sleep(f.churnWarmup)
	}
	defer func() { stopChurn(); churnDone.Wait() }()

	var prof harness.Profile
	if f.profileDir != "" {
		secs := min(int(float64(f.tasks)/f.rate)+5, 60)
		prof.Start(ctx, raw, filepath.Join(f.profileDir, "startup.cpu.pprof"), secs, logf)
	}
	logf("startup: creating %d Tasks at %.1f/s", f.tasks, f.rate)
	cpu := harness.StartCPU(d.PID())
	start := time.Now()
	w.setStart(start)
	tick := time.NewTicker(time.Duration(float64(time.Second) / f.rate))
	var creates sync.WaitGroup
	var mu sync.Mutex
	var createErr error
	for i := range f.tasks {
		if i > 0 {
			<-tick.C
		}
		creates.Go(func() {
			task := &ecsv1alpha1.Task{
				ObjectMeta: metav1.ObjectMeta{Name: startupName(i), Namespace: namespace, Labels: map[string]string{labelRole: "startup"}},
				Spec:       ecsv1alpha1.TaskSpec{Cluster: cluster, TaskDefinition: family, StartedBy: "bench"},
			}
			t0 := time.Now()
			w.created(i, t0)
			retries, err := create(ctx, c, task)
			mu.Lock()
			defer mu.Unlock()
			res.createRetries += retries
			if err != nil && createErr == nil {
				createErr = fmt.Errorf("creating Task %s: %w", task.Name, err)
			}
			res.createLat = append(res.createLat, time.Since(t0))
		})
	}
	tick.Stop()
	creates.Wait()
	if createErr != nil {
		return nil, createErr
	}
	if err := w.wait(start.Add(f.timeout)); err != nil {
		return nil, err
	}
	res.cpu = cpu.Cores()
	stopChurn()
	churnDone.Wait()
	res.churn = ch.result()
	if res.rss, err = procinfo.ReadRSS(d.PID()); err != nil {
		return nil, err
	}
	res.profile = prof.Wait()
	res.total, res.running, res.bound, res.boundToRunning = w.summary()
	logf("startup: all %d RUNNING %s after the first create; create to RUNNING p50 %s, p99 %s", f.tasks, ms(res.total),
		ms(pct(res.running, 0.5)), ms(pct(res.running, 0.99)))
	return res, nil
}

// create creates task, and sends it again, as a user's tool would, while droverd answers that it
// is too busy (429) or timed out; it returns how many times it sent it again.
func create(ctx context.Context, c client.Client, task *ecsv1alpha1.Task) (int, error) {
	for retries := 0; ; retries++ {
		err := c.Create(ctx, task)
		if retries > 0 && apierrors.IsAlreadyExists(err) {
			err = nil // a create that timed out on the way back
		}
		if err == nil || retries == 10 || !(apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err)) {
			return retries, err
		}
		time.Sleep(time.Second)
	}
}

func startupName(i int) string { return fmt.Sprintf("startup-%05d", i) }

func startupIndex(name string) int {
	rest, ok := strings.CutPrefix(name, "startup-")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(rest)
	if err != nil {
		return -1
	}
	return i
}

// watcher follows the timed Tasks and records when each was created, bound and RUNNING.
type watcher struct {
	n      int
	cancel context.CancelFunc
	done   chan error

	mu                        sync.Mutex
	start                     time.Time
	createdAt, boundAt, runAt []time.Time
	running                   int
	allRunning                chan struct{}
}

func startWatch(ctx context.Context, c client.WithWatch, n int) (*watcher, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{n: n, cancel: cancel, done: make(chan error, 1), allRunning: make(chan struct{}),
		createdAt: make([]time.Time, n), boundAt: make([]time.Time, n), runAt: make([]time.Time, n)}
	list := &ecsv1alpha1.TaskList{}
	if err := c.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{labelRole: "startup"}); err != nil {
		cancel()
		return nil, err
	}
	go func() {
		w.done <- harness.FollowTasks(ctx, c, list.ResourceVersion, w.observe, client.InNamespace(namespace), client.MatchingLabels{labelRole: "startup"})
	}()
	return w, nil
}

func (w *watcher) setStart(t time.Time) {
	w.mu.Lock()
	w.start = t
	w.mu.Unlock()
}

func (w *watcher) created(i int, at time.Time) {
	w.mu.Lock()
	w.createdAt[i] = at
	w.mu.Unlock()
}

func (w *watcher) observe(task *ecsv1alpha1.Task, at time.Time) {
	i := startupIndex(task.Name)
	if i < 0 || i >= w.n {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if task.Spec.ContainerInstance != "" && w.boundAt[i].IsZero() {
		w.boundAt[i] = at
	}
	if task.Status.LastStatus == ecsv1alpha1.TaskStateRunning && w.runAt[i].IsZero() {
		w.runAt[i] = at
		if w.running++; w.running == w.n {
			close(w.allRunning)
		}
	}
}

// wait returns when every Task is RUNNING, logging progress every 5 seconds, or fails at deadline.
func (w *watcher) wait(deadline time.Time) error {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-w.allRunning:
			return nil
		case err := <-w.done:
			if err == nil {
				err = errors.New("the watch ended")
			}
			return err
		case now := <-tick.C:
			w.mu.Lock()
			running := w.running
			w.mu.Unlock()
			logf("startup: %d of %d RUNNING", running, w.n)
			if now.After(deadline) {
				return fmt.Errorf("only %d of %d Tasks RUNNING after %s", running, w.n, now.Sub(w.start).Round(time.Second))
			}
		}
	}
}

func (w *watcher) stop() { w.cancel() }

// summary returns the time from the first create to the last RUNNING, and each Task's times from
// create to RUNNING, create to bound, and bound to RUNNING.
func (w *watcher) summary() (total time.Duration, running, bound, boundToRunning []time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.n {
		total = max(total, w.runAt[i].Sub(w.start))
		running = append(running, w.runAt[i].Sub(w.createdAt[i]))
		if !w.boundAt[i].IsZero() {
			bound = append(bound, w.boundAt[i].Sub(w.createdAt[i]))
			boundToRunning = append(boundToRunning, w.runAt[i].Sub(w.boundAt[i]))
		}
	}
	return total, running, bound, boundToRunning
}

// churner is background work on standalone Tasks: it creates one, tells the oldest running one
// to stop, and deletes the oldest stopped one, in turn, at a steady rate. Each operation runs on
// its own, so that a slow answer does not slow the rate.
type churner struct {
	c client.Client

	mu                                              sync.Mutex
	next                                            int
	live, stopped                                   []string
	creates, stops, deletes, errs, skipped, retries int
	latencies                                       []time.Duration
	window                                          time.Duration
}

type churnResult struct {
	creates, stops, deletes, errs, skipped, retries int
	latencies                                       []time.Duration
	window                                          time.Duration
}

func (r churnResult) rate(n int) float64 {
	if r.window <= 0 {
		return 0
	}
	return float64(n) / r.window.Seconds()
}

func (ch *churner) run(ctx context.Context, perSecond float64) {
	t0 := time.Now()
	tick := time.NewTicker(time.Duration(float64(time.Second) / perSecond))
	defer tick.Stop()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		ch.mu.Lock()
		ch.window = time.Since(t0)
		ch.mu.Unlock()
	}()
	for op := 0; ; op++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			ch.mu.Lock()
			ch.skipped++
			ch.mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			ch.do(ctx, op%3)
		})
	}
}

// do runs one operation: 0 creates, 1 stops, 2 deletes.
func (ch *churner) do(ctx context.Context, kind int) {
	ch.mu.Lock()
	var name string
	switch kind {
	case 0:
		name = fmt.Sprintf("churn-%06d", ch.next)
		ch.next++
	case 1:
		if len(ch.live) > 0 {
			name, ch.live = ch.live[0], ch.live[1:]
		}
	case 2:
		if len(ch.stopped) > 0 {
			name, ch.stopped = ch.stopped[0], ch.stopped[1:]
		}
	}
	ch.mu.Unlock()
	if name == "" {
		return
	}
	t0 := time.Now()
	var err error
	task := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	switch kind {
	case 0:
		task.Labels = map[string]string{labelRole: "churn"}
		task.Spec = ecsv1alpha1.TaskSpec{Cluster: cluster, TaskDefinition: family, StartedBy: "churn"}
		var retries int
		retries, err = create(ctx, ch.c, task)
		ch.mu.Lock()
		ch.retries += retries
		ch.mu.Unlock()
	case 1:
		err = ch.c.Patch(ctx, task, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"desiredStatus":"STOPPED"}}`)))
	case 2:
		err = client.IgnoreNotFound(ch.c.Delete(ctx, task))
	}
	lat := time.Since(t0)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			ch.errs++
		}
		return
	}
	ch.latencies = append(ch.latencies, lat)
	switch kind {
	case 0:
		ch.creates++
		ch.live = append(ch.live, name)
	case 1:
		ch.stops++
		ch.stopped = append(ch.stopped, name)
	case 2:
		ch.deletes++
	}
}

func (ch *churner) result() churnResult {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return churnResult{creates: ch.creates, stops: ch.stops, deletes: ch.deletes, errs: ch.errs, skipped: ch.skipped, retries: ch.retries,
		latencies: ch.latencies, window: ch.window}
}
