package integration

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/drover-dev/drover/internal/droverd"
	"github.com/drover-dev/drover/test/framework"
)

// renewalWire sends Lease renewals as raw requests, so that the test chooses their format.
type renewalWire struct {
	t         *testing.T
	http      *http.Client
	url       string // the Lease's
	userAgent string // the field manager of the renewals
}

// put sends body as a PUT of the Lease and returns the status, the response's Content-Type and
// Warning headers, and its body.
func (r *renewalWire) put(contentType, accept string, body []byte) (int, string, []string, []byte) {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.t.Context(), http.MethodPut, r.url, bytes.NewReader(body))
	require.NoError(r.t, err)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", r.userAgent)
	resp, err := r.http.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Values("Warning"), out
}

// encode returns l in the given media type, as client-go would send it.
func encode(t *testing.T, mediaType string, l *coordinationv1.Lease) []byte {
	t.Helper()
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), mediaType)
	require.True(t, ok, mediaType)
	data, err := runtime.Encode(scheme.Codecs.EncoderForVersion(info.Serializer, coordinationv1.SchemeGroupVersion), l)
	require.NoError(t, err)
	return data
}

// leaseUpdates sums droverd's apiserver_request_total for Lease updates answered 200.
func leaseUpdates(t *testing.T, s *framework.Server) int {
	t.Helper()
	re := regexp.MustCompile(`(?m)^apiserver_request_total\{([^}]*)\} (\S+)$`)
	n := 0
	for _, m := range re.FindAllStringSubmatch(scrapeMetrics(t, s), -1) {
		if strings.Contains(m[1], `resource="leases"`) && strings.Contains(m[1], `code="200"`) && strings.Contains(m[1], `verb="PUT"`) {
			v, err := strconv.ParseFloat(m[2], 64)
			require.NoError(t, err)
			n += int(v)
		}
	}
	return n
}

// TestLeaseRenewalsOnTheWire: an instance's renewal that droverd keeps in memory is answered in the
// format the instance speaks (JSON or protobuf) and counted in the request metrics like any
// update; garbage, a body naming another Lease, and unknown fields get what any update would get,
// and change nothing that the request did not.
func TestLeaseRenewalsOnTheWire(t *testing.T) {
	t.Parallel()
	s := framework.Start(t, withHeartbeatPersistInterval(time.Hour))
	h := newHeartbeatHost(t, s, "store-1")
	h.renew() // the first renewal while the controllers lead is written; the next ones are not
	kept := h.lease.ResourceVersion

	cfg := instanceConfig(t, s, h.ci)
	hc, err := rest.HTTPClientFor(cfg)
	require.NoError(t, err)
	// The same user agent as the instance's client, so the same field manager as its renewals.
	w := &renewalWire{t: t, http: hc, url: s.URL + "/apis/coordination.k8s.io/v1/namespaces/default/leases/store-1",
		userAgent: rest.DefaultKubernetesUserAgent()}
	renewal := func() *coordinationv1.Lease {
		l := h.lease.DeepCopy()
		l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now().Truncate(time.Microsecond)}
		return l
	}
	requireRenewed := func(want time.Time) {
		t.Helper()
		got := h.stored()
		require.Equal(t, kept, got.ResourceVersion, "a renewal that only moves renewTime is not written")
		require.True(t, got.Spec.RenewTime.Time.Equal(want), "a GET shows the renewal %s, got %s", want, got.Spec.RenewTime.Time)
	}

	before := leaseUpdates(t, s)
	const renewals = 20
	for i := range renewals {
		l := renewal()
		mediaType := runtime.ContentTypeJSON
		if i%2 == 1 {
			mediaType = runtime.ContentTypeProtobuf
		}
		code, ct, warnings, body := w.put(mediaType, mediaType, encode(t, mediaType, l))
		require.Equal(t, http.StatusOK, code, "%s renewal: %s", mediaType, body)
		require.Empty(t, warnings)
		require.True(t, strings.HasPrefix(ct, mediaType), "answered as %s, asked for %s", ct, mediaType)
		got := &coordinationv1.Lease{}
		require.NoError(t, runtime.DecodeInto(scheme.Codecs.UniversalDecoder(coordinationv1.SchemeGroupVersion), body, got))
		require.Equal(t, kept, got.ResourceVersion)
		require.True(t, got.Spec.RenewTime.Time.Equal(l.Spec.RenewTime.Time), "the answer holds the renewal")
		requireRenewed(l.Spec.RenewTime.Time)
		h.lease = got
	}
	// droverd's own leader election renews Leases too, so the count may grow by more.
	require.GreaterOrEqual(t, leaseUpdates(t, s)-before, renewals, "renewals kept in memory count as Lease updates")
	last := h.lease.Spec.RenewTime.Time

	// Garbage is refused, and changes nothing.
	code, _, _, body := w.put(runtime.ContentTypeJSON, runtime.ContentTypeJSON, []byte(`{"apiVersion":"coordination.k8s.io/v1","kind":"Lease",`))
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	requireRenewed(last)

	// A body that names another Lease is refused with the error any update gets.
	other := renewal()
	other.Name = "store-2"
	code, _, _, body = w.put(runtime.ContentTypeJSON, runtime.ContentTypeJSON, encode(t, runtime.ContentTypeJSON, other))
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	require.Contains(t, string(body), "does not match the name on the URL")
	requireRenewed(last)

	// An unknown field gets the warning any update gets, and the renewal is still taken.
	l := renewal()
	data := bytes.Replace(encode(t, runtime.ContentTypeJSON, l), []byte(`"spec":{`), []byte(`"spec":{"renewEvery":5,`), 1)
	code, _, warnings, body := w.put(runtime.ContentTypeJSON, runtime.ContentTypeJSON, data)
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.NotEmpty(t, warnings, "an unknown field is warned of")
	require.Contains(t, strings.Join(warnings, " "), "renewEvery")
	requireRenewed(l.Spec.RenewTime.Time)

	// A renewal by another field manager takes spec.renewTime over: that is written, and the
	// managed fields say so; its next renewals are kept in memory again.
	w.userAgent = "store-agent/2.0"
	for i := range 2 {
		l = renewal()
		code, _, _, body = w.put(runtime.ContentTypeJSON, runtime.ContentTypeJSON, encode(t, runtime.ContentTypeJSON, l))
		require.Equal(t, http.StatusOK, code, "%s", body)
		got := &coordinationv1.Lease{}
		require.NoError(t, runtime.DecodeInto(scheme.Codecs.UniversalDecoder(coordinationv1.SchemeGroupVersion), body, got))
		if i == 0 {
			require.NotEqual(t, kept, got.ResourceVersion, "a renewal that changes the field manager is written")
			kept = got.ResourceVersion
			owners := []string{}
			for _, e := range h.stored().ManagedFields {
				if bytes.Contains(e.FieldsV1.Raw, []byte(`"f:renewTime"`)) {
					owners = append(owners, e.Manager)
				}
			}
			require.Equal(t, []string{"store-agent"}, owners, "the managers of spec.renewTime")
		}
		requireRenewed(l.Spec.RenewTime.Time)
		h.lease = got
	}
}

// TestRenewalsAreNotShed: with every mutating in-flight slot taken, an instance's status report is
// refused with 429 while its Lease renewal is still answered: liveness is never shed.
func TestRenewalsAreNotShed(t *testing.T) {
	t.Parallel()
	// Without controllers, nothing else writes, so the one request the test holds is what holds
	// the slot.
	s := framework.Start(t, framework.WithoutControllers(), func(o *droverd.Options) { o.MaxMutatingRequestsInFlight = 1 })
	ctx := t.Context()
	h := registerHeartbeatHost(t, s, "store-1")
	ci := h.ci
	hc, err := rest.HTTPClientFor(s.Config)
	require.NoError(t, err)

	// The probe: the instance's own status report, a write the limit sheds (the admin's requests
	// hold slots but are never refused).
	ihc, err := rest.HTTPClientFor(instanceConfig(t, s, ci))
	require.NoError(t, err)
	// reportStatus returns the answer's status, 0 when there is none.
	reportStatus := func() int {
		req, err := http.NewRequestWithContext(ctx, http.MethodPatch,
			s.URL+"/apis/ecs.drover.dev/v1alpha1/namespaces/default/containerinstances/store-1/status", strings.NewReader(`{}`))
		if err != nil {
			return 0
		}
		req.Header.Set("Content-Type", "application/merge-patch+json")
		resp, err := ihc.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, reportStatus(), "the probe goes through while nothing holds the slot")

	// Hold the only mutating slot: an update whose body never comes. One that found the slot
	// taken (by a probe of an earlier attempt) is refused at once, and tried again.
	var held chan int
	for attempt := 1; ; attempt++ {
		body, hold := io.Pipe()
		defer hold.CloseWithError(io.ErrUnexpectedEOF)
		held = make(chan int, 1)
		go func(held chan<- int) {
			code := 0
			defer func() { held <- code }()
			req, err := http.NewRequestWithContext(ctx, http.MethodPut,
				s.URL+"/apis/ecs.drover.dev/v1alpha1/namespaces/default/containerinstances/store-1", body)
			if err != nil {
				return
			}
			req.Header.Set("Content-Type", runtime.ContentTypeJSON)
			if resp, err := hc.Do(req); err == nil {
				code = resp.StatusCode
				resp.Body.Close()
			}
		}(held)
		time.Sleep(300 * time.Millisecond)
		if len(held) == 0 {
			break
		}
		require.Less(t, attempt, 10, "the held update keeps ending: %d", <-held)
	}
	stillHeld := func() {
		t.Helper()
		select {
		case code := <-held:
			t.Fatalf("the held update ended (status %d)", code)
		default:
		}
	}
	probe := 0
	require.Eventually(t, func() bool {
		if len(held) > 0 {
			return true // ended: stillHeld says how
		}
		probe = reportStatus()
		return probe == http.StatusTooManyRequests
	}, 10*time.Second, 50*time.Millisecond)
	stillHeld()
	require.Equal(t, http.StatusTooManyRequests, probe, "the instance's status report is refused while the slot is held")

	last := h.renew()
	require.True(t, h.stored().Spec.RenewTime.Time.Equal(last), "the renewal was taken")
	require.Equal(t, http.StatusTooManyRequests, reportStatus(), "the slot was still held")
	stillHeld()
}
