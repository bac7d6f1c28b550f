package agent

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"k8s.io/klog/v2"

	"github.com/drover-dev/drover/internal/agent/backoff"
)

type renewRequest struct {
	CSR string `json:"csr"`
}

type renewResponse struct {
	Certificate string `json:"certificate"`
}

// certRotator renews the instance's client certificate, with a new key, once less than a third
// of its validity remains. The new pair is written to the state directory before it is used.
type certRotator struct {
	conn     *conn
	dir      stateDir
	interval time.Duration
	timeout  time.Duration
}

func (r *certRotator) name() string { return "certificates" }

// renewAt is when a certificate is due for renewal: when a third of its validity remains.
func renewAt(cert *x509.Certificate) time.Time {
	return cert.NotAfter.Add(-cert.NotAfter.Sub(cert.NotBefore) / 3)
}

func (r *certRotator) run(ctx context.Context) {
	log := klog.FromContext(ctx)
	b := backoff.Backoff{Min: 5 * time.Second, Max: 5 * time.Minute}
	expiredLogged := false
	for {
		leaf := r.conn.cert.Load().Leaf
		now := time.Now()
		wait := min(r.interval, time.Until(renewAt(leaf)))
		if !now.Before(renewAt(leaf)) {
			if err := r.renew(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				if now.After(leaf.NotAfter) && !expiredLogged {
					log.Error(nil, "The client certificate has expired and the control plane will refuse it; register the host again with --force", "notAfter", leaf.NotAfter)
					expiredLogged = true
				}
				log.Error(err, "Cannot renew the client certificate; trying again", "notAfter", leaf.NotAfter)
				wait = min(b.Next(), r.interval)
			} else {
				b.Reset()
				expiredLogged = false
				next := r.conn.cert.Load().Leaf
				log.Info("Renewed the client certificate", "notAfter", next.NotAfter, "renewAt", renewAt(next))
				wait = min(r.interval, time.Until(renewAt(next)))
			}
		}
		if !backoff.Sleep(ctx, max(wait, time.Second)) {
			return
		}
	}
}

// renew asks the control plane for a certificate for a new key, authenticating with the current
// one, and stores and uses the new pair.
func (r *certRotator) renew(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	current := r.conn.cert.Load().Leaf
	key, keyPEM, csrPEM, err := newKeyAndCSR(current.Subject.CommonName)
	if err != nil {
		return err
	}
	body, err := json.Marshal(renewRequest{CSR: string(csrPEM)})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.conn.cfg.Server+renewPath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.conn.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e errorResponse
		_ = json.Unmarshal(data, &e)
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = " (the instance may have been deregistered)"
		}
		return fmt.Errorf("the control plane refused to renew the certificate%s: %d %s: %s", hint, resp.StatusCode, http.StatusText(resp.StatusCode), e.Error)
	}
	var out renewResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return fmt.Errorf("the answer to the renewal is not the expected JSON: %w", err)
	}
	cert, err := checkClientCert([]byte(out.Certificate), r.conn.ca, &key.PublicKey)
	if err != nil {
		return fmt.Errorf("the renewed certificate is unusable: %w", err)
	}
	if cert.Subject.CommonName != current.Subject.CommonName {
		return fmt.Errorf("the renewed certificate names %q, not %q", cert.Subject.CommonName, current.Subject.CommonName)
	}
	pair, err := keyPair([]byte(out.Certificate), keyPEM)
	if err != nil {
		return err
	}
	if err := r.dir.saveKeyPair([]byte(out.Certificate), keyPEM); err != nil {
		return fmt.Errorf("saving the renewed certificate: %w", err)
	}
	r.conn.setCert(pair)
	return nil
}
