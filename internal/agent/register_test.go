package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/pki"
)

func TestRegisterRefusesServerWhoseCADoesNotMatch(t *testing.T) {
	f := newFakeServer(t)
	other, _, err := pki.NewCA("someone-else")
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "state")
	o := f.registerOptions(dir)
	o.CACertHash = other.Hash()

	_, err = Register(t.Context(), o)

	require.ErrorIs(t, err, ErrCAMismatch)
	assert.Contains(t, err.Error(), "not sent")
	assert.NotContains(t, err.Error(), testCode)
	assert.Zero(t, f.registrations.Load(), "the register endpoint must not be called")
	assert.NoDirExists(t, dir)
}

// A server that relays the real CA but cannot prove it holds a certificate from it gets nothing.
func TestRegisterRefusesServerThatOnlyRelaysThePinnedCA(t *testing.T) {
	real, _, err := pki.NewCA("real-ca")
	require.NoError(t, err)
	f := newFakeServer(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+caPath, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(real.CertPEM) })
	mux.HandleFunc("POST "+registerPath, func(w http.ResponseWriter, r *http.Request) {
		f.registrations.Add(1)
		f.okRegister(w, r)
	})
	f.Config.Handler = mux
	o := f.registerOptions(t.TempDir())
	o.CACertHash = real.Hash()

	_, err = Register(t.Context(), o)

	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate signed by unknown authority")
	assert.Zero(t, f.registrations.Load(), "the code is not sent over an unverified connection")
}

func TestRegisterWritesIdentity(t *testing.T) {
	f := newFakeServer(t)
	dir := filepath.Join(t.TempDir(), "state")

	cfg, err := Register(t.Context(), f.registerOptions(dir))

	require.NoError(t, err)
	assert.Equal(t, &Config{Server: f.URL, Namespace: "team-a", ContainerInstance: "host-1", Cluster: "prod"}, cfg)
	assert.Equal(t, int32(1), f.registrations.Load())
	assertMode(t, dir, 0o700|os.ModeDir)
	assertMode(t, filepath.Join(dir, keyFile), 0o600)
	for _, name := range []string{certFile, caFile, configFile} {
		assertMode(t, filepath.Join(dir, name), 0o644)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 4, "no temporary files are left behind")

	var onDisk Config
	data, err := os.ReadFile(filepath.Join(dir, configFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &onDisk))
	assert.Equal(t, *cfg, onDisk)

	id, err := stateDir(dir).load()
	require.NoError(t, err)
	assert.Equal(t, f.ca.CertPEM, id.CAPEM)
	pair, err := tls.X509KeyPair(id.CertPEM, id.KeyPEM)
	require.NoError(t, err)
	assert.Equal(t, instance.User(), pair.Leaf.Subject.CommonName)
	assert.Equal(t, elliptic.P256(), pair.PrivateKey.(*ecdsa.PrivateKey).Curve)
}

func TestRegisterKeepsAnExistingRegistrationUnlessForced(t *testing.T) {
	f := newFakeServer(t)
	dir := t.TempDir()
	o := f.registerOptions(dir)
	_, err := Register(t.Context(), o)
	require.NoError(t, err)
	first, err := os.ReadFile(filepath.Join(dir, keyFile))
	require.NoError(t, err)

	_, err = Register(t.Context(), o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--force")
	assert.Equal(t, int32(1), f.registrations.Load(), "a refused re-registration sends nothing")

	o.Force = true
	_, err = Register(t.Context(), o)
	require.NoError(t, err)
	second, err := os.ReadFile(filepath.Join(dir, keyFile))
	require.NoError(t, err)
	assert.NotEqual(t, first, second, "a new registration has a new key")
	_, err = stateDir(dir).load()
	require.NoError(t, err)
}

func TestRegisterErrors(t *testing.T) {
	refuse := func(status int, retryAfter string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			writeJSON(w, status, errorResponse{Error: "nope"})
		}
	}
	tests := []struct {
		name     string
		handler  func(f *fakeServer) http.HandlerFunc
		attempts int32
		wantErr  string // "" for success
	}{
		{name: "400 is not retried", handler: func(*fakeServer) http.HandlerFunc { return refuse(400, "") },
			attempts: 1, wantErr: "malformed"},
		{name: "403 is not retried", handler: func(*fakeServer) http.HandlerFunc { return refuse(403, "") },
			attempts: 1, wantErr: "activation id or code is wrong, or the activation has expired or reached its registration limit"},
		{name: "429 is retried, then reported", handler: func(*fakeServer) http.HandlerFunc { return refuse(429, "0") },
			attempts: 3, wantErr: "rate-limiting"},
		{name: "503 is retried, then reported", handler: func(*fakeServer) http.HandlerFunc { return refuse(503, "0") },
			attempts: 3, wantErr: "cannot register hosts yet"},
		{name: "503 then success", attempts: 3, handler: func(f *fakeServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				if f.registrations.Load() < 3 {
					refuse(503, "0")(w, r)
					return
				}
				f.okRegister(w, r)
			}
		}},
		{name: "429 then success", attempts: 2, handler: func(f *fakeServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				if f.registrations.Load() < 2 {
					refuse(429, "0")(w, r)
					return
				}
				f.okRegister(w, r)
			}
		}},
		{name: "a certificate for another key is refused", attempts: 1, wantErr: "not for the key", handler: func(f *fakeServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
				cert, _ := f.sign(w, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})))
				writeJSON(w, http.StatusOK, registerResponse{Namespace: "team-a", ContainerInstance: "host-2", Certificate: string(cert)})
			}
		}},
		{name: "a certificate from another CA is refused", attempts: 1, wantErr: "unknown authority", handler: func(f *fakeServer) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				var req registerRequest
				_ = json.NewDecoder(r.Body).Decode(&req)
				block, _ := pem.Decode([]byte(req.CSR))
				csr, _ := x509.ParseCertificateRequest(block.Bytes)
				other, _, _ := pki.NewCA("other")
				cert, _ := other.SignClientCSR(csr, instance.User(), instance.Groups(), time.Hour)
				writeJSON(w, http.StatusOK, registerResponse{Namespace: "team-a", ContainerInstance: "host-1", Certificate: string(cert)})
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.register = tt.handler(f)
			dir := t.TempDir()
			o := f.registerOptions(dir)
			o.Attempts = 3

			_, err := Register(t.Context(), o)

			assert.Equal(t, tt.attempts, f.registrations.Load(), "attempts")
			registered, rerr := Registered(dir)
			require.NoError(t, rerr)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.True(t, registered)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.NotContains(t, err.Error(), testCode)
			assert.False(t, registered)
		})
	}
}

func TestRegisterStopsWaitingWhenCancelled(t *testing.T) {
	f := newFakeServer(t)
	f.register = func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3600")
		writeJSON(w, http.StatusServiceUnavailable, errorResponse{Error: "starting"})
	}
	o := f.registerOptions(t.TempDir())
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Register(ctx, o)
	require.Error(t, err)
	var rerr *RegisterError
	require.True(t, errors.As(err, &rerr))
	assert.Equal(t, http.StatusServiceUnavailable, rerr.StatusCode)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestRegisterValidatesOptions(t *testing.T) {
	f := newFakeServer(t)
	tests := []struct {
		name    string
		mutate  func(*RegisterOptions)
		wantErr string
	}{
		{"plain http", func(o *RegisterOptions) { o.Server = "http://example.com" }, "https URL"},
		{"no hash", func(o *RegisterOptions) { o.CACertHash = "" }, "--ca-cert-hash"},
		{"short hash", func(o *RegisterOptions) { o.CACertHash = "sha256:abcd" }, "--ca-cert-hash"},
		{"id without namespace", func(o *RegisterOptions) { o.ActivationID = "edge" }, "<namespace>/<name>"},
		{"no code", func(o *RegisterOptions) { o.ActivationCode = "" }, ActivationCodeEnv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(ActivationCodeEnv, "")
			o := f.registerOptions(t.TempDir())
			tt.mutate(&o)
			_, err := Register(t.Context(), o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Zero(t, f.registrations.Load())
		})
	}
	t.Run("code from the environment", func(t *testing.T) {
		t.Setenv(ActivationCodeEnv, testCode)
		o := f.registerOptions(t.TempDir())
		o.ActivationCode = ""
		_, err := Register(t.Context(), o)
		require.NoError(t, err)
	})
	t.Run("hash in upper case", func(t *testing.T) {
		o := f.registerOptions(t.TempDir())
		o.CACertHash = "sha256:" + strings.ToUpper(o.CACertHash[len("sha256:"):])
		_, err := Register(t.Context(), o)
		require.NoError(t, err)
	})
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 2 * time.Second},
		{"garbage", 2 * time.Second},
		{"0", 0},
		{"7", 7 * time.Second},
		{"3600", time.Minute},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, retryAfter(tt.header, now, 2*time.Second, time.Minute), "Retry-After: %q", tt.header)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, want, fi.Mode(), path)
}
