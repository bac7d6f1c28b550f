package integration

import (
	"io"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/test/framework"
)

// TestMetricsCountAPIRequests: droverd's /metrics carries the API server's request metrics by verb
// and resource, and its watch cache's, beside the controllers' own.
func TestMetricsCountAPIRequests(t *testing.T) {
	s := framework.Start(t, framework.WithoutControllers())
	ctx := t.Context()
	require.NoError(t, s.Client.Create(ctx, &ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{Name: "counted", Namespace: metav1.NamespaceDefault},
		Spec:       ecsv1alpha1.TaskSpec{Cluster: "stores", TaskDefinition: "web"},
	}))
	body := scrapeMetrics(t, s)
	creates := regexp.MustCompile(`(?m)^apiserver_request_total\{[^}]*group="ecs.drover.dev"[^}]*resource="tasks"[^}]*verb="POST"[^}]*\} [1-9]`)
	require.Regexp(t, creates, body, "the Task create is counted")
	require.Contains(t, body, "apiserver_request_duration_seconds_bucket{")
	require.Contains(t, body, "apiserver_watch_cache_")
}

// scrapeMetrics returns droverd's /metrics, read as the admin.
func scrapeMetrics(t *testing.T, s *framework.Server) string {
	t.Helper()
	tr, err := rest.TransportFor(s.Config)
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: tr}).Get(s.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return string(body)
}
