package integration

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/drover-dev/drover/test/framework"
)

// TestEmbeddedEtcdServesGRPCAndHTTPOnSeparatePorts: droverd's embedded etcd answers its HTTP
// endpoints on --etcd-http-port, and its client port serves gRPC alone (gRPC's own transport,
// which served through net/http is far slower), while droverd works on it.
func TestEmbeddedEtcdServesGRPCAndHTTPOnSeparatePorts(t *testing.T) {
	s := framework.Start(t, framework.WithoutControllers())
	pki := filepath.Join(s.DataDir, "pki")
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "etcd-client.crt"), filepath.Join(pki, "etcd-client.key"))
	require.NoError(t, err)
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}

	resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/health", s.Options.EtcdHTTPPort))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Contains(t, string(body), `"health":"true"`)

	resp, err = hc.Get(fmt.Sprintf("https://127.0.0.1:%d/health", s.Options.EtcdClientPort))
	if err == nil {
		resp.Body.Close()
		require.NotEqual(t, http.StatusOK, resp.StatusCode, "the client port serves gRPC only")
	}

	// droverd stores through the gRPC port.
	require.NoError(t, s.Client.List(t.Context(), &coordinationv1.LeaseList{}))
}
