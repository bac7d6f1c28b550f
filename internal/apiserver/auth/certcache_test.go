package auth

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/pki"
)

func clientCert(t *testing.T, ca *pki.CA, cn string, validity time.Duration) *x509.Certificate {
	t.Helper()
	kp, err := ca.IssueClient(cn, []string{"drover:instances"}, validity)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(kp.CertPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func requestWith(cert *x509.Certificate) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, "https://droverd/api", nil)
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	return req
}

// TestVerifiedCertificatesAreRememberedUntilTheyExpire: a client certificate authenticates the
// same on every request, one from another CA never does, and once a certificate has expired it
// is refused, though it was verified before.
func TestVerifiedCertificatesAreRememberedUntilTheyExpire(t *testing.T) {
	ca, _, err := pki.NewCA("drover-ca")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := pki.NewCA("someone-else")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	authn := NewAuthenticator(pool)

	good := clientCert(t, ca, "store-1", 2*time.Second)
	forged := clientCert(t, other, "store-1", time.Hour)
	for i := range 3 {
		resp, ok, err := authn.AuthenticateRequest(requestWith(good))
		if !ok || err != nil || resp.User.GetName() != "store-1" {
			t.Fatalf("request %d: a valid certificate authenticates as its CN: ok=%v err=%v", i, ok, err)
		}
		if _, ok, _ := authn.AuthenticateRequest(requestWith(forged)); ok {
			t.Fatalf("request %d: a certificate from another CA must not authenticate", i)
		}
	}
	time.Sleep(time.Until(good.NotAfter) + 1100*time.Millisecond)
	if _, ok, _ := authn.AuthenticateRequest(requestWith(good)); ok {
		t.Fatal("an expired certificate must not authenticate, though it was verified before")
	}
}
