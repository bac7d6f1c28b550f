package registration_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/identity"
	"github.com/drover-dev/drover/internal/pki"
	"github.com/drover-dev/drover/internal/registration"
	"github.com/drover-dev/drover/internal/registration/wire"
	"github.com/drover-dev/drover/test/framework"
)

// wrongCode returns code with its last character changed.
func wrongCode(code string) string {
	last := "x"
	if code[len(code)-1] == 'x' {
		last = "y"
	}
	return code[:len(code)-1] + last
}

// msgRefused is what every refused registration is told.
// failBurst is how many failed attempts a source or activation gets before it is rate limited.
const failBurst = 10

// What a refused renewal is told.
const (
	msgNotInstance  = "certificate renewal refused: only a container instance can renew its certificate"
	msgDeregistered = "certificate renewal refused: the container instance is deregistered; register the host again"
)

const msgRefused = "registration refused: the activation id or code is wrong, expired, or has no registrations left"

// fixture is a registration Server of its own, in a namespace of its own, against a shared droverd.
type fixture struct {
	d   *framework.Server
	ca  *pki.CA
	c   client.Client
	s   *registration.Server
	url string
	ns  string
}

func newFixture(t *testing.T, d *framework.Server, ca *pki.CA) *fixture {
	t.Helper()
	f := &fixture{d: d, ca: ca, c: d.Client, ns: "reg-" + utilrand.String(6)}
	require.NoError(t, f.c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}))
	f.s = registration.New(registration.Options{CA: ca, CertValidity: time.Hour})
	require.NoError(t, f.s.Start(t.Context(), d.Config))
	mux := http.NewServeMux()
	mux.Handle(registration.RegisterPath, f.s.RegisterHandler())
	mux.Handle(registration.CAPath, f.s.CAHandler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	f.url = hs.URL
	return f
}

// activation creates an Activation for cluster stores and returns its id and code.
func (f *fixture) activation(t *testing.T, mutate func(*ecsv1alpha1.Activation)) (*ecsv1alpha1.Activation, string) {
	t.Helper()
	code, err := registration.NewCode()
	require.NoError(t, err)
	act := &ecsv1alpha1.Activation{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "act-", Namespace: f.ns},
		Spec: ecsv1alpha1.ActivationSpec{
			Cluster: "stores", CodeHash: registration.HashCode(code), ExpiresAt: metav1.NewTime(time.Now().Add(time.Hour)),
			RegistrationLimit: 1, Attributes: []ecsv1alpha1.Attribute{{Name: "store", Value: "042"}, {Name: "gpu"}},
		},
	}
	if mutate != nil {
		mutate(act)
	}
	require.NoError(t, f.c.Create(t.Context(), act))
	return act, code
}

func id(act *ecsv1alpha1.Activation) string { return act.Namespace + "/" + act.Name }

// post sends body to registration.RegisterPath and returns the status, headers and body.
func (f *fixture) post(t *testing.T, body []byte) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Post(f.url+registration.RegisterPath, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, out
}

func (f *fixture) register(t *testing.T, activationID, code, hostname, csr string) (int, *wire.RegisterResponse, string) {
	t.Helper()
	body, err := json.Marshal(wire.RegisterRequest{ActivationID: activationID, ActivationCode: code, Hostname: hostname, CSR: csr})
	require.NoError(t, err)
	status, _, out := f.post(t, body)
	var resp wire.RegisterResponse
	if status == http.StatusOK {
		require.NoError(t, json.Unmarshal(out, &resp), "%s", out)
	}
	return status, &resp, errorOf(t, status, out)
}

func errorOf(t *testing.T, status int, body []byte) string {
	t.Helper()
	if status == http.StatusOK {
		return ""
	}
	var e wire.ErrorResponse
	require.NoError(t, json.Unmarshal(body, &e), "error body %q is not JSON", body)
	return e.Error
}

func (f *fixture) instances(t *testing.T) []ecsv1alpha1.ContainerInstance {
	t.Helper()
	var l ecsv1alpha1.ContainerInstanceList
	require.NoError(t, f.c.List(t.Context(), &l, client.InNamespace(f.ns)))
	return l.Items
}

func (f *fixture) leases(t *testing.T) []coordinationv1.Lease {
	t.Helper()
	var l coordinationv1.LeaseList
	require.NoError(t, f.c.List(t.Context(), &l, client.InNamespace(f.ns)))
	return l.Items
}

func (f *fixture) count(t *testing.T, act *ecsv1alpha1.Activation) int32 {
	t.Helper()
	got := &ecsv1alpha1.Activation{}
	require.NoError(t, f.c.Get(t.Context(), client.ObjectKeyFromObject(act), got))
	return got.Status.RegistrationsCount
}

func (f *fixture) refusedEvents(t *testing.T, act *ecsv1alpha1.Activation) []corev1.Event {
	t.Helper()
	var l corev1.EventList
	require.NoError(t, f.c.List(t.Context(), &l, client.InNamespace(f.ns)))
	var out []corev1.Event
	for _, e := range l.Items {
		if e.InvolvedObject.Kind == "Activation" && e.InvolvedObject.Name == act.Name && e.Reason == registration.ReasonRegistrationRefused {
			out = append(out, e)
		}
	}
	return out
}

// newCSR returns a new key and a CSR for it asking for subject.
func newCSR(t *testing.T, subject pkix.Name) (crypto.Signer, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	require.NoError(t, err)
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func parseCert(t *testing.T, certPEM string) *x509.Certificate {
	t.Helper()
	cert, err := pki.ParseCertificate([]byte(certPEM))
	require.NoError(t, err)
	return cert
}

func TestRegistration(t *testing.T) {
	d := framework.Start(t, framework.WithoutControllers())
	ca, err := pki.LoadOrCreateCA(filepath.Join(d.DataDir, "pki"), "drover-ca")
	require.NoError(t, err)

	t.Run("a host registers and gets its own identity", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, d, ca)
		act, code := f.activation(t, nil)
		key, csr := newCSR(t, pkix.Name{CommonName: "whatever"})
		status, resp, msg := f.register(t, id(act), code, "Store-042.example.com", csr)
		require.Equal(t, http.StatusOK, status, msg)

		require.Equal(t, f.ns, resp.Namespace)
		require.Equal(t, "stores", resp.Cluster)
		require.Regexp(t, `^store-042-[0-9a-f]{6}$`, resp.ContainerInstance)
		require.Equal(t, string(ca.CertPEM), resp.CACertificate)
		require.Empty(t, resp.Server)

		ci := &ecsv1alpha1.ContainerInstance{}
		require.NoError(t, f.c.Get(t.Context(), types.NamespacedName{Namespace: f.ns, Name: resp.ContainerInstance}, ci))
		require.Equal(t, "stores", ci.Spec.Cluster)
		require.Equal(t, act.Name, ci.Spec.Activation)
		require.Equal(t, act.Spec.Attributes, ci.Spec.Attributes)
		require.Equal(t, "Store-042.example.com", ci.Status.Hostname)
		require.NotNil(t, ci.Status.RegisteredAt)
		require.False(t, ci.Status.AgentConnected)

		lease := &coordinationv1.Lease{}
		require.NoError(t, f.c.Get(t.Context(), types.NamespacedName{Namespace: f.ns, Name: ci.Name}, lease))
		require.Equal(t, ci.Name, *lease.Spec.HolderIdentity)
		require.EqualValues(t, 10, *lease.Spec.LeaseDurationSeconds)
		require.Len(t, lease.OwnerReferences, 1)
		require.Equal(t, ci.UID, lease.OwnerReferences[0].UID)

		require.EqualValues(t, 1, f.count(t, act))

		cert := parseCert(t, resp.Certificate)
		in := identity.Instance{Namespace: f.ns, Name: ci.Name, UID: string(ci.UID)}
		require.Equal(t, in.User(), cert.Subject.CommonName)
		require.Equal(t, in.Groups(), cert.Subject.Organization)
		require.Equal(t, key.Public(), cert.PublicKey)
		require.WithinDuration(t, time.Now().Add(time.Hour), cert.NotAfter, time.Minute)
		require.True(t, cert.NotBefore.Before(time.Now()))
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		_, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		require.NoError(t, err, "the certificate is a client certificate signed by the cluster CA")

		// droverd authenticates the certificate as the instance.
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		require.NoError(t, err)
		cs, err := kubernetes.NewForConfig(&rest.Config{Host: d.URL, TLSClientConfig: rest.TLSClientConfig{
			CAData: ca.CertPEM, CertData: []byte(resp.Certificate),
			KeyData: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		}})
		require.NoError(t, err)
		review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		require.NoError(t, err)
		require.Equal(t, in.User(), review.Status.UserInfo.Username)
		got, ok := identity.FromUser(review.Status.UserInfo.Username, review.Status.UserInfo.Groups)
		require.True(t, ok)
		require.Equal(t, in, got)

		// The CA endpoint serves the CA certificate.
		caResp, err := http.Get(f.url + registration.CAPath)
		require.NoError(t, err)
		defer caResp.Body.Close()
		caPEM, _ := io.ReadAll(caResp.Body)
		require.Equal(t, http.StatusOK, caResp.StatusCode)
		require.Equal(t, ca.CertPEM, caPEM)
	})

	t.Run("refusals say nothing about which part was wrong and create nothing", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, d, ca)
		_, csr := newCSR(t, pkix.Name{})
		act, code := f.activation(t, nil)
		expired, expiredCode := f.activation(t, func(a *ecsv1alpha1.Activation) {
			a.Spec.ExpiresAt = metav1.NewTime(time.Now().Add(-time.Minute))
		})

		for name, c := range map[string]struct{ id, code string }{
			"wrong code":         {id(act), wrongCode(code)},
			"code of another":    {id(act), expiredCode},
			"expired":            {id(expired), expiredCode},
			"no such activation": {f.ns + "/act-nope", code},
			"other namespace":    {"default/" + act.Name, code},
		} {
			status, _, msg := f.register(t, c.id, c.code, "host", csr)
			require.Equal(t, http.StatusForbidden, status, name)
			require.Equal(t, msgRefused, msg, name)
		}
		require.Empty(t, f.instances(t))
		require.Empty(t, f.leases(t))
		require.EqualValues(t, 0, f.count(t, act))
		require.EqualValues(t, 0, f.count(t, expired))

		// The activation's owner sees why, without the code.
		events := f.refusedEvents(t, act)
		require.Len(t, events, 2)
		for _, e := range events {
			require.Equal(t, corev1.EventTypeWarning, e.Type)
			require.Contains(t, e.Message, "the activation code is wrong")
			require.Contains(t, e.Message, `"host"`)
			require.NotContains(t, e.Message, code[:8])
			require.NotContains(t, e.Message, expiredCode[:8])
		}
		events = f.refusedEvents(t, expired)
		require.Len(t, events, 1)
		require.Contains(t, events[0].Message, "expired")

		// The limit: the first registration succeeds, the next is refused.
		status, _, msg := f.register(t, id(act), code, "host", csr)
		require.Equal(t, http.StatusOK, status, msg)
		status, _, msg = f.register(t, id(act), code, "host", csr)
		require.Equal(t, http.StatusForbidden, status)
		require.Equal(t, msgRefused, msg)
		require.Len(t, f.instances(t), 1)
		require.Len(t, f.leases(t), 1)
		require.EqualValues(t, 1, f.count(t, act))
		require.Contains(t, f.refusedEvents(t, act)[2].Message, "all 1 registrations")
	})

	t.Run("concurrent registrations take exactly the limit", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, d, ca)
		act, code := f.activation(t, func(a *ecsv1alpha1.Activation) { a.Spec.RegistrationLimit = 5 })
		var wg sync.WaitGroup
		statuses := make([]int, 8)
		for i := range statuses {
			wg.Go(func() {
				_, csr := newCSR(t, pkix.Name{})
				body, _ := json.Marshal(wire.RegisterRequest{ActivationID: id(act), ActivationCode: code, Hostname: "host", CSR: csr})
				resp, err := http.Post(f.url+registration.RegisterPath, "application/json", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			})
		}
		wg.Wait()
		ok, refused := 0, 0
		for _, s := range statuses {
			switch s {
			case http.StatusOK:
				ok++
			case http.StatusForbidden:
				refused++
			}
		}
		require.Equal(t, 5, ok, "statuses %v", statuses)
		require.Equal(t, 3, refused, "statuses %v", statuses)
		require.Len(t, f.instances(t), 5)
		require.Len(t, f.leases(t), 5)
		require.EqualValues(t, 5, f.count(t, act))
	})

	t.Run("a CSR for another instance gets a certificate for its own new instance only", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, d, ca)
		act, code := f.activation(t, func(a *ecsv1alpha1.Activation) { a.Spec.RegistrationLimit = 2 })
		_, csr := newCSR(t, pkix.Name{})
		status, first, msg := f.register(t, id(act), code, "victim", csr)
		require.Equal(t, http.StatusOK, status, msg)
		victim := parseCert(t, first.Certificate)

		// The second host asks for the first one's identity, as subject and as names.
		_, forged := newCSR(t, pkix.Name{CommonName: victim.Subject.CommonName, Organization: victim.Subject.Organization})
		status, second, msg := f.register(t, id(act), code, "victim", forged)
		require.Equal(t, http.StatusOK, status, msg)
		require.NotEqual(t, first.ContainerInstance, second.ContainerInstance)
		cert := parseCert(t, second.Certificate)
		ci := &ecsv1alpha1.ContainerInstance{}
		require.NoError(t, f.c.Get(t.Context(), types.NamespacedName{Namespace: f.ns, Name: second.ContainerInstance}, ci))
		own := identity.Instance{Namespace: f.ns, Name: second.ContainerInstance, UID: string(ci.UID)}
		require.Equal(t, own.User(), cert.Subject.CommonName)
		require.Equal(t, own.Groups(), cert.Subject.Organization)
		require.NotEqual(t, victim.Subject.CommonName, cert.Subject.CommonName)
		for _, o := range victim.Subject.Organization {
			if o != identity.InstancesGroup {
				require.NotContains(t, cert.Subject.Organization, o)
			}
		}
	})

	t.Run("malformed requests are refused with 400 or 413 and create nothing", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, d, ca)
		act, code := f.activation(t, nil)
		_, csr := newCSR(t, pkix.Name{})
		corrupt := []byte(csr)
		block, _ := pem.Decode(corrupt)
		block.Bytes[len(block.Bytes)-3] ^= 0xff // breaks the signature
		badSig := string(pem.EncodeToMemory(block))
		req := func(mutate func(*wire.RegisterRequest)) []byte {
			r := wire.RegisterRequest{ActivationID: id(act), ActivationCode: code, Hostname: "host", CSR: csr}
			mutate(&r)
			b, _ := json.Marshal(r)
			return b
		}
		for name, c := range map[string]struct {
			body   []byte
			status int
			msg    string
		}{
			"garbage":        {[]byte("\x00\x01garbage"), http.StatusBadRequest, "not a JSON object"},
			"wrong shape":    {[]byte(`{"activationId": 42}`), http.StatusBadRequest, "not a JSON object"},
			"missing fields": {req(func(r *wire.RegisterRequest) { r.Hostname, r.CSR = "", "" }), http.StatusBadRequest, "missing hostname, csr"},
			"bad id":         {req(func(r *wire.RegisterRequest) { r.ActivationID = act.Name }), http.StatusBadRequest, "activationId must be <namespace>/<name>"},
			"csr not PEM":    {req(func(r *wire.RegisterRequest) { r.CSR = "hello" }), http.StatusBadRequest, "csr is not a PEM CERTIFICATE REQUEST"},
			"csr signature":  {req(func(r *wire.RegisterRequest) { r.CSR = badSig }), http.StatusBadRequest, "csr"},
			"oversized":      {req(func(r *wire.RegisterRequest) { r.Hostname = strings.Repeat("a", 70<<10) }), http.StatusRequestEntityTooLarge, "larger than 65536 bytes"},
		} {
			status, _, body := f.post(t, c.body)
			require.Equal(t, c.status, status, "%s: %s", name, body)
			msg := errorOf(t, status, body)
			require.True(t, strings.HasPrefix(msg, "malformed registration request: "), "%s: %s", name, msg)
			require.Contains(t, msg, c.msg, name)
		}
		resp, err := http.Get(f.url + registration.RegisterPath)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

		require.Empty(t, f.instances(t))
		require.Empty(t, f.leases(t))
		require.EqualValues(t, 0, f.count(t, act))
	})

	t.Run("repeated failures are rate limited per source and per activation", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, d, ca)
		act, code := f.activation(t, nil)
		other, otherCode := f.activation(t, nil)
		_, csr := newCSR(t, pkix.Name{})
		h := f.s.RegisterHandler()
		call := func(source, activationID, code string) *httptest.ResponseRecorder {
			body, _ := json.Marshal(wire.RegisterRequest{ActivationID: activationID, ActivationCode: code, Hostname: "host", CSR: csr})
			r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, registration.RegisterPath, bytes.NewReader(body))
			r.RemoteAddr = net.JoinHostPort(source, "40000")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w
		}
		for i := range failBurst {
			require.Equal(t, http.StatusForbidden, call("10.0.0.1", id(act), "wrong").Code, "failure %d", i+1)
		}
		w := call("10.0.0.1", id(act), code)
		require.Equal(t, http.StatusTooManyRequests, w.Code, "the right code is not tried once the source is limited")
		require.NotEmpty(t, w.Header().Get("Retry-After"))
		require.Contains(t, errorOf(t, w.Code, w.Body.Bytes()), "too many failed registration attempts")

		// Another source is limited on this activation too, but may register with another one.
		require.Equal(t, http.StatusTooManyRequests, call("10.0.0.2", id(act), code).Code)
		require.Equal(t, http.StatusOK, call("10.0.0.2", id(other), otherCode).Code)
		require.EqualValues(t, 0, f.count(t, act))

		// Ids that do not exist still count against the source.
		for i := range failBurst {
			require.Equal(t, http.StatusForbidden, call("2001:db8::1", f.ns+"/nope-"+utilrand.String(5), "x").Code, "failure %d", i+1)
		}
		require.Equal(t, http.StatusTooManyRequests, call("2001:db8::2", id(other), otherCode).Code, "the same /64")
		require.Len(t, f.refusedEvents(t, act), failBurst)
	})

	t.Run("before Start, registration answers 503", func(t *testing.T) {
		t.Parallel()
		s := registration.New(registration.Options{CA: ca})
		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, registration.RegisterPath, strings.NewReader("{}"))
		w := httptest.NewRecorder()
		s.RegisterHandler().ServeHTTP(w, r)
		require.Equal(t, http.StatusServiceUnavailable, w.Code)
		require.NotEmpty(t, w.Header().Get("Retry-After"))
	})

	t.Run("an instance renews its certificate until it is deregistered", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, d, ca)
		act, code := f.activation(t, nil)
		_, csr := newCSR(t, pkix.Name{})
		status, reg, msg := f.register(t, id(act), code, "host", csr)
		require.Equal(t, http.StatusOK, status, msg)
		first := parseCert(t, reg.Certificate)
		in, ok := identity.FromUser(first.Subject.CommonName, first.Subject.Organization)
		require.True(t, ok)

		renew := func(u user.Info, csr string) (int, string) {
			body, _ := json.Marshal(wire.RenewRequest{CSR: csr})
			r := httptest.NewRequestWithContext(request.WithUser(t.Context(), u), http.MethodPost, registration.RenewPath, bytes.NewReader(body))
			w := httptest.NewRecorder()
			f.s.RenewHandler().ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				return w.Code, errorOf(t, w.Code, w.Body.Bytes())
			}
			var resp wire.RenewResponse
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
			return w.Code, resp.Certificate
		}
		instance := &user.DefaultInfo{Name: in.User(), Groups: append(in.Groups(), user.AllAuthenticated)}

		key, newCSRPEM := newCSR(t, pkix.Name{CommonName: "system:drover:instance:" + f.ns + ":someone-else"})
		status, out := renew(instance, newCSRPEM)
		require.Equal(t, http.StatusOK, status, out)
		renewed := parseCert(t, out)
		require.Equal(t, first.Subject.CommonName, renewed.Subject.CommonName)
		require.Equal(t, first.Subject.Organization, renewed.Subject.Organization)
		require.Equal(t, key.Public(), renewed.PublicKey)
		require.NoError(t, renewed.CheckSignatureFrom(ca.Cert))

		status, out = renew(instance, "not a csr")
		require.Equal(t, http.StatusBadRequest, status, out)

		status, out = renew(&user.DefaultInfo{Name: "drover:admin", Groups: []string{"drover:admins"}}, newCSRPEM)
		require.Equal(t, http.StatusForbidden, status, out)
		require.Equal(t, msgNotInstance, out)

		stale := identity.Instance{Namespace: in.Namespace, Name: in.Name, UID: "00000000-0000-0000-0000-000000000000"}
		status, out = renew(&user.DefaultInfo{Name: stale.User(), Groups: stale.Groups()}, newCSRPEM)
		require.Equal(t, http.StatusForbidden, status, "a certificate of an earlier instance of the same name: %s", out)

		require.NoError(t, f.c.Delete(t.Context(), &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: in.Name, Namespace: in.Namespace}}))
		status, out = renew(instance, newCSRPEM)
		require.Equal(t, http.StatusForbidden, status, out)
		require.Equal(t, msgDeregistered, out)
	})
}
