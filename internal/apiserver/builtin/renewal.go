package builtin

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/endpoints/metrics"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
)

// maxRenewalBody bounds the body ServeRenewals reads; a renewal is well under 1 KiB, and a larger
// body goes the usual way.
const maxRenewalBody = 16 << 10

// ServeRenewals wraps the API handler. It answers an instance's Lease renewal that package
// liveness lets it keep in memory before the request reaches the REST handler, and passes every
// other request on unchanged.
//
// A renewal is the most frequent request droverd serves (5,000 instances renewing every 5 s make
// 1,000 a second), and the REST handler's update path spends most of its time on managedFields
// bookkeeping that a renewal kept in memory throws away. Here the request has been authenticated
// and authorized (an instance may update only its own Lease) and has passed the in-flight limit
// (which lets instances' renewals through without a slot); what it skips is admission, which acts
// on no Lease update, and the field manager. Only a plain renewal takes this path: a PUT of a
// whole Lease with no query parameters, in a format the API serves, whose resourceVersion is the
// stored one, which changes nothing but spec.renewTime, and whose field manager (its user agent)
// alone owns spec.renewTime already, so that the field manager would have changed nothing.
// Anything else, including a renewal that must be written, is served by the REST handler as
// before, and the request metrics count both alike.
func (s *LeaseStore) ServeRenewals(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.RawQuery != "" || !s.renewals.Active() ||
			strings.Contains(r.Header.Get("Accept"), "as=") {
			next.ServeHTTP(w, r)
			return
		}
		info, ok := genericapirequest.RequestInfoFrom(r.Context())
		if !ok || !info.IsResourceRequest || info.APIGroup != coordinationv1.GroupName || info.APIVersion != "v1" ||
			info.Resource != "leases" || info.Subresource != "" || info.Namespace == "" || info.Name == "" {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRenewalBody+1))
		if err != nil || len(body) > maxRenewalBody {
			// The REST handler reads the whole body again and answers as it would have.
			r.Body = readCloser{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
			next.ServeHTTP(w, r)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		lease, ok := s.renewal(r, info, body)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		responsewriters.WriteObjectNegotiated(Codecs, negotiation.DefaultEndpointRestrictions, coordinationv1.SchemeGroupVersion,
			w, r, http.StatusOK, lease, false)
		received, ok := genericapirequest.ReceivedTimestampFrom(r.Context())
		if !ok {
			received = time.Now()
		}
		metrics.MonitorRequest(r, http.MethodPut, coordinationv1.GroupName, "v1", "leases", "", metrics.CleanScope(info),
			metrics.APIServerComponent, false, "", http.StatusOK, 0, time.Since(received))
	})
}

// renewal decodes body as a renewal of the Lease the request names and keeps it in memory when it
// only renews. ok false means the request is to be served as usual, nothing having changed.
func (s *LeaseStore) renewal(r *http.Request, info *genericapirequest.RequestInfo, body []byte) (*coordinationv1.Lease, bool) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, false
	}
	serializer, ok := runtime.SerializerInfoForMediaType(Codecs.SupportedMediaTypes(), mediaType)
	if !ok || serializer.StrictSerializer == nil {
		return nil, false
	}
	// Strict, so that a body with unknown or duplicate fields gets the REST handler's warnings or
	// errors.
	lease := &coordinationv1.Lease{}
	obj, gvk, err := serializer.StrictSerializer.Decode(body, nil, lease)
	if err != nil || obj != lease || gvk == nil || *gvk != coordinationv1.SchemeGroupVersion.WithKind("Lease") {
		return nil, false
	}
	if lease.Name != info.Name || (lease.Namespace != "" && lease.Namespace != info.Namespace) {
		return nil, false
	}
	lease.Namespace = info.Namespace
	ctx := genericapirequest.WithNamespace(r.Context(), info.Namespace)
	stored, seen, ok := s.renewable(ctx, info.Name, lease.ResourceVersion)
	if !ok || !ownsRenewalAlone(seen, fieldManager(r.UserAgent())) || !s.keep(stored, seen, lease) {
		return nil, false
	}
	return lease, true
}

// ownsRenewalAlone reports whether manager, and no other, owns spec.renewTime in l's managed
// fields through an update of the Lease itself. Then a renewal by manager that moves only
// renewTime changes nothing in them but the entry's time, which a renewal kept in memory does not
// keep anyway; otherwise the field manager moves ownership, and the update is written.
func ownsRenewalAlone(l *coordinationv1.Lease, manager string) bool {
	owns := false
	for _, e := range l.ManagedFields {
		if e.FieldsV1 == nil || !bytes.Contains(e.FieldsV1.Raw, []byte(`"f:renewTime"`)) {
			continue
		}
		if e.Manager != manager || e.Operation != metav1.ManagedFieldsOperationUpdate || e.Subresource != "" {
			return false
		}
		owns = true
	}
	return owns
}

// fieldManager returns the manager name the API server records for an update without a
// fieldManager parameter: the user agent up to its first "/", printable characters only, at most
// metav1validation.FieldManagerMaxLength bytes.
func fieldManager(userAgent string) string {
	prefix, _, _ := strings.Cut(userAgent, "/")
	var b strings.Builder
	for _, r := range prefix {
		if !unicode.IsPrint(r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > metav1validation.FieldManagerMaxLength {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}
