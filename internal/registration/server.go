package registration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/keymutex"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/pki"
	"github.com/drover-dev/drover/internal/registration/wire"
)

// Endpoint paths; see package wire.
const (
	RegisterPath = wire.RegisterPath
	CAPath       = wire.CAPath
	RenewPath    = wire.RenewPath
)

const (
	// DefaultCertValidity is how long an instance certificate is valid unless Options say otherwise.
	// The agent renews it well before then.
	DefaultCertValidity = 30 * 24 * time.Hour

	// maxBodyBytes bounds a request body; a CSR is about 1 KiB.
	maxBodyBytes = 64 << 10
	// bodyReadTimeout bounds how long a client may take to send its body.
	bodyReadTimeout = 10 * time.Second
	// requestTimeout bounds the work of one request against the API.
	requestTimeout = 30 * time.Second
	// maxInFlight bounds the registrations and renewals handled at once; callers beyond it wait
	// up to slotWait for a slot, then get 429.
	maxInFlight = 64
	slotWait    = 5 * time.Second

	// Failed registrations are limited per source address and per activation with token buckets:
	// failBurst failures at once, then one every 60/failsPerMinute seconds.
	failsPerMinute = 5
	failBurst      = 10
	// maxLimiterKeys bounds the memory the failure buckets use.
	maxLimiterKeys = 10000

	// leaseDurationSeconds is the heartbeat Lease's duration; the agent renews it more often.
	leaseDurationSeconds = 10
	// eventComponent is the source of the Events registration records.
	eventComponent = "drover-registration"
	// ReasonRegistrationRefused is the reason of the Warning Event recorded on an Activation when a
	// registration with it is refused.
	ReasonRegistrationRefused = "RegistrationRefused"
)

// Options configure a Server.
type Options struct {
	// CA signs instance certificates.
	CA *pki.CA
	// CertValidity is an instance certificate's lifetime; DefaultCertValidity when zero.
	CertValidity time.Duration
	// ServerURL is the URL agents are told to use (may be empty).
	ServerURL string
}

// Server serves registration, certificate renewal and the CA certificate.
type Server struct {
	opts  Options
	ready atomic.Bool
	// client is set by Start, before ready.
	client client.Client
	// activations serializes the claims on each activation (keyed by namespace/name). Registrations
	// with one code all raise the same activation's count: taken concurrently, all but one update
	// conflicted and read again, about five times for each of 5,000 hosts registering eight at a
	// time. Several droverd replicas still take it with optimistic concurrency.
	activations keymutex.KeyMutex

	// fails holds the failure buckets, keyed by source address and by activation.
	fails *keyedLimiter
	// slots bounds the requests handled at once.
	slots chan struct{}
	now   func() time.Time
}

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(corev1.AddToScheme(scheme))
	utilruntime.Must(coordinationv1.AddToScheme(scheme))
	utilruntime.Must(ecsv1alpha1.AddToScheme(scheme))
}

// New returns a Server. Its register and renew handlers answer 503 until Start has run.
func New(o Options) *Server {
	if o.CertValidity <= 0 {
		o.CertValidity = DefaultCertValidity
	}
	return &Server{
		opts:  o,
		fails: newKeyedLimiter(failsPerMinute/60.0, failBurst, maxLimiterKeys),
		slots: make(chan struct{}, maxInFlight),
		// Hashed: activations that share a lock only wait for each other's short claims.
		activations: keymutex.NewHashed(64),
		now:         time.Now,
	}
}

// Start connects the server to the API with cfg, droverd's privileged loopback configuration, and
// starts answering registrations. It does not wait for the CRDs: until they are served, registrations
// are answered with 503.
func (s *Server) Start(_ context.Context, cfg *rest.Config) error {
	if s.opts.CA == nil {
		return errors.New("registration: no CA to sign instance certificates with")
	}
	cfg = rest.CopyConfig(cfg)
	// Each registration makes a handful of requests; the in-flight bound, not the client, limits them.
	cfg.QPS, cfg.Burst = 500, 1000
	cfg.UserAgent = eventComponent
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("registration: creating API client: %w", err)
	}
	s.client = c
	s.ready.Store(true)
	return nil
}

// RegisterHandler serves RegisterPath. It is for anonymous callers: it bounds the body, the time
// and the failed attempts itself.
func (s *Server) RegisterHandler() http.Handler { return s.guard(s.register) }

// RenewHandler serves RenewPath. It must be served behind authentication: the caller is the user in
// the request's context, and only container instances are answered.
func (s *Server) RenewHandler() http.Handler { return s.guard(s.renew) }

// CAHandler serves CAPath: the CA certificate, PEM.
func (s *Server) CAHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method not allowed: use GET")
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Length", strconv.Itoa(len(s.opts.CA.CertPEM)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(s.opts.CA.CertPEM)
		}
	})
}

// guard answers what every POST endpoint answers alike: the method, readiness, the in-flight bound,
// the body's size and read time, and the request's deadline.
func (s *Server) guard(h func(http.ResponseWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "method not allowed: use POST")
			return
		}
		if !s.ready.Load() {
			retryAfter(w, time.Second)
			writeError(w, http.StatusServiceUnavailable, "the control plane is starting; try again shortly")
			return
		}
		wait := time.NewTimer(slotWait)
		defer wait.Stop()
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		case <-wait.C:
			retryAfter(w, time.Second)
			writeError(w, http.StatusTooManyRequests, "too many requests at once; try again shortly")
			return
		case <-r.Context().Done():
			return
		}
		// Not every ResponseWriter can set deadlines; the body limit and the context still bound the request.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyReadTimeout))
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		h(w, r.WithContext(ctx))
	})
}

// decode reads a JSON body into v. It answers 413 or 400 itself, each message starting with
// malformed, and returns false when it did.
func decode(w http.ResponseWriter, r *http.Request, malformed string, v any) bool {
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON object")
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%s: the body is larger than %d bytes", malformed, tooLarge.Limit))
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, malformed+": the body is not a JSON object of the expected shape: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, wire.ErrorResponse{Error: msg})
}

// retryAfter sets Retry-After to d, rounded up to whole seconds, at least one.
func retryAfter(w http.ResponseWriter, d time.Duration) {
	secs := int(math.Ceil(d.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
}
