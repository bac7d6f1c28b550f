package apiserver

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	extensionsapiserver "k8s.io/apiextensions-apiserver/pkg/apiserver"
	crdoptions "k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	extensionsopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/admission"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
	"k8s.io/apiserver/pkg/util/openapi"
	restclient "k8s.io/client-go/rest"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/kube-openapi/pkg/common"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	droveradmission "github.com/drover-dev/drover/internal/apiserver/admission"
	"github.com/drover-dev/drover/internal/apiserver/auth"
	"github.com/drover-dev/drover/internal/apiserver/builtin"
	builtinopenapi "github.com/drover-dev/drover/internal/apiserver/openapi"
	"github.com/drover-dev/drover/internal/apiserver/tunnel"
	"github.com/drover-dev/drover/internal/etcd"
	"github.com/drover-dev/drover/internal/identity"
	"github.com/drover-dev/drover/internal/liveness"
	"github.com/drover-dev/drover/internal/registration"
	"github.com/drover-dev/drover/internal/tunnel/wire"
	"github.com/drover-dev/drover/internal/version"
)

// MaxRequestBodyBytes is the largest request body droverd accepts. It matches etcd's largest value
// (1.5 MiB), so an oversized object is refused with 413 before it reaches storage.
const MaxRequestBodyBytes = 3 << 19

// Config is what a droverd API server needs to start.
type Config struct {
	// DataDir holds the PKI, the admin kubeconfig and the embedded etcd's data.
	DataDir string
	// BindAddress and SecurePort are where the API is served over TLS.
	BindAddress net.IP
	SecurePort  int
	// TLSSANs are extra DNS names or IPs the serving certificate covers (localhost, 127.0.0.1,
	// ::1 and the host name are always included).
	TLSSANs []string
	// EtcdServers lists external etcd endpoints; empty means run etcd embedded.
	EtcdServers                           []string
	EtcdCAFile, EtcdCertFile, EtcdKeyFile string
	// EtcdPrefix is the key prefix of every object droverd stores.
	EtcdPrefix string
	// EtcdClientPort and EtcdPeerPort are the embedded etcd's ports; EtcdHTTPPort, when set,
	// serves its HTTP endpoints apart from gRPC.
	EtcdClientPort, EtcdPeerPort, EtcdHTTPPort int
	// EnableProfiling serves /debug/pprof to admins.
	EnableProfiling bool
	// MaxRequestsInFlight and MaxMutatingRequestsInFlight bound the requests served at once; 0
	// keeps the API server library's defaults (400 and 200).
	MaxRequestsInFlight, MaxMutatingRequestsInFlight int
	// InstanceCertValidity is the lifetime of the certificates issued to container instances.
	InstanceCertValidity time.Duration
	// PostStart, if set, runs once the server is serving with a privileged loopback client.
	PostStart []NamedHook
	// Renewals, when active, holds container instances' heartbeat renewals that the Lease storage
	// keeps in memory instead of writing (see package liveness). Nil writes every renewal.
	Renewals *liveness.Renewals
}

// NamedHook is a post-start hook; it gates /readyz until it returns. PreShutdown, if set, runs
// when droverd begins to shut down, while the API is still served, so that what Fn started can
// stop cleanly (a leader releasing its lease, for one); the API stops only once it returns.
type NamedHook struct {
	Name        string
	Fn          genericapiserver.PostStartHookFunc
	PreShutdown genericapiserver.PreShutdownHookFunc
}

// Server is a configured droverd API server, ready to Run.
type Server struct {
	cfg     Config
	generic *genericapiserver.GenericAPIServer
	etcd    *etcd.Server
	authz   *auth.Authorizer
	// AdminKubeconfig is the path of the admin kubeconfig written at start.
	AdminKubeconfig string
	// URL is the https URL the server is reachable at on loopback.
	URL string
}

// New prepares PKI and storage (starting embedded etcd when no external one is given) and builds
// the API server. Call Run to serve.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.EtcdPrefix == "" {
		cfg.EtcdPrefix = "/drover"
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	sans, ips := servingNames(cfg)
	c, err := ensureCerts(cfg.DataDir, sans, ips)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, URL: "https://" + net.JoinHostPort(loopbackHost(cfg.BindAddress), strconv.Itoa(cfg.SecurePort))}

	etcdServers, etcdCA, etcdCert, etcdKey := cfg.EtcdServers, cfg.EtcdCAFile, cfg.EtcdCertFile, cfg.EtcdKeyFile
	if len(etcdServers) == 0 {
		s.etcd, err = etcd.Start(ctx, etcd.Config{
			Dir: filepath.Join(cfg.DataDir, "etcd"), ClientPort: cfg.EtcdClientPort, PeerPort: cfg.EtcdPeerPort, HTTPPort: cfg.EtcdHTTPPort,
			CertFile: c.etcdServerCert, KeyFile: c.etcdKey, TrustedCAFile: c.caFile,
		})
		if err != nil {
			return nil, err
		}
		etcdServers, etcdCA, etcdCert, etcdKey = []string{s.etcd.ClientURL}, c.caFile, c.etcdClientCert, c.etcdCKey
	}
	if s.AdminKubeconfig, err = writeAdminKubeconfig(cfg.DataDir, s.URL); err != nil {
		s.closeEtcd()
		return nil, fmt.Errorf("writing admin kubeconfig: %w", err)
	}
	s.generic, err = s.build(c, etcdServers, etcdCA, etcdCert, etcdKey)
	if err != nil {
		s.closeEtcd()
		return nil, err
	}
	return s, nil
}

func (s *Server) build(c *certs, etcdServers []string, etcdCA, etcdCert, etcdKey string) (*genericapiserver.GenericAPIServer, error) {
	cfg := s.cfg
	opts := crdoptions.NewCustomResourceDefinitionsServerOptions(os.Stdout, os.Stderr)
	ro := opts.RecommendedOptions
	ro.Etcd.StorageConfig.Prefix = cfg.EtcdPrefix
	ro.Etcd.StorageConfig.Transport.ServerList = etcdServers
	ro.Etcd.StorageConfig.Transport.TrustedCAFile = etcdCA
	ro.Etcd.StorageConfig.Transport.CertFile = etcdCert
	ro.Etcd.StorageConfig.Transport.KeyFile = etcdKey
	ro.SecureServing.BindAddress = cfg.BindAddress
	ro.SecureServing.BindPort = cfg.SecurePort
	ro.SecureServing.ServerCert.CertKey.CertFile = c.servingCert
	ro.SecureServing.ServerCert.CertKey.KeyFile = c.servingKey
	// droverd authenticates and authorizes by itself; there is no kube-apiserver to delegate to.
	ro.Authentication = nil
	ro.Authorization = nil
	ro.CoreAPI = nil
	ro.Admission = nil
	ro.Features.EnablePriorityAndFairness = false
	ro.Features.EnableProfiling = cfg.EnableProfiling
	opts.ServerRunOptions.MaxRequestBodyBytes = MaxRequestBodyBytes
	if cfg.MaxRequestsInFlight > 0 {
		opts.ServerRunOptions.MaxRequestsInFlight = cfg.MaxRequestsInFlight
	}
	if cfg.MaxMutatingRequestsInFlight > 0 {
		opts.ServerRunOptions.MaxMutatingRequestsInFlight = cfg.MaxMutatingRequestsInFlight
	}
	if err := opts.ServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	if err := opts.Complete(); err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}

	// Build the config the way apiextensions-apiserver does, minus what needs a kube-apiserver.
	serverConfig := genericapiserver.NewRecommendedConfig(extensionsapiserver.Codecs)
	if err := opts.ServerRunOptions.ApplyTo(&serverConfig.Config); err != nil {
		return nil, err
	}
	if err := ro.ApplyTo(serverConfig); err != nil {
		return nil, err
	}
	if err := opts.APIEnablement.ApplyTo(&serverConfig.Config, extensionsapiserver.DefaultAPIResourceConfigSource(), extensionsapiserver.Scheme); err != nil {
		return nil, err
	}
	serverConfig.EffectiveVersion = version.WithDroverInfo(serverConfig.EffectiveVersion)
	// On SIGTERM, drain the requests in flight, answer new ones with 429 and Retry-After, and then
	// close within 2 s. Without this, every open watch (each agent keeps one) holds the shutdown
	// for the whole request timeout.
	serverConfig.ShutdownSendRetryAfter = true
	clientCA, err := dynamiccertificates.NewStaticCAContent("drover-client-ca", c.ca.CertPEM)
	if err != nil {
		return nil, err
	}
	serverConfig.SecureServing.ClientCA = clientCA
	pool := x509.NewCertPool()
	pool.AddCert(c.ca.Cert)
	serverConfig.Authentication.Authenticator = auth.NewAuthenticator(pool)
	s.authz = &auth.Authorizer{}
	serverConfig.Authorization.Authorizer = s.authz
	serverConfig.EnableMetrics = false // served below, together with the controllers' metrics
	// Tunnels and followed logs last as long as their clients want: no request timeout, and no
	// in-flight slot held. Heartbeats hold no in-flight slot either (see isRenewal).
	longRunning := genericfilters.BasicLongRunningRequestCheck(
		sets.NewString("watch"), sets.NewString(wire.TunnelSubresource, wire.LogSubresource))
	serverConfig.LongRunningFunc = func(r *http.Request, info *request.RequestInfo) bool {
		return longRunning(r, info) || isRenewal(r, info)
	}

	// Hosts register without credentials, so registration is served in front of authentication;
	// it bounds its own bodies, time and failed attempts.
	reg := registration.New(registration.Options{CA: c.ca, CertValidity: cfg.InstanceCertValidity, ServerURL: s.URL})
	public := map[string]http.Handler{registration.RegisterPath: reg.RegisterHandler(), registration.CAPath: reg.CAHandler()}
	// The tunnels agents open and the task logs that travel over them are served inside the
	// chain, after authentication and authorization, which see them as the subresources
	// containerinstances/tunnel and tasks/log.
	tunnels, err := tunnel.New()
	if err != nil {
		return nil, err
	}
	builtinGetter := builtinRESTOptionsGetter(*ro.Etcd, serverConfig)
	leases, err := builtin.NewLeaseStore(builtinGetter, s.cfg.Renewals)
	if err != nil {
		return nil, err
	}
	serverConfig.BuildHandlerChainFunc = func(apiHandler http.Handler, c *genericapiserver.Config) http.Handler {
		// Lease renewals kept in memory are answered inside the chain too (see ServeRenewals).
		chain := genericapiserver.DefaultBuildHandlerChain(tunnels.Wrap(leases.ServeRenewals(apiHandler)), c)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h, ok := public[r.URL.Path]; ok {
				h.ServeHTTP(w, r)
				return
			}
			chain.ServeHTTP(w, r)
		})
	}

	namer := openapinamer.NewDefinitionNamer(extensionsapiserver.Scheme, builtin.Scheme)
	defs := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(mergeDefinitions(extensionsopenapi.GetOpenAPIDefinitions, builtinopenapi.GetOpenAPIDefinitions))
	serverConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(defs, namer)
	serverConfig.OpenAPIConfig.Info.Title = "Drover"
	serverConfig.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(defs, namer)
	serverConfig.OpenAPIV3Config.Info.Title = "Drover"

	namespaces, err := builtin.NewNamespaceREST(builtinGetter)
	if err != nil {
		return nil, err
	}
	resolution := &droveradmission.TaskResolution{}
	serverConfig.AdmissionControl = admission.NewChainHandler(
		&droveradmission.NamespaceLifecycle{Namespaces: namespaces},
		resolution,
		droveradmission.PlacementExpressions{},
		droveradmission.InstanceRestriction{},
	)

	extConfig := &extensionsapiserver.Config{
		GenericConfig: serverConfig,
		ExtraConfig: extensionsapiserver.ExtraConfig{
			CRDRESTOptionsGetter: indexedTasks{crdoptions.NewCRDRESTOptionsGetter(*ro.Etcd, serverConfig.ResourceTransformers, serverConfig.StorageObjectCountTracker)},
			ServiceResolver:      noServices{},
			AuthResolverWrapper:  identityAuthResolverWrapper,
			MasterCount:          1,
		},
	}
	completed := extConfig.Complete()
	// apiextensions-apiserver expects kube-apiserver's aggregator to serve discovery; droverd serves it itself.
	completed.GenericConfig.EnableDiscovery = true
	ext, err := completed.New(genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, err
	}
	g := ext.GenericAPIServer
	if err := installBuiltins(g, builtinGetter, namespaces, leases, s.authz); err != nil {
		return nil, err
	}
	registerAPIMetrics()
	gatherers := firstWins{legacyregistry.DefaultGatherer, crmetrics.Registry}
	g.Handler.NonGoRestfulMux.Handle("/metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{}))
	g.Handler.NonGoRestfulMux.Handle(registration.RenewPath, reg.RenewHandler())
	g.AddPostStartHookOrDie("drover-registration", func(hc genericapiserver.PostStartHookContext) error {
		return reg.Start(hc.Context, hc.LoopbackClientConfig)
	})

	g.AddPostStartHookOrDie("drover-bootstrap", bootstrapHook)
	g.AddPostStartHookOrDie("drover-namespace-controller", namespaceControllerHook)
	g.AddPostStartHookOrDie("drover-instance-identities", instanceIdentitiesHook(s.authz))
	g.AddPostStartHookOrDie("drover-tunnels", tunnelsHook(tunnels))
	g.AddPostStartHookOrDie("drover-task-resolution", taskResolutionHook(resolution))
	for _, h := range cfg.PostStart {
		if err := g.AddPostStartHook(h.Name, h.Fn); err != nil {
			return nil, err
		}
		if h.PreShutdown != nil {
			if err := g.AddPreShutdownHook(h.Name, h.PreShutdown); err != nil {
				return nil, err
			}
		}
	}
	return g, nil
}

func installBuiltins(g *genericapiserver.GenericAPIServer, getter generic.RESTOptionsGetter, namespaces *builtin.NamespaceREST, leases *builtin.LeaseStore, authz *auth.Authorizer) error {
	events, err := builtin.NewEventStore(getter)
	if err != nil {
		return err
	}
	core := genericapiserver.NewDefaultAPIGroupInfo(corev1.GroupName, builtin.Scheme, metav1.ParameterCodec, builtin.Codecs)
	coreStorage := namespaces.Storage()
	coreStorage["events"] = events
	core.VersionedResourcesStorageMap["v1"] = coreStorage
	if err := g.InstallLegacyAPIGroup(genericapiserver.DefaultLegacyAPIPrefix, &core); err != nil {
		return fmt.Errorf("installing core/v1: %w", err)
	}
	groups := []struct {
		group, version string
		storage        map[string]rest.Storage
	}{
		{coordinationv1.GroupName, "v1", map[string]rest.Storage{"leases": leases}},
		{authenticationv1.GroupName, "v1", map[string]rest.Storage{"selfsubjectreviews": &builtin.SelfSubjectReviewREST{}}},
		{authorizationv1.GroupName, "v1", map[string]rest.Storage{
			"selfsubjectaccessreviews": &builtin.SelfSubjectAccessReviewREST{Authorizer: authz},
			"selfsubjectrulesreviews":  &builtin.SelfSubjectRulesReviewREST{Resolver: authz},
		}},
	}
	for _, gr := range groups {
		info := genericapiserver.NewDefaultAPIGroupInfo(gr.group, builtin.Scheme, metav1.ParameterCodec, builtin.Codecs)
		info.VersionedResourcesStorageMap[gr.version] = gr.storage
		if err := g.InstallAPIGroup(&info); err != nil {
			return fmt.Errorf("installing %s/%s: %w", gr.group, gr.version, err)
		}
	}
	return nil
}

// Run serves until ctx ends, then shuts down gracefully and stops embedded etcd.
func (s *Server) Run(ctx context.Context) error {
	defer s.closeEtcd()
	errCh := make(chan error, 1)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { errCh <- s.generic.PrepareRun().RunWithContext(runCtx) }()
	var etcdErr <-chan error
	if s.etcd != nil {
		etcdErr = s.etcd.Err()
	}
	select {
	case err := <-errCh:
		return err
	case err := <-etcdErr:
		cancel()
		<-errCh
		if err == nil {
			err = errors.New("embedded etcd stopped")
		}
		return fmt.Errorf("embedded etcd: %w", err)
	}
}

// LoopbackClientConfig is a privileged client config for in-process clients.
func (s *Server) LoopbackClientConfig() *restclient.Config { return s.generic.LoopbackClientConfig }

func (s *Server) closeEtcd() {
	if s.etcd != nil {
		s.etcd.Close()
	}
}

func servingNames(cfg Config) ([]string, []net.IP) {
	sans := []string{"localhost"}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if h, err := os.Hostname(); err == nil && h != "" {
		sans = append(sans, h)
	}
	if cfg.BindAddress != nil && !cfg.BindAddress.IsUnspecified() && !cfg.BindAddress.IsLoopback() {
		ips = append(ips, cfg.BindAddress)
	}
	for _, n := range cfg.TLSSANs {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			sans = append(sans, n)
		}
	}
	return sans, ips
}

func loopbackHost(bind net.IP) string {
	if bind == nil || bind.IsUnspecified() {
		return "127.0.0.1"
	}
	return bind.String()
}

func mergeDefinitions(fns ...common.GetOpenAPIDefinitions) common.GetOpenAPIDefinitions {
	return func(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
		out := map[string]common.OpenAPIDefinition{}
		for _, fn := range fns {
			for k, v := range fn(ref) {
				out[k] = v
			}
		}
		return out
	}
}

// isRenewal reports whether r is a container instance's update of a Lease, once r is
// authenticated; before that (the request timeout filter runs first) it is false.
//
// The in-flight limit asks this, after authentication, and lets renewals through without a slot:
// liveness is never shed, as Kubernetes' priority and fairness gives node Leases a level of their
// own. Under overload, a renewal refused with 429 came back within a second, through client-go's
// retries and then the agent's, thousands a second at 5,000 instances (2,029 a second measured),
// adding to the overload that refused them; one that goes through costs about a millisecond, and
// an instance may update only its own Lease, so at most one per instance waits at a time.
func isRenewal(r *http.Request, info *request.RequestInfo) bool {
	if info == nil || !info.IsResourceRequest || info.Verb != "update" || info.APIGroup != coordinationv1.GroupName ||
		info.Resource != "leases" || info.Subresource != "" {
		return false
	}
	u, ok := request.UserFrom(r.Context())
	if !ok {
		return false
	}
	_, ok = identity.FromUser(u.GetName(), u.GetGroups())
	return ok
}
