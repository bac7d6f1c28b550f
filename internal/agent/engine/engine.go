// Package engine is the agent's task engine: it runs the Tasks bound to its container instance as
// containers, restarts them under their restartPolicy, stops them when asked, and reports their
// status. It keeps its state on the host (a bbolt file), so that it works on without the control
// plane: running tasks keep running, crashed containers are restarted, status changes wait on disk
// until the control plane can be told, and after a restart of the agent or a reboot of the host
// the engine re-adopts or restarts its containers instead of starting duplicates.
//
// The engine is level-triggered: each pass over a task compares what should run (the task's
// spec, as last read from the control plane) with what runs (the runtime's containers) and takes
// the next steps. Passes are triggered by changes of the Task, by container events, and by a
// periodic resync that covers any missed event.
package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/agent/backoff"
	rt "github.com/drover-dev/drover/internal/agent/runtime"
)

// Labels the engine puts on every container it creates.
const (
	// LabelManagedBy marks the engine's containers; its value is ManagedBy.
	LabelManagedBy = "ecs.drover.dev/managed-by"
	// ManagedBy is the value of LabelManagedBy.
	ManagedBy = "drover-agent"
	// LabelTaskUID is the uid of the container's Task.
	LabelTaskUID = "ecs.drover.dev/task-uid"
	// LabelTask is the container's Task, <namespace>/<name>.
	LabelTask = "ecs.drover.dev/task"
	// LabelContainerName is the container's name in the task definition.
	LabelContainerName = "ecs.drover.dev/container"
	// LabelContainerInstance is the ContainerInstance the container runs on.
	LabelContainerInstance = "ecs.drover.dev/container-instance"
)

// PullBehavior is when the engine pulls an image, as ECS's ECS_IMAGE_PULL_BEHAVIOR.
type PullBehavior string

// Pull behaviours.
const (
	// PullDefault pulls, and falls back to the cached image when the pull fails.
	PullDefault PullBehavior = "default"
	// PullAlways pulls, and fails the task when the pull fails.
	PullAlways PullBehavior = "always"
	// PullOnce pulls an image only if this agent has not pulled it before or it was removed.
	PullOnce PullBehavior = "once"
	// PullPreferCached uses a cached image when there is one, and pulls only when there is not.
	PullPreferCached PullBehavior = "prefer-cached"
)

// PullBehaviors are the valid pull behaviours.
var PullBehaviors = []PullBehavior{PullDefault, PullAlways, PullOnce, PullPreferCached}

// Config is what the engine needs.
type Config struct {
	// Client reads the instance's Tasks and writes their status.
	Client client.WithWatch
	// Namespace and ContainerInstance name the instance whose Tasks the engine runs.
	Namespace, ContainerInstance, Cluster string
	// Runtime runs the containers.
	Runtime rt.Runtime
	// StateDir holds the engine's state file, tasks.db.
	StateDir string

	// PullBehavior is when images are pulled.
	PullBehavior PullBehavior
	// DockerConfig is a Docker config.json whose "auths" give registry credentials.
	DockerConfig string
	// PullTimeout bounds one image pull.
	PullTimeout time.Duration
	// DefaultStopTimeout is the time between SIGTERM and SIGKILL for containers without stopTimeout.
	DefaultStopTimeout time.Duration
	// CleanupDelay is how long stopped tasks' containers are kept (for their logs) before removal.
	CleanupDelay time.Duration
	// ImageGCInterval is how often unused images the agent pulled are removed; 0 disables.
	ImageGCInterval time.Duration
	// ImageMinAge is how long an image the agent pulled stays unused before it is removed.
	ImageMinAge time.Duration
	// ResyncInterval is how often every task is looked at, events or not.
	ResyncInterval time.Duration
	// RequestTimeout bounds each request to the control plane and each runtime call other than
	// pulls and stops.
	RequestTimeout time.Duration
	// Workers is how many tasks are worked on at once.
	Workers int
	// BootTime is when the host booted; containers that stopped before it were stopped by the
	// host going down, and are started again. Zero reads it from /proc/uptime.
	BootTime time.Time
	// Reconnected receives a value when the control plane is reachable again after an outage;
	// pending reports are then sent at once. May be nil.
	Reconnected <-chan struct{}
}

func (c *Config) complete() {
	if c.PullBehavior == "" {
		c.PullBehavior = PullDefault
	}
	if c.PullTimeout <= 0 {
		c.PullTimeout = 10 * time.Minute
	}
	if c.DefaultStopTimeout <= 0 {
		c.DefaultStopTimeout = 30 * time.Second
	}
	if c.CleanupDelay <= 0 {
		c.CleanupDelay = time.Hour
	}
	if c.ImageMinAge <= 0 {
		c.ImageMinAge = time.Hour
	}
	if c.ResyncInterval <= 0 {
		c.ResyncInterval = 10 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.BootTime.IsZero() {
		c.BootTime = hostBootTime()
	}
}

// hostBootTime is now minus the host's uptime, or the zero time when /proc/uptime cannot be read.
func hostBootTime() time.Time {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return time.Time{}
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return time.Time{}
	}
	up, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return time.Time{}
	}
	return time.Now().Add(-time.Duration(up * float64(time.Second)))
}

// Engine runs the tasks of one container instance.
type Engine struct {
	cfg   Config
	store *store
	auths *registryAuths

	queue   workqueue.TypedRateLimitingInterface[string]
	reports workqueue.TypedRateLimitingInterface[string]

	// mu guards the store's read-modify-write cycles and api.
	mu sync.Mutex
	// api holds the Tasks as last read from the control plane, by uid.
	api map[string]*ecsv1alpha1.Task
	// synced is closed after the first complete list of the instance's Tasks.
	synced     chan struct{}
	syncedOnce sync.Once
	// pullMu serialises pulls of the same image.
	pullMu sync.Map
}

// New opens the engine's state. It does not contact the control plane or the runtime.
func New(cfg Config) (*Engine, error) {
	cfg.complete()
	if cfg.Runtime == nil {
		return nil, errors.New("the task engine needs a container runtime")
	}
	s, err := openStore(filepath.Join(cfg.StateDir, "tasks.db"))
	if err != nil {
		return nil, err
	}
	auths, err := loadRegistryAuths(cfg.DockerConfig)
	if err != nil {
		_ = s.close()
		return nil, err
	}
	return &Engine{
		cfg:   cfg,
		store: s,
		auths: auths,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "tasks"}),
		reports: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, 10*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "reports"}),
		api:    map[string]*ecsv1alpha1.Task{},
		synced: make(chan struct{}),
	}, nil
}

// Run works until ctx ends, then closes the state. Containers keep running when the engine stops:
// the next engine on this host adopts them.
func (e *Engine) Run(ctx context.Context) {
	log := klog.FromContext(ctx)
	defer func() {
		if err := e.store.close(); err != nil {
			log.Error(err, "Closing the task state")
		}
	}()
	// Start from the state on disk: tasks run even when the control plane cannot be reached.
	recs, err := e.store.tasks()
	if err != nil {
		log.Error(err, "Reading the task state; unreadable records are skipped")
	}
	for _, r := range recs {
		e.queue.Add(string(r.Task.UID))
		if !r.Reported && !r.Gone {
			e.reports.Add(string(r.Task.UID))
		}
	}
	log.Info("Task engine is starting", "tasks", len(recs), "pullBehavior", e.cfg.PullBehavior)

	var wg sync.WaitGroup
	wg.Go(func() { e.watchTasks(klog.NewContext(ctx, log.WithName("tasks"))) })
	wg.Go(func() { e.watchRuntime(klog.NewContext(ctx, log.WithName("runtime-events"))) })
	wg.Go(func() { e.resync(klog.NewContext(ctx, log.WithName("resync"))) })
	for range e.cfg.Workers {
		wg.Go(func() {
			for e.processNext(klog.NewContext(ctx, log.WithName("worker"))) {
			}
		})
	}
	wg.Go(func() {
		for e.reportNext(klog.NewContext(ctx, log.WithName("report"))) {
		}
	})
	if e.cfg.Reconnected != nil {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-e.cfg.Reconnected:
					e.reportPending()
				}
			}
		})
	}
	<-ctx.Done()
	e.queue.ShutDown()
	e.reports.ShutDown()
	wg.Wait()
	log.Info("Task engine stopped")
}

func (e *Engine) processNext(ctx context.Context) bool {
	uid, quit := e.queue.Get()
	if quit {
		return false
	}
	defer e.queue.Done(uid)
	after, err := e.syncTask(ctx, uid)
	if err != nil {
		if ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Working on task; will retry", "taskUID", uid)
		}
		e.queue.AddRateLimited(uid)
		return true
	}
	e.queue.Forget(uid)
	if after > 0 {
		e.queue.AddAfter(uid, after)
	}
	return true
}

// resync looks at every task on a schedule, removes what has been stopped long enough, and
// collects unused images.
func (e *Engine) resync(ctx context.Context) {
	t := time.NewTicker(e.cfg.ResyncInterval)
	defer t.Stop()
	lastGC := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		recs, err := e.store.tasks()
		if err != nil {
			klog.FromContext(ctx).Error(err, "Reading the task state")
		}
		for _, r := range recs {
			e.queue.Add(string(r.Task.UID))
		}
		e.adoptStrays(ctx, recs)
		if e.cfg.ImageGCInterval > 0 && time.Since(lastGC) >= e.cfg.ImageGCInterval {
			lastGC = time.Now()
			e.collectImages(ctx)
		}
	}
}

// adoptStrays removes containers of this instance whose task the engine has no record of: they
// belong to tasks whose record was removed after cleanup, or to a state file that was lost.
// Containers of a record-less task are left alone while the control plane has not been listed
// since start, as such a task may still be wanted.
func (e *Engine) adoptStrays(ctx context.Context, recs []*taskRecord) {
	select {
	case <-e.synced:
	default:
		return
	}
	known := map[string]bool{}
	for _, r := range recs {
		known[string(r.Task.UID)] = true
	}
	e.mu.Lock()
	for uid := range e.api {
		known[uid] = true
	}
	e.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer cancel()
	cs, err := e.cfg.Runtime.ListContainers(cctx, e.ownLabels())
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Listing containers failed", "err", err)
		return
	}
	for _, c := range cs {
		if uid := c.Labels[LabelTaskUID]; uid != "" && !known[uid] {
			klog.FromContext(ctx).Info("Removing a container of a task this host no longer runs", "container", c.Name, "taskUID", uid)
			if err := e.cfg.Runtime.RemoveContainer(cctx, c.ID); err != nil {
				klog.FromContext(ctx).Error(err, "Removing container", "container", c.Name)
			}
		}
	}
}

// ownLabels select the containers of this instance.
func (e *Engine) ownLabels() map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, LabelContainerInstance: e.cfg.Namespace + "/" + e.cfg.ContainerInstance}
}

// watchRuntime turns container events into passes over their tasks.
func (e *Engine) watchRuntime(ctx context.Context) {
	b := backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
	for ctx.Err() == nil {
		events, errs := e.cfg.Runtime.Events(ctx, e.ownLabels())
		for ev := range events {
			b.Reset()
			if uid := ev.Labels[LabelTaskUID]; uid != "" {
				switch ev.Action {
				case "die", "start", "oom", "health_status", "destroy", "kill":
					e.queue.Add(uid)
				}
			}
		}
		err := <-errs
		if ctx.Err() != nil {
			return
		}
		klog.FromContext(ctx).V(1).Info("Container event stream ended; resubscribing", "err", err)
		if !backoff.Sleep(ctx, b.Next()) {
			return
		}
	}
}

// taskKey names a task for logs.
func taskKey(t *ecsv1alpha1.Task) types.NamespacedName {
	return types.NamespacedName{Namespace: t.Namespace, Name: t.Name}
}
