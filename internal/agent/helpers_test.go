package agent

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/identity"
	"github.com/drover-dev/drover/internal/pki"
)

// testCode is the activation code the tests send; no output may contain it.
const testCode = "s3cret-activation-code-0123456789"

// fakeServer is droverd's registration endpoints over TLS with a certificate from its own CA.
type fakeServer struct {
	*httptest.Server
	ca *pki.CA
	// registrations counts requests to the register endpoint, renewals to the renew endpoint.
	registrations, renewals atomic.Int32
	// register answers the register endpoint; okRegister by default.
	register http.HandlerFunc
	// renew answers the renew endpoint; okRenew by default.
	renew http.HandlerFunc
	// validity of the certificates it signs.
	validity time.Duration
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	ca, _, err := pki.NewCA("fake-droverd-ca")
	require.NoError(t, err)
	serving, err := ca.IssueServing("localhost", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour)
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(serving.CertPEM, serving.KeyPEM)
	require.NoError(t, err)
	f := &fakeServer{ca: ca, validity: time.Hour}
	f.register = f.okRegister
	f.renew = f.okRenew
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+caPath, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(ca.CertPEM) })
	mux.HandleFunc("POST "+registerPath, func(w http.ResponseWriter, r *http.Request) {
		f.registrations.Add(1)
		f.register(w, r)
	})
	mux.HandleFunc("POST "+renewPath, func(w http.ResponseWriter, r *http.Request) {
		f.renewals.Add(1)
		f.renew(w, r)
	})
	f.Server = httptest.NewUnstartedServer(mux)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	f.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	f.StartTLS()
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) hash() string { return f.ca.Hash() }

// instance is the identity the fake server gives every host.
var instance = identity.Instance{Namespace: "team-a", Name: "host-1", UID: "uid-1"}

func (f *fakeServer) okRegister(w http.ResponseWriter, r *http.Request) {
	var req registerRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ActivationID != "team-a/edge" || req.ActivationCode != testCode || req.Hostname == "" {
		writeJSON(w, http.StatusForbidden, errorResponse{Error: "registration refused"})
		return
	}
	cert, ok := f.sign(w, req.CSR)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, registerResponse{Namespace: instance.Namespace, ContainerInstance: instance.Name, Cluster: "prod",
		Certificate: string(cert), CACertificate: string(f.ca.CertPEM)})
}

func (f *fakeServer) okRenew(w http.ResponseWriter, r *http.Request) {
	if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != instance.User() {
		writeJSON(w, http.StatusUnauthorized, errorResponse{Error: "unauthorized"})
		return
	}
	var req renewRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: err.Error()})
		return
	}
	if cert, ok := f.sign(w, req.CSR); ok {
		writeJSON(w, http.StatusOK, renewResponse{Certificate: string(cert)})
	}
}

func (f *fakeServer) sign(w http.ResponseWriter, csrPEM string) ([]byte, bool) {
	block, _ := pem.Decode([]byte(csrPEM))
	if block == nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "csr is not PEM"})
		return nil, false
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: err.Error()})
		return nil, false
	}
	cert, err := f.ca.SignClientCSR(csr, instance.User(), instance.Groups(), f.validity)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: err.Error()})
		return nil, false
	}
	return cert, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeServer) registerOptions(stateDir string) RegisterOptions {
	o := NewRegisterOptions()
	o.Server = f.URL
	o.CACertHash = f.hash()
	o.ActivationID = "team-a/edge"
	o.ActivationCode = testCode
	o.StateDir = stateDir
	o.Hostname = "edge-box-1"
	o.RequestTimeout = 10 * time.Second
	return *o
}
