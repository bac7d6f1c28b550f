package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// upgradeServer is a TLS server that offers HTTP/2 and HTTP/1.1, like droverd, and answers the
// tunnel path with handler.
func upgradeServer(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *tls.Config) {
	t.Helper()
	srv := httptest.NewUnstartedServer(handler)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}}
}

func TestDialUpgradesOverHTTP1(t *testing.T) {
	srv, tc := upgradeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 1 || r.Method != http.MethodPost || r.URL.Path != TunnelPath("team-a", "host-1") ||
			r.Header.Get("Upgrade") != Protocol || r.Header.Get("User-Agent") != "test-agent" {
			http.Error(w, "unexpected request "+r.Proto+" "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		// The first bytes of the new protocol come in the same write as the 101: the client must
		// not lose what it read past the response.
		_, _ = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+Protocol+"\r\n\r\nhello\n")
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = io.WriteString(conn, "echo "+line)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	c, err := Dial(ctx, DialOptions{Server: srv.URL, TLSConfig: tc, Namespace: "team-a", Name: "host-1", UserAgent: "test-agent"})
	require.NoError(t, err)
	defer c.Close()
	cancel() // the context bounds the dial, not the tunnel
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, []string{"h2", "http/1.1"}, tc.NextProtos, "the caller's TLS config is left alone")
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "hello\n", line)
	_, err = io.WriteString(c, "ping\n")
	require.NoError(t, err)
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "echo ping\n", line)
	require.NoError(t, c.SetDeadline(time.Now().Add(time.Minute)), "deadlines reach the dialed connection")
	assert.NotNil(t, c.RemoteAddr())
}

func TestDialReportsTheServersMessage(t *testing.T) {
	srv, tc := upgradeServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"only the agent may open its tunnel","code":403}`)
	})
	_, err := Dial(t.Context(), DialOptions{Server: srv.URL, TLSConfig: tc, Namespace: "team-a", Name: "host-1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "403 Forbidden: only the agent may open its tunnel")
}

func TestDialIsBoundedByItsContext(t *testing.T) {
	// A server that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, DialOptions{Server: "https://" + l.Addr().String(), TLSConfig: &tls.Config{}, Namespace: "team-a", Name: "host-1"})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestLogsRequestRoundTrips(t *testing.T) {
	for _, r := range []LogsRequest{
		{Namespace: "team-a", Task: "web-1", UID: "u-1", Container: "app"},
		{Namespace: "team-a", Task: "web-1", UID: "u-1", Container: "app", Follow: true, Tail: 10, Timestamps: true},
	} {
		got, err := ParseLogsRequest(r.Query())
		require.NoError(t, err)
		assert.Equal(t, r, got)
	}
	_, err := ParseLogsRequest(url.Values{"namespace": {"team-a"}})
	assert.EqualError(t, err, "the logs request lacks task, uid, container")
	q := LogsRequest{Namespace: "a", Task: "b", UID: "c", Container: "d"}.Query()
	q.Set("tail", "0")
	_, err = ParseLogsRequest(q)
	assert.EqualError(t, err, `tail="0" is not a number of lines of at least 1`)
	q.Del("tail")
	q.Set("follow", "maybe")
	_, err = ParseLogsRequest(q)
	assert.EqualError(t, err, `follow="maybe" is not a boolean: use true or false`)
}
