package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"
)

// Paths of the registration endpoints droverd serves beside the Kubernetes API.
const (
	caPath       = "/drover/v1/ca"
	registerPath = "/drover/v1/register"
	renewPath    = "/drover/v1/renew"
)

// maxResponse bounds what the agent reads of any answer from the registration endpoints.
const maxResponse = 1 << 20

// ErrCAMismatch is returned when the server's CA does not match the pinned hash.
var ErrCAMismatch = errors.New("the server's CA does not match --ca-cert-hash")

// RegisterError is a registration the server refused.
type RegisterError struct {
	// StatusCode is the HTTP status of the last answer.
	StatusCode int
	// Message is the server's error message.
	Message string
}

func (e *RegisterError) Error() string {
	detail := ""
	if e.Message != "" {
		detail = " (server said: " + e.Message + ")"
	}
	switch e.StatusCode {
	case http.StatusBadRequest:
		return "the server rejected the registration request as malformed" + detail + "; check that drover-agent and droverd are compatible versions"
	case http.StatusForbidden:
		return "registration refused: the activation id or code is wrong, or the activation has expired or reached its registration limit" + detail +
			"; check the values `drover activation create` printed, or create a new activation"
	case http.StatusTooManyRequests:
		return "registration refused: too many attempts, the server is rate-limiting them" + detail + "; wait a few minutes and try again"
	case http.StatusServiceUnavailable:
		return "the server cannot register hosts yet (it may be starting)" + detail + "; try again in a minute"
	default:
		return fmt.Sprintf("registration failed: the server answered %d %s%s", e.StatusCode, http.StatusText(e.StatusCode), detail)
	}
}

type registerRequest struct {
	ActivationID   string `json:"activationId"`
	ActivationCode string `json:"activationCode"`
	Hostname       string `json:"hostname"`
	CSR            string `json:"csr"`
}

type registerResponse struct {
	Namespace         string `json:"namespace"`
	ContainerInstance string `json:"containerInstance"`
	Cluster           string `json:"cluster"`
	Certificate       string `json:"certificate"`
	CACertificate     string `json:"caCertificate"`
}

type errorResponse struct {
	Error string `json:"error"`
}

// Register registers this host with an activation and writes its identity into o.StateDir. It
// fetches the server's CA without trusting it, sends the code only if the CA matches
// o.CACertHash, and then only over a connection verified against that CA.
func Register(ctx context.Context, o RegisterOptions) (*Config, error) {
	if err := o.Complete(); err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	log := klog.FromContext(ctx)
	dir := stateDir(o.StateDir)
	if existing, err := dir.registered(); err != nil {
		return nil, err
	} else if existing != nil && !o.Force {
		return nil, fmt.Errorf("%s already holds the registration of container instance %s/%s with %s; use --force to register again (the old instance stays until deleted)",
			o.StateDir, existing.Namespace, existing.ContainerInstance, existing.Server)
	}

	ca, caPEM, err := fetchPinnedCA(ctx, o.Server, o.CACertHash, o.RequestTimeout)
	if err != nil {
		return nil, err
	}
	log.V(1).Info("Server CA matches the pinned hash", "server", o.Server, "caSubject", ca.Subject.String())
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	key, keyPEM, csrPEM, err := newKeyAndCSR(o.Hostname)
	if err != nil {
		return nil, err
	}
	resp, err := postRegistration(ctx, o, pool, registerRequest{
		ActivationID: o.ActivationID, ActivationCode: o.ActivationCode, Hostname: o.Hostname, CSR: string(csrPEM),
	})
	if err != nil {
		return nil, err
	}
	if err := checkRegistration(resp, ca, o.CACertHash, key); err != nil {
		return nil, fmt.Errorf("the server's answer to the registration is unusable: %w", err)
	}
	id := &Identity{
		Config:  Config{Server: o.Server, Namespace: resp.Namespace, ContainerInstance: resp.ContainerInstance, Cluster: resp.Cluster},
		CAPEM:   caPEM,
		CertPEM: []byte(resp.Certificate),
		KeyPEM:  keyPEM,
	}
	if err := dir.save(id); err != nil {
		return nil, fmt.Errorf("saving the registration: %w", err)
	}
	return &id.Config, nil
}

// CAHash returns the pin of a CA certificate: "sha256:<hex>" over its DER SubjectPublicKeyInfo.
func CAHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// fetchPinnedCA fetches the server's CA certificate over an unverified connection and accepts it
// only if its hash is pin. Nothing secret is sent on that connection.
func fetchPinnedCA(ctx context.Context, server, pin string, timeout time.Duration) (*x509.Certificate, []byte, error) {
	hc := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			// The answer is trusted only once its hash matches the pin below.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
			Proxy:           http.ProxyFromEnvironment,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+caPath, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching the server's CA: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, nil, fmt.Errorf("fetching the server's CA: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("fetching the server's CA: %s answered %d %s; is it a Drover control plane?", server+caPath, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("fetching the server's CA: %s did not answer with a PEM certificate; is it a Drover control plane?", server+caPath)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching the server's CA: %w", err)
	}
	if got := CAHash(ca); subtle.ConstantTimeCompare([]byte(got), []byte(pin)) != 1 {
		return nil, nil, fmt.Errorf("%w: %s serves a CA whose hash is %s, not %s. The activation code was not sent. "+
			"Check --server and --ca-cert-hash against what `drover activation create` printed; a mismatch can also mean "+
			"something is intercepting the connection", ErrCAMismatch, server, got, pin)
	}
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("the certificate %s serves as its CA is not a CA certificate", server)
	}
	return ca, pem.EncodeToMemory(block), nil
}

func newKeyAndCSR(hostname string) (*ecdsa.PrivateKey, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	// The server names the certificate itself; the subject here only helps people reading the CSR.
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: hostname}}, key)
	if err != nil {
		return nil, nil, nil, err
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), nil
}

// verifiedClient returns an HTTP client that trusts only pool and never follows redirects, so a
// request body is never replayed to another location.
func verifiedClient(pool *x509.CertPool, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			Proxy:           http.ProxyFromEnvironment,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// postRegistration posts the request, trying again while the server answers 429 or 503, at most
// o.Attempts times. Errors never include the request body.
func postRegistration(ctx context.Context, o RegisterOptions, pool *x509.CertPool, r registerRequest) (*registerResponse, error) {
	log := klog.FromContext(ctx)
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	hc := verifiedClient(pool, o.RequestTimeout)
	defer hc.CloseIdleConnections()
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.Server+registerPath, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("registering with %s: %w", o.Server, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("registering with %s: reading the answer: %w", o.Server, err)
		}
		if resp.StatusCode == http.StatusOK {
			var out registerResponse
			if err := json.Unmarshal(data, &out); err != nil {
				return nil, fmt.Errorf("registering with %s: the answer is not the expected JSON: %w", o.Server, err)
			}
			return &out, nil
		}
		var e errorResponse
		_ = json.Unmarshal(data, &e)
		rerr := &RegisterError{StatusCode: resp.StatusCode, Message: e.Error}
		retryable := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable
		if !retryable || attempt >= o.Attempts {
			return nil, rerr
		}
		wait := retryAfter(resp.Header.Get("Retry-After"), time.Now(), time.Duration(attempt)*2*time.Second, o.MaxRetryWait)
		log.Info("Registration not accepted yet, trying again", "status", resp.StatusCode, "message", e.Error, "attempt", attempt, "wait", wait)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (stopped waiting: %v)", rerr, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), using fallback when it is
// absent or unreadable, and capping the wait at most (when most > 0).
func retryAfter(header string, now time.Time, fallback, most time.Duration) time.Duration {
	wait := fallback
	if s, err := strconv.Atoi(header); err == nil && s >= 0 {
		wait = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(header); err == nil {
		wait = max(t.Sub(now), 0)
	}
	if most > 0 && wait > most {
		wait = most
	}
	return wait
}

// checkRegistration checks the answer names an instance and carries a client certificate for key,
// issued by the pinned CA.
func checkRegistration(r *registerResponse, ca *x509.Certificate, pin string, key *ecdsa.PrivateKey) error {
	if errs := validation.IsDNS1123Label(r.Namespace); len(errs) > 0 {
		return fmt.Errorf("namespace %q: %v", r.Namespace, errs)
	}
	if errs := validation.IsDNS1123Subdomain(r.ContainerInstance); len(errs) > 0 {
		return fmt.Errorf("container instance %q: %v", r.ContainerInstance, errs)
	}
	if r.CACertificate != "" {
		block, _ := pem.Decode([]byte(r.CACertificate))
		if block == nil {
			return errors.New("caCertificate is not PEM")
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("caCertificate: %w", err)
		}
		if CAHash(c) != pin {
			return errors.New("caCertificate is not the pinned CA")
		}
	}
	_, err := checkClientCert([]byte(r.Certificate), ca, &key.PublicKey)
	return err
}

// checkClientCert parses certPEM and checks it is a client certificate for pub issued by ca.
func checkClientCert(certPEM []byte, ca *x509.Certificate, pub *ecdsa.PublicKey) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	if certPub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !certPub.Equal(pub) {
		return nil, errors.New("certificate is not for the key this host generated")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return cert, nil
}
