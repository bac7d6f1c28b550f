// Package tunnel is droverd's end of the tunnels that agents open, and the task log endpoint whose
// requests travel over them.
//
// An agent only dials out, so droverd reaches it over a connection the agent opened: a POST to
// its ContainerInstance's tunnel subresource, upgraded from HTTP/1.1 to the wire.Protocol. droverd
// then speaks HTTP/2 on that connection as the client, and the agent as the server. Both paths are
// served behind droverd's authentication and authorization: the tunnel only for the instance's own
// identity, the log subresource for whoever may get tasks/log.
package tunnel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/drover-dev/drover/internal/identity"
	"github.com/drover-dev/drover/internal/tunnel/wire"
)

// Ping settings of the HTTP/2 connection over a tunnel: a tunnel that carries no frame for
// pingInterval is pinged, and closed when the ping is not answered within pingTimeout, so that a
// connection that died silently (a NAT forgetting it, a host losing power) is not kept as the
// instance's tunnel.
const (
	pingInterval = 30 * time.Second
	pingTimeout  = 15 * time.Second
	// answerTimeout bounds the wait for an agent to start answering a request; the answer itself
	// (a followed log) may last as long as the client wants.
	answerTimeout = 30 * time.Second
)

// Server keeps the open tunnels, one per container instance, and serves the tunnel and task log
// endpoints.
type Server struct {
	h2 *http2.Transport
	// reader reads Tasks and ContainerInstances; nil until SetClient.
	reader atomic.Pointer[client.Reader]

	mu      sync.Mutex
	tunnels map[string]*tunnel
	closed  bool
}

// tunnel is one agent's open tunnel.
type tunnel struct {
	// key is the instance's <namespace>/<name>; uid the UID of the ContainerInstance the agent's
	// certificate was issued for.
	key, uid string
	cc       *http2.ClientConn
	conn     *trackedConn
}

func (t *tunnel) close() {
	_ = t.cc.Close()
	_ = t.conn.Close()
}

// New returns a Server with no tunnels. It serves log requests once SetClient is called.
func New() (*Server, error) {
	t1 := &http.Transport{HTTP2: &http.HTTP2Config{SendPingTimeout: pingInterval, PingTimeout: pingTimeout}}
	h2, err := http2.ConfigureTransports(t1)
	if err != nil {
		return nil, fmt.Errorf("configuring the HTTP/2 client of the tunnels: %w", err)
	}
	return &Server{h2: h2, tunnels: map[string]*tunnel{}}, nil
}

// SetClient gives the server the client it reads Tasks and ContainerInstances with. Until it is
// called, log requests are answered 503.
func (s *Server) SetClient(c client.Reader) { s.reader.Store(&c) }

// Close closes every tunnel, and those opened afterwards at once.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	open := make([]*tunnel, 0, len(s.tunnels))
	for _, t := range s.tunnels {
		open = append(open, t)
	}
	clear(s.tunnels)
	s.mu.Unlock()
	for _, t := range open {
		t.close()
	}
}

// Wrap returns a handler that serves the tunnel and task log endpoints itself and passes every
// other request to next. It belongs inside the authentication and authorization filters: it
// routes by the request info they decided on.
func (s *Server) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := request.RequestInfoFrom(r.Context())
		if ok && info.IsResourceRequest && info.APIGroup == wire.Group && info.APIVersion == wire.Version &&
			info.Namespace != "" && info.Name != "" && len(info.Parts) == 3 {
			switch {
			case info.Resource == "containerinstances" && info.Subresource == wire.TunnelSubresource:
				s.serveTunnel(w, r, info.Namespace, info.Name)
				return
			case info.Resource == "tasks" && info.Subresource == wire.LogSubresource:
				s.serveLogs(w, r, info.Namespace, info.Name)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// serveTunnel takes over the connection of an agent's upgrade request and keeps it as the
// instance's tunnel until it closes. A newer tunnel of the same instance replaces an older one.
func (s *Server) serveTunnel(w http.ResponseWriter, r *http.Request, namespace, name string) {
	key := namespace + "/" + name
	log := klog.FromContext(r.Context()).WithValues("containerInstance", klog.KRef(namespace, name), "source", r.RemoteAddr)
	// The authorizer lets only the instance's own identity through; check again, as the tunnel
	// makes its holder the instance's agent to droverd.
	u, _ := request.UserFrom(r.Context())
	var in identity.Instance
	isInstance := false
	if u != nil {
		in, isInstance = identity.FromUser(u.GetName(), u.GetGroups())
	}
	if !isInstance || in.Namespace != namespace || in.Name != name {
		writeError(w, forbidden(fmt.Sprintf("only the agent of container instance %s, with its instance certificate, may open its tunnel", key)))
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, methodNotAllowed(r.Method, "the tunnel is opened with a POST"))
		return
	}
	if !httpguts.HeaderValuesContainsToken(r.Header["Connection"], "Upgrade") || !strings.EqualFold(r.Header.Get("Upgrade"), wire.Protocol) {
		writeError(w, badRequest(fmt.Sprintf("the tunnel is opened by upgrading the connection: send Connection: Upgrade and Upgrade: %s", wire.Protocol)))
		return
	}
	if r.ProtoMajor != 1 {
		writeError(w, badRequest(fmt.Sprintf("the tunnel needs an HTTP/1.1 connection, and this request came over %s: offer only http/1.1 in TLS ALPN", r.Proto)))
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		log.Error(err, "Cannot take over the connection of a tunnel")
		writeError(w, internalError(fmt.Sprintf("taking over the connection: %v", err)))
		return
	}
	// Deadlines the HTTP server set for the request would end the tunnel.
	_ = conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+wire.Protocol+"\r\n\r\n"); err != nil {
		log.V(1).Info("Cannot answer a tunnel's upgrade", "err", err)
		_ = conn.Close()
		return
	}
	tc := &trackedConn{Conn: conn, r: brw.Reader, done: make(chan struct{})}
	cc, err := s.h2.NewClientConn(tc)
	if err != nil {
		log.Error(err, "Cannot start HTTP/2 on a tunnel")
		_ = tc.Close()
		return
	}
	t := &tunnel{key: key, uid: in.UID, cc: cc, conn: tc}
	// A tunnel lasts no longer than the certificate it was opened with: the agent opens a new one
	// with its renewed certificate.
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		expiry := time.AfterFunc(time.Until(r.TLS.PeerCertificates[0].NotAfter), t.close)
		defer expiry.Stop()
	}
	if !s.add(t) {
		t.close()
		return
	}
	log.V(1).Info("Tunnel opened")
	start := time.Now()
	<-tc.done
	s.remove(t)
	t.close()
	log.V(1).Info("Tunnel closed", "after", time.Since(start).Round(time.Millisecond))
}

// add makes t its instance's tunnel and closes the one it replaces. It is false once the server is
// closed.
func (s *Server) add(t *tunnel) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	old := s.tunnels[t.key]
	s.tunnels[t.key] = t
	s.mu.Unlock()
	if old != nil {
		old.close()
	}
	return true
}

// remove forgets t, unless a newer tunnel already replaced it.
func (s *Server) remove(t *tunnel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tunnels[t.key] == t {
		delete(s.tunnels, t.key)
	}
}

// get returns the tunnel of instance namespace/name, or nil.
func (s *Server) get(namespace, name string) *tunnel {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tunnels[namespace+"/"+name]
	if t != nil && t.cc.State().Closed {
		return nil
	}
	return t
}

// trackedConn is a tunnel's connection: it reads first what the HTTP server buffered past the
// upgrade request, and closes done once a read fails or it is closed, which is when the tunnel
// is over.
type trackedConn struct {
	net.Conn
	r    *bufio.Reader
	once sync.Once
	done chan struct{}
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil {
		c.end()
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.end()
	return c.Conn.Close()
}

func (c *trackedConn) end() { c.once.Do(func() { close(c.done) }) }

// errNoClient is returned while droverd is starting.
var errNoClient = errors.New("droverd is starting and cannot read tasks yet; try again in a moment")

func (s *Server) client() (client.Reader, error) {
	c := s.reader.Load()
	if c == nil {
		return nil, errNoClient
	}
	return *c, nil
}
