package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	goruntime "runtime"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"golang.org/x/net/http2"
	"k8s.io/klog/v2"

	"github.com/drover-dev/drover/internal/agent/backoff"
	"github.com/drover-dev/drover/internal/agent/engine"
	rt "github.com/drover-dev/drover/internal/agent/runtime"
	"github.com/drover-dev/drover/internal/tunnel/wire"
)

// Reconnection of the tunnel: a tunnel that stayed open for tunnelStable resets the backoff, so
// that the agent reconnects at once after droverd restarts, and a tunnel that keeps failing is
// retried at most every tunnelMaxBackoff.
const (
	tunnelMinBackoff = time.Second
	tunnelMaxBackoff = time.Minute
	tunnelStable     = time.Minute
	// tunnelPingInterval and tunnelPingTimeout notice a tunnel that died silently.
	tunnelPingInterval = 30 * time.Second
	tunnelPingTimeout  = 15 * time.Second
)

// tunnel keeps a connection to droverd open over which droverd asks the agent for what only the
// host has: the output of the instance's containers. The agent dials out, as it does for
// everything else, with its instance certificate; droverd is the HTTP/2 client on the connection
// and the agent the server. When the connection drops the agent opens a new one, with backoff.
type tunnel struct {
	conn    *conn
	runtime rt.Runtime
	// timeout bounds each dial and each request to the container runtime before streaming.
	timeout time.Duration
	// cleanupDelay is how long the engine keeps a stopped task's containers, for messages.
	cleanupDelay time.Duration
	userAgent    string
	// failures counts the attempts to open the tunnel that failed in a row.
	failures int
}

func newTunnel(c *conn, runtime rt.Runtime, timeout, cleanupDelay time.Duration, version string) *tunnel {
	return &tunnel{conn: c, runtime: runtime, timeout: timeout, cleanupDelay: cleanupDelay,
		userAgent: fmt.Sprintf("drover-agent/%s (%s/%s)", version, goruntime.GOOS, goruntime.GOARCH)}
}

func (t *tunnel) name() string { return "tunnel" }

func (t *tunnel) run(ctx context.Context) {
	log := klog.FromContext(ctx)
	b := backoff.Backoff{Min: tunnelMinBackoff, Max: tunnelMaxBackoff}
	for {
		opened, err := t.serve(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			t.failures++
			log.Error(err, "Cannot open the tunnel to droverd, which carries the logs of this instance's containers; trying again", "failures", t.failures)
		case time.Since(opened) >= tunnelStable:
			b.Reset()
			log.Info("The tunnel to droverd closed; opening a new one", "openFor", time.Since(opened).Round(time.Second))
		default:
			log.V(1).Info("The tunnel to droverd closed soon after it opened; opening a new one", "openFor", time.Since(opened).Round(time.Millisecond))
		}
		if !backoff.Sleep(ctx, b.Next()) {
			return
		}
	}
}

// serve opens a tunnel and serves droverd's requests on it until it closes or ctx ends. It
// returns when the tunnel opened, or why it could not be opened.
func (t *tunnel) serve(ctx context.Context) (time.Time, error) {
	dctx, cancel := context.WithTimeout(ctx, t.timeout)
	c, err := wire.Dial(dctx, wire.DialOptions{
		Server:    t.conn.cfg.Server,
		TLSConfig: t.conn.tls,
		Proxy:     t.conn.transport.Proxy,
		Namespace: t.conn.cfg.Namespace,
		Name:      t.conn.cfg.ContainerInstance,
		UserAgent: t.userAgent,
	})
	cancel()
	if err != nil {
		return time.Time{}, err
	}
	opened := time.Now()
	if log := klog.FromContext(ctx); t.failures > 0 {
		log.Info("Tunnel to droverd open again", "failures", t.failures)
	} else {
		log.V(1).Info("Tunnel to droverd open")
	}
	t.failures = 0
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	srv := &http2.Server{}
	srv.ServeConn(c, &http2.ServeConnOpts{
		Context:    ctx,
		BaseConfig: &http.Server{HTTP2: &http.HTTP2Config{SendPingTimeout: tunnelPingInterval, PingTimeout: tunnelPingTimeout}},
		Handler:    t.handler(ctx),
	})
	_ = c.Close()
	return opened, nil
}

// handler serves droverd's requests over the tunnel while ctx, the agent's, lasts.
func (t *tunnel) handler(ctx context.Context) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.LogsPath, func(w http.ResponseWriter, r *http.Request) { t.serveLogs(ctx, w, r) })
	return mux
}

// serveLogs streams a container's output, stdout and stderr interleaved as they were written, as
// plain text. It serves only the containers the engine created for this instance.
func (t *tunnel) serveLogs(agent context.Context, w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, err := wire.ParseLogsRequest(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ns, instance := t.conn.cfg.Namespace, t.conn.cfg.ContainerInstance
	if req.Namespace != ns {
		http.Error(w, fmt.Sprintf("task %s/%s is not in namespace %s, the namespace of this instance", req.Namespace, req.Task, ns), http.StatusNotFound)
		return
	}
	labels := map[string]string{
		engine.LabelManagedBy:         engine.ManagedBy,
		engine.LabelContainerInstance: ns + "/" + instance,
		engine.LabelTask:              req.Namespace + "/" + req.Task,
		engine.LabelTaskUID:           req.UID,
		engine.LabelContainerName:     req.Container,
	}
	lctx, cancel := context.WithTimeout(ctx, t.timeout)
	list, err := t.runtime.ListContainers(lctx, labels)
	cancel()
	if err != nil {
		http.Error(w, fmt.Sprintf("listing the containers of task %s on the container runtime: %v", req.Task, err), http.StatusInternalServerError)
		return
	}
	if len(list) == 0 {
		http.Error(w, fmt.Sprintf("container %s of task %s is not on the host: the agent has not created it yet, or removed it %s after the task stopped (drover-agent --task-cleanup-delay)",
			req.Container, req.Task, t.cleanupDelay), http.StatusNotFound)
		return
	}
	c := list[0]
	for _, o := range list[1:] {
		if o.State == rt.StateRunning {
			c = o
		}
	}
	logs, err := t.runtime.ContainerLogs(ctx, c.ID, rt.LogOptions{Follow: req.Follow, Tail: req.Tail, Timestamps: req.Timestamps})
	if errors.Is(err, rt.ErrNotFound) {
		http.Error(w, fmt.Sprintf("container %s of task %s was removed from the host", req.Container, req.Task), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, fmt.Sprintf("reading the logs of container %s of task %s from the container runtime: %v", req.Container, req.Task, err), http.StatusInternalServerError)
		return
	}
	defer logs.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	out := &flushWriter{w: w, rc: http.NewResponseController(w), flush: req.Follow}
	// Send the headers now: a followed container may stay silent for a long time.
	_ = out.rc.Flush()
	// The engine creates containers without a TTY, so the runtime multiplexes stdout and stderr.
	_, err = stdcopy.StdCopy(out, out, logs)
	// A stream droverd reset (its client went away) is over. One that failed, or that the agent
	// stopping cut short, is reset, so that droverd and its client see it broke off rather than
	// ended.
	if (err != nil && ctx.Err() == nil) || agent.Err() != nil {
		klog.FromContext(ctx).V(1).Info("Log stream broke off", "task", klog.KRef(req.Namespace, req.Task), "container", req.Container, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// flushWriter writes to an HTTP response, flushing after each write when flush is set.
type flushWriter struct {
	w     io.Writer
	rc    *http.ResponseController
	flush bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil && f.flush {
		err = f.rc.Flush()
	}
	return n, err
}
