package hollow

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// scheme holds the kinds a hollow instance reads and writes; codecs is shared by every instance.
var (
	scheme = runtime.NewScheme()
	codecs serializer.CodecFactory
)

func init() {
	for _, add := range []func(*runtime.Scheme) error{ecsv1alpha1.AddToScheme, coordinationv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	codecs = serializer.NewCodecFactory(scheme)
}

// conn is one instance's connection to droverd: a transport of its own, presenting the instance's
// certificate (so one TLS connection, HTTP/2, per instance), and REST clients for Drover's group
// and for Leases over it. They need no discovery, which instance identities may not read.
type conn struct {
	transport *http.Transport
	ecs       *rest.RESTClient
	leases    *rest.RESTClient
}

// newConn builds the client drover-agent builds: its transport settings, its user agent's form and
// its client-side rate limit (20 requests/s, bursts of 40).
func newConn(server string, ca *x509.CertPool, cert tls.Certificate, onRequest func(verb, resource string, took time.Duration, code int)) (*conn, error) {
	tr := &http.Transport{
		DialContext: (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig: &tls.Config{
			RootCAs: ca, MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
		},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		HTTP2:                 &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}
	base := rest.Config{
		Host: server, Transport: tr, UserAgent: "drover-agent/hollow",
		// One rate limit for both clients, as drover-agent's one client has.
		RateLimiter:   flowcontrol.NewTokenBucketRateLimiter(20, 40),
		ContentConfig: rest.ContentConfig{NegotiatedSerializer: codecs.WithoutConversion(), ContentType: runtime.ContentTypeJSON},
	}
	if onRequest != nil {
		base.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return timed{rt, onRequest} }
	}
	hc, err := rest.HTTPClientFor(&base)
	if err != nil {
		return nil, err
	}
	c := &conn{transport: tr}
	// Leases travel as protobuf and Drover's resources as JSON, as with drover-agent's
	// controller-runtime client, which uses protobuf for the built-in types.
	for _, gv := range []struct {
		dst         *(*rest.RESTClient)
		gv          schema.GroupVersion
		contentType string
	}{{&c.ecs, ecsv1alpha1.GroupVersion, runtime.ContentTypeJSON}, {&c.leases, coordinationv1.SchemeGroupVersion, runtime.ContentTypeProtobuf}} {
		cfg := base
		cfg.APIPath = "/apis"
		cfg.GroupVersion = &gv.gv
		cfg.ContentType = gv.contentType
		rc, err := rest.RESTClientForConfigAndClient(&cfg, hc)
		if err != nil {
			return nil, err
		}
		*gv.dst = rc
	}
	return c, nil
}

func (c *conn) close() { c.transport.CloseIdleConnections() }

// timed reports each request but watches, from its send to its response's headers (what the
// client waits for: the bodies are small), by verb (get, list, create, update, patch, delete) and
// resource (tasks/status for a subresource). A request that got no answer reports code 0.
type timed struct {
	rt        http.RoundTripper
	onRequest func(verb, resource string, took time.Duration, code int)
}

func (t timed) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Query().Get("watch") == "true" {
		return t.rt.RoundTrip(req)
	}
	t0 := time.Now()
	resp, err := t.rt.RoundTrip(req)
	took, code := time.Since(t0), 0
	if err == nil {
		code = resp.StatusCode
	}
	verb, resource := requestKind(req.Method, req.URL.Path)
	t.onRequest(verb, resource, took, code)
	return resp, err
}

// requestKind names a request to /apis/<group>/<version>/namespaces/<ns>/<resource>[/<name>[/<sub>]]
// as the API server's metrics do.
func requestKind(method, path string) (verb, resource string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	named := false
	if len(parts) >= 6 && parts[3] == "namespaces" {
		resource, named = parts[5], len(parts) >= 7
		if len(parts) >= 8 {
			resource += "/" + parts[7]
		}
	}
	switch method {
	case http.MethodGet:
		verb = "list"
		if named {
			verb = "get"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	default:
		verb = strings.ToLower(method)
	}
	return verb, resource
}
