package agent

import (
	"context"
	"fmt"
	goruntime "runtime"
	"sync"

	"k8s.io/klog/v2"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/agent/engine"
	rt "github.com/drover-dev/drover/internal/agent/runtime"
)

// Agent is a registered host's agent: the components that keep the control plane informed
// about the host. Each component runs on its own goroutine until the agent stops, and handles
// its own errors - it logs them and tries again - so that one failing does not stop the others.
type Agent struct {
	opts        RunOptions
	conn        *conn
	runtime     rt.Runtime
	ownsRuntime bool
	components  []component
}

// component is a part of the agent that runs until its context ends.
type component interface {
	name() string
	run(ctx context.Context)
}

// host is what the agent reports about the host it runs on.
type host struct {
	hostname, osType, arch string
	resources              ecsv1alpha1.InstanceResources
	attributes             []ecsv1alpha1.Attribute
}

// Run runs the agent registered in o.StateDir until ctx ends.
func Run(ctx context.Context, o RunOptions) error {
	a, err := New(ctx, o)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// New loads the registration from o.StateDir and prepares the agent's components. It does not
// contact the control plane: an unreachable control plane is not an error, Run keeps trying.
func New(ctx context.Context, o RunOptions) (*Agent, error) {
	if err := o.Complete(); err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	dir := stateDirOf(o.StateDir)
	id, err := dir.load()
	if err != nil {
		return nil, err
	}
	mem, err := memTotalMiB(o.MeminfoPath)
	if err != nil {
		return nil, fmt.Errorf("reading the host's memory from %s: %w", o.MeminfoPath, err)
	}
	c, err := newConn(id, o.Version)
	if err != nil {
		return nil, err
	}
	a := &Agent{opts: o, conn: c, runtime: o.Runtime}
	if a.runtime == nil {
		d, err := rt.NewDocker()
		if err != nil {
			return nil, err
		}
		a.runtime, a.ownsRuntime = d, true
	}
	h := host{
		hostname:   o.Hostname,
		osType:     goruntime.GOOS,
		arch:       ecsArchitecture(goruntime.GOARCH),
		resources:  registeredResources(goruntime.NumCPU(), mem, o.ReservedCPU, o.ReservedMemory),
		attributes: builtinAttributes(goruntime.GOOS, goruntime.GOARCH),
	}
	statusTrigger, tasksTrigger := make(chan struct{}, 1), make(chan struct{}, 1)
	eng, err := engine.New(engine.Config{
		Client: c.client, Namespace: id.Namespace, ContainerInstance: id.ContainerInstance, Cluster: id.Cluster,
		Runtime: a.runtime, StateDir: o.StateDir,
		PullBehavior: engine.PullBehavior(o.ImagePullBehavior), DockerConfig: o.DockerConfig, PullTimeout: o.ImagePullTimeout,
		DefaultStopTimeout: o.StopTimeout, CleanupDelay: o.TaskCleanupDelay,
		ImageGCInterval: o.ImageCleanupInterval, ImageMinAge: o.ImageMinimumAge,
		RequestTimeout: o.RequestTimeout, Reconnected: tasksTrigger,
	})
	if err != nil {
		if a.ownsRuntime {
			_ = a.runtime.Close()
		}
		return nil, err
	}
	a.components = []component{
		&heartbeat{conn: c, interval: o.HeartbeatInterval, timeout: o.RequestTimeout, reconnected: []chan<- struct{}{statusTrigger, tasksTrigger}},
		&statusReporter{conn: c, host: h, docker: a.runtime, version: o.Version,
			interval: o.StatusInterval, timeout: o.RequestTimeout, trigger: statusTrigger},
		&certRotator{conn: c, dir: dir, interval: o.CertCheckInterval, timeout: o.RequestTimeout},
		engineComponent{eng},
		newTunnel(c, a.runtime, o.RequestTimeout, o.TaskCleanupDelay, o.Version),
	}
	return a, nil
}

// Run starts the components and waits until ctx ends and they have stopped.
func (a *Agent) Run(ctx context.Context) error {
	log := klog.FromContext(ctx).WithValues("containerInstance", klog.KRef(a.conn.cfg.Namespace, a.conn.cfg.ContainerInstance))
	ctx = klog.NewContext(ctx, log)
	log.Info("drover-agent is starting", "version", a.opts.Version, "server", a.conn.cfg.Server, "cluster", a.conn.cfg.Cluster)
	var wg sync.WaitGroup
	for _, c := range a.components {
		wg.Go(func() { c.run(klog.NewContext(ctx, log.WithName(c.name()))) })
	}
	wg.Wait()
	a.conn.close()
	if a.ownsRuntime {
		_ = a.runtime.Close()
	}
	log.Info("drover-agent stopped")
	return nil
}

// engineComponent runs the task engine as one of the agent's components.
type engineComponent struct{ e *engine.Engine }

func (engineComponent) name() string              { return "tasks" }
func (c engineComponent) run(ctx context.Context) { c.e.Run(ctx) }
