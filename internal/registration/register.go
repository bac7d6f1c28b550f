package registration

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/identity"
	"github.com/drover-dev/drover/internal/registration/wire"
)

// HashCode returns what an Activation stores instead of its code (spec.codeHash).
func HashCode(code string) string { return wire.HashCode(code) }

// NewCode returns a new high-entropy activation code.
func NewCode() (string, error) { return wire.NewCode() }

const (
	// msgRefused is the only answer a refused registration gets: it never says which part was wrong.
	msgRefused = "registration refused: the activation id or code is wrong, expired, or has no registrations left"
	// msgInternal answers a registration that failed on the server's side.
	msgInternal = "registration failed on the server; nothing was registered, try again later"
	// msgUnavailable answers while the API is not (yet) serving what registration needs.
	msgUnavailable = "the control plane is not ready to register hosts; try again shortly"

	maxCodeLength     = 256
	maxHostnameLength = 253
	// claimAttempts bounds the optimistic-concurrency retries of claiming a registration.
	claimAttempts = 100
	// nameAttempts bounds the retries when a generated instance name is taken.
	nameAttempts = 5
)

// refusal says, for the log and the Activation's Event, why a registration was refused. The
// caller is only ever told msgRefused.
type refusal string

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.now()
	source := sourceKey(r.RemoteAddr)
	if d := s.fails.blocked(source, now); d > 0 {
		tooMany(w, d)
		return
	}
	var req wire.RegisterRequest
	if !decode(w, r, "malformed registration request", &req) {
		s.fails.fail(source, now)
		return
	}
	req.ActivationCode = strings.TrimSpace(req.ActivationCode)
	req.Hostname = strings.TrimSpace(req.Hostname)
	key, csr, err := validateRegisterRequest(&req)
	if err != nil {
		s.fails.fail(source, now)
		writeError(w, http.StatusBadRequest, "malformed registration request: "+err.Error())
		return
	}
	actKey := activationKey(req.ActivationID)
	if d := s.fails.blocked(actKey, now); d > 0 {
		tooMany(w, d)
		return
	}
	log := klog.FromContext(ctx).WithValues("activation", req.ActivationID, "source", r.RemoteAddr, "hostname", req.Hostname)

	act, why, err := s.claim(ctx, key, req.ActivationCode)
	if err != nil {
		s.failed(w, log, err)
		return
	}
	if why != "" {
		s.fails.fail(source, now)
		if act != nil {
			// Only existing activations get a bucket, so made-up ids cannot fill the table.
			s.fails.fail(actKey, now)
			s.recordRefusal(ctx, log, act, req.Hostname, r.RemoteAddr, why)
		}
		log.Info("Registration refused", "reason", string(why))
		writeError(w, http.StatusForbidden, msgRefused)
		return
	}

	resp, err := s.admit(ctx, act, &req, csr)
	if err != nil {
		s.release(ctx, log, key)
		s.failed(w, log, err)
		return
	}
	log.Info("Container instance registered", "containerInstance", klog.KRef(resp.Namespace, resp.ContainerInstance), "cluster", resp.Cluster)
	writeJSON(w, http.StatusOK, resp)
}

// validateRegisterRequest checks a request's shape and returns the activation's key and the CSR.
func validateRegisterRequest(req *wire.RegisterRequest) (types.NamespacedName, *x509.CertificateRequest, error) {
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"activationId", req.ActivationID}, {"activationCode", req.ActivationCode}, {"hostname", req.Hostname}, {"csr", req.CSR},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return types.NamespacedName{}, nil, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	ns, name, ok := strings.Cut(req.ActivationID, "/")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return types.NamespacedName{}, nil, errors.New("activationId must be <namespace>/<name>, as drover activation create prints it")
	}
	if len(req.ActivationCode) > maxCodeLength {
		return types.NamespacedName{}, nil, fmt.Errorf("activationCode is longer than %d characters", maxCodeLength)
	}
	if len(req.Hostname) > maxHostnameLength {
		return types.NamespacedName{}, nil, fmt.Errorf("hostname is longer than %d characters", maxHostnameLength)
	}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		return types.NamespacedName{}, nil, err
	}
	return types.NamespacedName{Namespace: ns, Name: name}, csr, nil
}

// parseCSR parses a PEM certificate signing request and checks its signature and key.
func parseCSR(data string) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode([]byte(data))
	if block == nil || (block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST") {
		return nil, errors.New("csr is not a PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("csr does not parse: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("csr signature does not verify: %v", err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("csr has a %d-bit RSA key; use at least 2048 bits, or ECDSA P-256", k.N.BitLen())
		}
	default:
		return nil, fmt.Errorf("csr has an unsupported %T key; use ECDSA P-256", k)
	}
	return csr, nil
}

// claim checks the code, the expiry and the limit of the activation at key and, if they allow it,
// takes one registration by raising status.registrationsCount with optimistic concurrency: a
// concurrent claim makes the update conflict, and the activation is read and checked again.
// It returns the activation (nil if there is none) and, when refused, why.
func (s *Server) claim(ctx context.Context, key types.NamespacedName, code string) (*ecsv1alpha1.Activation, refusal, error) {
	hash := []byte(HashCode(code))
	s.activations.LockKey(key.String())
	defer func() { _ = s.activations.UnlockKey(key.String()) }()
	for range claimAttempts {
		act := &ecsv1alpha1.Activation{}
		if err := s.client.Get(ctx, key, act); apierrors.IsNotFound(err) {
			return nil, "the activation does not exist", nil
		} else if err != nil {
			return nil, "", err
		}
		if why := s.check(act, hash); why != "" {
			return act, why, nil
		}
		act.Status.RegistrationsCount++
		err := s.client.Status().Update(ctx, act)
		if err == nil {
			return act, "", nil
		}
		if !apierrors.IsConflict(err) {
			return nil, "", err
		}
	}
	return nil, "", errors.New("the activation changed too often while claiming a registration")
}

// check returns why the activation refuses a registration with a code of the given hash, or "".
func (s *Server) check(act *ecsv1alpha1.Activation, hash []byte) refusal {
	codeOK := subtle.ConstantTimeCompare(hash, []byte(act.Spec.CodeHash)) == 1
	switch {
	case !codeOK:
		return "the activation code is wrong"
	case act.DeletionTimestamp != nil:
		return "the activation is being deleted"
	case act.Status.Expired || !s.now().Before(act.Spec.ExpiresAt.Time):
		return refusal("the activation expired at " + act.Spec.ExpiresAt.UTC().Format(time.RFC3339))
	case act.Status.RegistrationsCount >= limitOf(act):
		return refusal(fmt.Sprintf("all %d registrations of the activation are used", limitOf(act)))
	}
	return ""
}

// limitOf is the activation's registration limit, 1 when unset.
func limitOf(act *ecsv1alpha1.Activation) int32 {
	if act.Spec.RegistrationLimit < 1 {
		return 1
	}
	return act.Spec.RegistrationLimit
}

// admit creates the instance and its Lease and signs its certificate, for a claimed registration.
// On error it removes what it created.
func (s *Server) admit(ctx context.Context, act *ecsv1alpha1.Activation, req *wire.RegisterRequest, csr *x509.CertificateRequest) (*wire.RegisterResponse, error) {
	ci, err := s.createInstance(ctx, act, req.Hostname)
	if err != nil {
		return nil, err
	}
	in := identity.Instance{Namespace: ci.Namespace, Name: ci.Name, UID: string(ci.UID)}
	cert, err := s.opts.CA.SignClientCSR(csr, in.User(), in.Groups(), s.opts.CertValidity)
	if err != nil {
		s.deleteInstance(ctx, ci, true)
		return nil, fmt.Errorf("signing the instance certificate: %w", err)
	}
	// The agent reports the rest of the status; when and as what the host registered is known only here.
	now := metav1.NewTime(s.now())
	before := ci.DeepCopy()
	ci.Status.RegisteredAt = &now
	ci.Status.Hostname = req.Hostname
	// A merge patch of just these fields: the containerinstance controller writes the same status.
	if err := s.client.Status().Patch(ctx, ci, client.MergeFrom(before)); err != nil {
		klog.FromContext(ctx).Error(err, "Recording the registration time on the container instance", "containerInstance", klog.KObj(ci))
	}
	return &wire.RegisterResponse{
		Namespace: ci.Namespace, ContainerInstance: ci.Name, Cluster: ci.Spec.Cluster,
		Certificate: string(cert), CACertificate: string(s.opts.CA.CertPEM), Server: s.opts.ServerURL,
	}, nil
}

// createInstance creates the ContainerInstance and its heartbeat Lease under a new name.
func (s *Server) createInstance(ctx context.Context, act *ecsv1alpha1.Activation, hostname string) (*ecsv1alpha1.ContainerInstance, error) {
	for range nameAttempts {
		ci := &ecsv1alpha1.ContainerInstance{
			ObjectMeta: metav1.ObjectMeta{Name: instanceName(hostname), Namespace: act.Namespace},
			Spec: ecsv1alpha1.ContainerInstanceSpec{
				Cluster:    act.Spec.Cluster,
				Activation: act.Name,
				Attributes: append([]ecsv1alpha1.Attribute(nil), act.Spec.Attributes...),
			},
		}
		if err := s.client.Create(ctx, ci); apierrors.IsAlreadyExists(err) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("creating the container instance: %w", err)
		}
		lease := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name: ci.Name, Namespace: ci.Namespace,
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: ecsv1alpha1.GroupVersion.String(), Kind: "ContainerInstance", Name: ci.Name, UID: ci.UID,
					Controller: ptr.To(true),
				}},
			},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(ci.Name), LeaseDurationSeconds: ptr.To[int32](leaseDurationSeconds)},
		}
		err := s.client.Create(ctx, lease)
		if err == nil {
			return ci, nil
		}
		s.deleteInstance(ctx, ci, false)
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating the heartbeat lease: %w", err)
		}
	}
	return nil, errors.New("no free container instance name after several attempts")
}

// deleteInstance removes a ContainerInstance this registration created, and its Lease if it created
// that too, after a later step failed.
func (s *Server) deleteInstance(ctx context.Context, ci *ecsv1alpha1.ContainerInstance, withLease bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	log := klog.FromContext(ctx).WithValues("containerInstance", klog.KObj(ci))
	if withLease {
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: ci.Name, Namespace: ci.Namespace}}
		if err := s.client.Delete(ctx, lease); err != nil && !apierrors.IsNotFound(err) {
			log.Error(err, "Removing the lease of a partly registered container instance")
		}
	}
	if err := s.client.Delete(ctx, ci, client.Preconditions{UID: &ci.UID}); err != nil && !apierrors.IsNotFound(err) {
		log.Error(err, "Removing a partly registered container instance")
	}
}

// release gives back a registration claimed for a registration that then failed.
func (s *Server) release(ctx context.Context, log klog.Logger, key types.NamespacedName) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	s.activations.LockKey(key.String())
	defer func() { _ = s.activations.UnlockKey(key.String()) }()
	for range claimAttempts {
		act := &ecsv1alpha1.Activation{}
		if err := s.client.Get(ctx, key, act); err != nil {
			if !apierrors.IsNotFound(err) {
				log.Error(err, "Giving back the registration of a failed registration")
			}
			return
		}
		if act.Status.RegistrationsCount == 0 {
			return
		}
		act.Status.RegistrationsCount--
		err := s.client.Status().Update(ctx, act)
		if err == nil || !apierrors.IsConflict(err) {
			if err != nil {
				log.Error(err, "Giving back the registration of a failed registration")
			}
			return
		}
	}
}

// failed answers a registration or renewal that failed on the server's side.
func (s *Server) failed(w http.ResponseWriter, log klog.Logger, err error) {
	if unavailable(err) {
		log.V(2).Info("Request failed while the API is unavailable", "err", err)
		retryAfter(w, 2*time.Second)
		writeError(w, http.StatusServiceUnavailable, msgUnavailable)
		return
	}
	log.Error(err, "Request failed")
	writeError(w, http.StatusInternalServerError, msgInternal)
}

// unavailable reports errors that pass: the CRDs not served yet, timeouts, throttling.
func unavailable(err error) bool {
	return meta.IsNoMatchError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

func tooMany(w http.ResponseWriter, d time.Duration) {
	retryAfter(w, d)
	writeError(w, http.StatusTooManyRequests, "too many failed registration attempts; try again later")
}
