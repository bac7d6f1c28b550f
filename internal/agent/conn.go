package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	goruntime "runtime"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/pki"
)

// conn is the agent's connection to the control plane. The client certificate can be swapped
// while the connection is in use: new TLS connections present the current one.
type conn struct {
	cfg  Config
	ca   *x509.Certificate
	cert atomic.Pointer[tls.Certificate]

	// tls verifies droverd and presents the current certificate. It is never handed to a
	// transport, which would change it on first use: connections outside transport (the tunnel)
	// use copies of it.
	tls *tls.Config

	transport *http.Transport
	// http posts to the registration endpoints with the instance's identity.
	http *http.Client
	// client reads and writes API objects. It knows only the kinds the agent uses and needs no
	// discovery, which instance identities may not read.
	client client.WithWatch
}

// scheme holds the kinds the agent reads and writes.
var scheme = runtime.NewScheme()

func init() {
	for _, add := range []func(*runtime.Scheme) error{ecsv1alpha1.AddToScheme, coordinationv1.AddToScheme, corev1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
}

// restMapper maps the agent's kinds without asking the server.
func restMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(ecsv1alpha1.GroupVersion.WithKind("ContainerInstance"), meta.RESTScopeNamespace)
	m.Add(ecsv1alpha1.GroupVersion.WithKind("Task"), meta.RESTScopeNamespace)
	m.Add(coordinationv1.SchemeGroupVersion.WithKind("Lease"), meta.RESTScopeNamespace)
	m.Add(corev1.SchemeGroupVersion.WithKind("Event"), meta.RESTScopeNamespace)
	return m
}

func newConn(id *Identity, agentVersion string) (*conn, error) {
	cert, err := keyPair(id.CertPEM, id.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading the client certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(id.CAPEM) {
		return nil, errors.New("loading the CA: no PEM certificate")
	}
	ca, err := pki.ParseCertificate(id.CAPEM)
	if err != nil {
		return nil, fmt.Errorf("loading the CA: %w", err)
	}
	c := &conn{cfg: id.Config, ca: ca}
	c.cert.Store(cert)
	c.tls = &tls.Config{
		RootCAs:    pool,
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return c.cert.Load(), nil
		},
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	c.transport = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       c.tls.Clone(),
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		// Pings notice a connection that died silently (a NAT forgetting it, a host suspended),
		// so that a watch on it does not hang.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}
	c.http = &http.Client{
		Transport:     c.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	rc := &rest.Config{
		Host:      id.Server,
		Transport: c.transport,
		UserAgent: fmt.Sprintf("drover-agent/%s (%s/%s)", agentVersion, goruntime.GOOS, goruntime.GOARCH),
		QPS:       20,
		Burst:     40,
	}
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, err
	}
	c.client, err = client.NewWithWatch(rc, client.Options{Scheme: scheme, Mapper: restMapper(), HTTPClient: hc})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// setCert makes new connections present cert, and closes idle ones that present the old one.
func (c *conn) setCert(cert *tls.Certificate) {
	c.cert.Store(cert)
	c.transport.CloseIdleConnections()
}

func (c *conn) close() { c.transport.CloseIdleConnections() }

// keyPair loads a certificate and key, with the parsed certificate in Leaf.
func keyPair(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &pair, nil
}
