package hollow

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Config is what the instances of a Fleet share.
type Config struct {
	// Server is droverd's URL; CA verifies it.
	Server string
	CA     *x509.CertPool
	// CPU (units, 1024 per vCPU) and Memory (MiB) are what each instance registers.
	CPU, Memory int32
	// HeartbeatInterval is how often each instance renews its Lease; 5 s (drover-agent's default)
	// when zero.
	HeartbeatInterval time.Duration
	// StatusInterval is how often each instance reports its status besides at start and after a
	// gap in its heartbeats; never when zero (drover-agent reports every minute).
	StatusInterval time.Duration
	// StartDelay is how long after an instance sees a resolved Task bound to it that it reports
	// the Task RUNNING.
	StartDelay time.Duration
	// StopDelay is how long after an instance sees a Task's desiredStatus STOPPED that it reports
	// the Task STOPPED.
	StopDelay time.Duration
	// RequestTimeout bounds each request; 10 s (drover-agent's default) when zero.
	RequestTimeout time.Duration
	// HeartbeatOnly instances renew their Leases and do nothing else: no status report, no watch.
	HeartbeatOnly bool
	// StartRate, when positive, starts the instances in order, this many a second. Otherwise each
	// starts at a random moment within one heartbeat interval of Start, as hosts that were up
	// all along reconnect.
	StartRate float64
	// OnRenew, when set, is called after each renewal of instance i (its index in the fleet) with
	// when it started, how long it took and its error. It is called from many goroutines at once.
	OnRenew func(i int, at time.Time, took time.Duration, err error)
	// OnRequest, when set, is called after each request of any instance but its watches, with the
	// request's verb (get, list, update, patch) and resource (leases, tasks/status, ...), the time
	// from sending it to the answer's headers, and the answer's HTTP status (0 for none). It is
	// called from many goroutines at once.
	OnRequest func(verb, resource string, took time.Duration, code int)
}

// Fleet is many hollow instances in this process.
type Fleet struct {
	cfg       Config
	instances []*Instance
	byName    map[string]*Instance

	cancel       context.CancelFunc
	wg           sync.WaitGroup
	startedCount atomic.Int64
	stats        counters

	mu      sync.Mutex
	failRev atomic.Pointer[map[string]bool]

	// before is the memory in use when the fleet was made, after when it had started.
	before, after Mem
}

// NewFleet prepares an instance for each identity, with its own transport and clients. It does
// not contact droverd.
func NewFleet(cfg Config, ids []*Identity) (*Fleet, error) {
	if cfg.Server == "" || cfg.CA == nil {
		return nil, errors.New("a fleet needs droverd's URL and CA")
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 5 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	f := &Fleet{cfg: cfg, byName: make(map[string]*Instance, len(ids)), before: ReadMem()}
	f.failRev.Store(&map[string]bool{})
	for i, id := range ids {
		c, err := newConn(cfg.Server, cfg.CA, id.Cert, cfg.OnRequest)
		if err != nil {
			return nil, fmt.Errorf("instance %s: %w", id.Name, err)
		}
		in := &Instance{fleet: f, index: i, id: id, conn: c}
		f.instances = append(f.instances, in)
		f.byName[id.Name] = in
	}
	return f, nil
}

// Start runs every instance until Stop. Each starts at a random moment within one heartbeat
// interval, as hosts do, so that their renewals spread over the interval.
func (f *Fleet) Start(ctx context.Context) {
	ctx, f.cancel = context.WithCancel(ctx)
	spawn := func(fn func()) { f.wg.Go(fn) }
	for i, in := range f.instances {
		ictx, cancel := context.WithCancel(ctx)
		in.cancel = cancel
		offset := time.Duration(mathrand.Int64N(int64(f.cfg.HeartbeatInterval)))
		if f.cfg.StartRate > 0 {
			offset = time.Duration(float64(i) / f.cfg.StartRate * float64(time.Second))
		}
		in.run(ictx, offset, spawn)
	}
}

// WaitStarted waits until every instance that was not killed has renewed its Lease, reported its
// status and opened its Task watch (only renewed, for HeartbeatOnly instances), and then records
// the memory in use for PerInstance. It fails when ctx ends first.
func (f *Fleet) WaitStarted(ctx context.Context) error {
	for {
		dead := 0
		for _, in := range f.instances {
			if in.Dead() {
				dead++
			}
		}
		if n := int(f.startedCount.Load()); n+dead >= len(f.instances) {
			f.mu.Lock()
			f.after = ReadMem()
			f.mu.Unlock()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d hollow instances started (%d killed); %s: %w",
				f.startedCount.Load(), len(f.instances), dead, f.Stats().FirstError, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops every instance and closes their connections.
func (f *Fleet) Stop() {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	for _, in := range f.instances {
		in.conn.close()
	}
}

// Instances are the fleet's instances, in the order of their identities.
func (f *Fleet) Instances() []*Instance { return f.instances }

// Instance returns the instance of that name, or nil.
func (f *Fleet) Instance(name string) *Instance { return f.byName[name] }

// Kill makes instances die as hosts do: they stop renewing their Leases, watching and reporting,
// and their connections close. Their Tasks stay as last reported.
func (f *Fleet) Kill(names ...string) error {
	for _, name := range names {
		in := f.byName[name]
		if in == nil {
			return fmt.Errorf("no hollow instance %s", name)
		}
		if in.dead.Swap(true) {
			continue
		}
		if in.cancel != nil {
			in.cancel()
		}
		in.conn.close()
	}
	return nil
}

// FailRevision makes the instances fail to start every task of a task definition revision
// (<family>-<n>): such tasks go STOPPED with TaskFailedToStart when they would have gone RUNNING.
func (f *Fleet) FailRevision(revision string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]bool{revision: true}
	for r := range *f.failRev.Load() {
		m[r] = true
	}
	f.failRev.Store(&m)
}

func (f *Fleet) failing(revision string) bool { return (*f.failRev.Load())[revision] }

// Mem is what this process holds in memory: its live Go heap, its goroutine stacks, and its
// goroutines.
type Mem struct {
	Heap, Stacks uint64
	Goroutines   int
}

// ReadMem measures the live heap after a collection.
func ReadMem() Mem {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Mem{Heap: ms.HeapAlloc, Stacks: ms.StackInuse, Goroutines: runtime.NumGoroutine()}
}

// PerInstanceMem is memory per instance.
type PerInstanceMem struct {
	// Heap and Stacks are bytes per instance.
	Heap, Stacks float64
	Goroutines   float64
}

// PerInstance is what the fleet added to this process's memory from NewFleet until WaitStarted
// returned, divided by the number of instances: transports and their TLS connections, clients,
// goroutines and what the instances keep of their Tasks. It leaves out the identities (a
// certificate and key each, a few KiB), made before the fleet, and anything else the process
// did meanwhile, so measure it when little else runs. Zero until WaitStarted returned.
func (f *Fleet) PerInstance() PerInstanceMem {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := float64(len(f.instances))
	if n == 0 || f.after.Heap == 0 {
		return PerInstanceMem{}
	}
	return PerInstanceMem{
		Heap:       (float64(f.after.Heap) - float64(f.before.Heap)) / n,
		Stacks:     (float64(f.after.Stacks) - float64(f.before.Stacks)) / n,
		Goroutines: float64(f.after.Goroutines-f.before.Goroutines) / n,
	}
}

// Stats count what the fleet's instances did.
type Stats struct {
	Renewals, RenewalErrors     int64
	StatusReports, StatusErrors int64
	// Running, Stopped and Failed count the Tasks reported RUNNING, STOPPED as asked, and STOPPED
	// because their revision fails; TaskReportErrors the reports that failed and were retried.
	Running, Stopped, Failed int64
	TaskReportErrors         int64
	// Lists and Watches count the Task lists and watches started; WatchErrors those that failed.
	Lists, Watches, WatchErrors int64
	// FirstError is the first error of any kind, "" when none.
	FirstError string
}

type counters struct {
	renewals, renewalErrors     atomic.Int64
	statusReports, statusErrors atomic.Int64
	running, stopped, failed    atomic.Int64
	taskReportErrors            atomic.Int64
	lists, watches, watchErrors atomic.Int64
	firstErr                    atomic.Pointer[string]
}

func (c *counters) fail(n *atomic.Int64, err error) {
	n.Add(1)
	msg := err.Error()
	c.firstErr.CompareAndSwap(nil, &msg)
}

// Stats returns what the instances did so far.
func (f *Fleet) Stats() Stats {
	c := &f.stats
	s := Stats{
		Renewals: c.renewals.Load(), RenewalErrors: c.renewalErrors.Load(),
		StatusReports: c.statusReports.Load(), StatusErrors: c.statusErrors.Load(),
		Running: c.running.Load(), Stopped: c.stopped.Load(), Failed: c.failed.Load(),
		TaskReportErrors: c.taskReportErrors.Load(),
		Lists:            c.lists.Load(), Watches: c.watches.Load(), WatchErrors: c.watchErrors.Load(),
	}
	if e := c.firstErr.Load(); e != nil {
		s.FirstError = *e
	}
	return s
}
