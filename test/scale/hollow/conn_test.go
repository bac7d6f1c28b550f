package hollow

import (
	"net/http"
	"testing"
)

func TestRequestKind(t *testing.T) {
	for _, tc := range []struct{ method, path, verb, resource string }{
		{http.MethodGet, "/apis/coordination.k8s.io/v1/namespaces/default/leases/host-1", "get", "leases"},
		{http.MethodPut, "/apis/coordination.k8s.io/v1/namespaces/default/leases/host-1", "update", "leases"},
		{http.MethodGet, "/apis/ecs.drover.dev/v1alpha1/namespaces/default/tasks", "list", "tasks"},
		{http.MethodPatch, "/apis/ecs.drover.dev/v1alpha1/namespaces/default/tasks/web-1/status", "patch", "tasks/status"},
		{http.MethodPatch, "/apis/ecs.drover.dev/v1alpha1/namespaces/default/containerinstances/host-1/status", "patch", "containerinstances/status"},
		{http.MethodPost, "/register", "create", ""},
	} {
		if verb, resource := requestKind(tc.method, tc.path); verb != tc.verb || resource != tc.resource {
			t.Errorf("requestKind(%s, %s) = %q, %q; want %q, %q", tc.method, tc.path, verb, resource, tc.verb, tc.resource)
		}
	}
}
