package agent

import (
	"context"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRenewAt(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cert := &x509.Certificate{NotBefore: start, NotAfter: start.Add(30 * 24 * time.Hour)}
	assert.Equal(t, start.Add(20*24*time.Hour), renewAt(cert))
}

// registeredWith writes an identity with a client certificate from f's CA valid for validity, and
// returns a connection with it.
func registeredWith(t *testing.T, f *fakeServer, validity time.Duration) (stateDir, *conn) {
	t.Helper()
	kp, err := f.ca.IssueClient(instance.User(), instance.Groups(), validity)
	require.NoError(t, err)
	id := &Identity{
		Config: Config{Server: f.URL, Namespace: instance.Namespace, ContainerInstance: instance.Name, Cluster: "prod"},
		CAPEM:  f.ca.CertPEM, CertPEM: kp.CertPEM, KeyPEM: kp.KeyPEM,
	}
	dir := stateDir(t.TempDir())
	require.NoError(t, dir.save(id))
	c, err := newConn(id, "test")
	require.NoError(t, err)
	t.Cleanup(c.close)
	return dir, c
}

func TestCertRotatorRenewsWhenAThirdOfTheValidityRemains(t *testing.T) {
	f := newFakeServer(t)
	// Issued certificates start 5 minutes in the past: 1 minute left of 6 is due for renewal.
	dir, c := registeredWith(t, f, time.Minute)
	before := c.cert.Load()
	r := &certRotator{conn: c, dir: dir, interval: time.Minute, timeout: 10 * time.Second}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.run(ctx) }()
	require.Eventually(t, func() bool { return c.cert.Load().Leaf.NotAfter.After(time.Now().Add(30 * time.Minute)) },
		10*time.Second, 20*time.Millisecond, "the certificate is renewed")
	time.Sleep(100 * time.Millisecond)
	cancel()
	<-done

	assert.Equal(t, int32(1), f.renewals.Load(), "a fresh certificate is not renewed again")
	after := c.cert.Load()
	assert.Equal(t, instance.User(), after.Leaf.Subject.CommonName)
	assert.NotEqual(t, before.PrivateKey, after.PrivateKey, "renewal uses a new key")
	id, err := dir.load()
	require.NoError(t, err)
	stored, err := keyPair(id.CertPEM, id.KeyPEM)
	require.NoError(t, err)
	assert.Equal(t, after.Certificate, stored.Certificate, "the renewed certificate is stored")
	assert.Equal(t, after.PrivateKey, stored.PrivateKey, "the renewed key is stored")
	assertMode(t, dir.path(keyFile), 0o600)
}

func TestCertRotatorKeepsTheCertificateWhenRenewalIsRefused(t *testing.T) {
	f := newFakeServer(t)
	f.renew = func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusForbidden, errorResponse{Error: "container instance team-a/host-1 is deregistered"})
	}
	dir, c := registeredWith(t, f, time.Minute)
	before, err := dir.load()
	require.NoError(t, err)
	r := &certRotator{conn: c, dir: dir, interval: time.Minute, timeout: 10 * time.Second}

	err = r.renew(t.Context())

	require.Error(t, err)
	assert.Contains(t, err.Error(), "deregistered")
	after, err := dir.load()
	require.NoError(t, err)
	assert.Equal(t, before, after)
}
