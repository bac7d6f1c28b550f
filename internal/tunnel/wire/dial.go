package wire

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DialOptions say where and as whom to open a tunnel.
type DialOptions struct {
	// Server is droverd's URL, https://host:port.
	Server string
	// TLSConfig verifies droverd and presents the instance's client certificate. Dial uses a copy
	// that offers only HTTP/1.1: the upgrade needs an HTTP/1.1 connection.
	TLSConfig *tls.Config
	// Proxy, when set, chooses an HTTP proxy for the connection, as http.Transport.Proxy does.
	Proxy func(*http.Request) (*url.URL, error)
	// Namespace and Name are the container instance whose tunnel this is.
	Namespace, Name string
	// UserAgent is sent with the upgrade request.
	UserAgent string
}

// Dial opens the tunnel of a container instance: it connects to droverd over TLS, asks with an
// HTTP/1.1 POST to upgrade the connection to Protocol, and returns the connection once droverd
// has agreed (101 Switching Protocols). The caller then serves HTTP/2 on it. ctx bounds the dial
// and the handshake, not the tunnel's life.
func Dial(ctx context.Context, o DialOptions) (net.Conn, error) {
	if o.TLSConfig == nil {
		return nil, errors.New("dialing the tunnel: no TLS config")
	}
	tlsConfig := o.TLSConfig.Clone()
	tlsConfig.NextProtos = []string{"http/1.1"}
	var (
		mu  sync.Mutex
		raw net.Conn
	)
	dialer := &net.Dialer{KeepAlive: 30 * time.Second}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	t := &http.Transport{
		Proxy: o.Proxy,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				mu.Lock()
				raw = c
				mu.Unlock()
			}
			return c, err
		},
		TLSClientConfig: tlsConfig,
		// HTTP/1.1 only: an empty TLSNextProto keeps HTTP/2 off, as do Protocols.
		TLSNextProto:       map[string]func(string, *tls.Conn) http.RoundTripper{},
		Protocols:          protocols,
		DisableKeepAlives:  true,
		DisableCompression: true,
	}
	defer t.CloseIdleConnections()

	u := strings.TrimSuffix(o.Server, "/") + TunnelPath(o.Namespace, o.Name)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("dialing the tunnel: %w", err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", Protocol)
	if o.UserAgent != "" {
		req.Header.Set("User-Agent", o.UserAgent)
	}
	resp, err := t.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("opening the tunnel at %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return nil, fmt.Errorf("opening the tunnel at %s: %s: %s", u, resp.Status, errorMessage(resp.Body))
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), Protocol) {
		resp.Body.Close()
		return nil, fmt.Errorf("opening the tunnel at %s: the server switched to %q, not %s", u, resp.Header.Get("Upgrade"), Protocol)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, fmt.Errorf("opening the tunnel at %s: the upgraded connection is not writable", u)
	}
	mu.Lock()
	defer mu.Unlock()
	if raw == nil {
		rwc.Close()
		return nil, fmt.Errorf("opening the tunnel at %s: the connection was not dialed", u)
	}
	return &upgradedConn{ReadWriteCloser: rwc, raw: raw}, nil
}

// errorMessage reads the message of an error response: a Kubernetes Status's message, or the text.
func errorMessage(r io.Reader) string {
	body, _ := io.ReadAll(io.LimitReader(r, 4096))
	var status struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &status) == nil && status.Message != "" {
		return status.Message
	}
	if s := strings.TrimSpace(string(body)); s != "" {
		return s
	}
	return "no message"
}

// upgradedConn is a connection after the upgrade: reads and writes go through the HTTP client's
// view of it (which holds what it read past the response), addresses and deadlines to the
// connection it dialed, below TLS.
type upgradedConn struct {
	io.ReadWriteCloser
	raw net.Conn
}

func (c *upgradedConn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *upgradedConn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *upgradedConn) SetDeadline(t time.Time) error      { return c.raw.SetDeadline(t) }
func (c *upgradedConn) SetReadDeadline(t time.Time) error  { return c.raw.SetReadDeadline(t) }
func (c *upgradedConn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }
