package auth

import (
	"crypto/sha256"
	"net/http"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
)

// certCacheTTL is how long a verified client certificate chain is trusted without verifying it
// again; never past the certificate's notAfter.
const certCacheTTL = time.Minute

// certCacheSize bounds the chains remembered; beyond it, expired ones are dropped, then all.
const certCacheSize = 50000

// certCache remembers what a verified client certificate chain authenticated as. Verifying the
// chain is an ECDSA signature check on every request, and with thousands of agents it took a
// fifth of droverd's CPU, most of it on requests then refused for load. The TLS handshake has
// already proved that the client holds the certificate's key, so the same certificate chain
// stands for the same identity until it expires; only the chain check is skipped.
type certCache struct {
	next authenticator.Request

	mu sync.Mutex
	m  map[[sha256.Size]byte]cachedCert
}

type cachedCert struct {
	resp    *authenticator.Response
	expires time.Time
}

func newCertCache(next authenticator.Request) *certCache {
	return &certCache{next: next, m: map[[sha256.Size]byte]cachedCert{}}
}

// AuthenticateRequest implements authenticator.Request.
func (c *certCache) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return c.next.AuthenticateRequest(req)
	}
	h := sha256.New()
	for _, cert := range req.TLS.PeerCertificates {
		h.Write(cert.Raw)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	now := time.Now()
	c.mu.Lock()
	got, ok := c.m[key]
	c.mu.Unlock()
	if ok && now.Before(got.expires) {
		return got.resp, true, nil
	}
	resp, ok, err := c.next.AuthenticateRequest(req)
	if !ok || err != nil {
		return resp, ok, err
	}
	expires := now.Add(certCacheTTL)
	if leaf := req.TLS.PeerCertificates[0]; leaf.NotAfter.Before(expires) {
		expires = leaf.NotAfter
	}
	c.mu.Lock()
	if len(c.m) >= certCacheSize {
		for k, v := range c.m {
			if !now.Before(v.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= certCacheSize {
			clear(c.m)
		}
	}
	c.m[key] = cachedCert{resp: resp, expires: expires}
	c.mu.Unlock()
	return resp, true, nil
}
