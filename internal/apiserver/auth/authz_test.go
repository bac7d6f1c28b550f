package auth

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/drover-dev/drover/internal/identity"
)

// registered answers that every instance in it exists with its UID.
type registered map[string]string

func (r registered) InstanceUID(_ context.Context, namespace, name string) (string, bool, error) {
	uid, ok := r[namespace+"/"+name]
	return uid, ok, nil
}

// TestTaskLogsAndTunnels checks who may read task logs (tasks/log) and open a container instance's
// tunnel (containerinstances/tunnel).
func TestTaskLogsAndTunnels(t *testing.T) {
	z := &Authorizer{}
	z.SetInstanceLookup(registered{"default/host-1": "uid-1", "default/host-2": "uid-2"})
	host1 := identity.Instance{Namespace: "default", Name: "host-1", UID: "uid-1"}
	host2 := identity.Instance{Namespace: "default", Name: "host-2", UID: "uid-2"}
	users := map[string]user.Info{
		"admin":  &user.DefaultInfo{Name: "ada", Groups: []string{GroupAdmins, user.AllAuthenticated}},
		"viewer": &user.DefaultInfo{Name: "vera", Groups: []string{GroupViewers, user.AllAuthenticated}},
		"nobody": &user.DefaultInfo{Name: "nina", Groups: []string{user.AllAuthenticated}},
		"host-1": &user.DefaultInfo{Name: host1.User(), Groups: append(host1.Groups(), user.AllAuthenticated)},
		"host-2": &user.DefaultInfo{Name: host2.User(), Groups: append(host2.Groups(), user.AllAuthenticated)},
	}
	logs := func(task string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{Verb: "get", APIGroup: "ecs.drover.dev", APIVersion: "v1alpha1", Resource: "tasks",
			Subresource: "log", Namespace: "default", Name: task, ResourceRequest: true}
	}
	tunnel := func(verb, instance string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{Verb: verb, APIGroup: "ecs.drover.dev", APIVersion: "v1alpha1", Resource: "containerinstances",
			Subresource: "tunnel", Namespace: "default", Name: instance, ResourceRequest: true}
	}
	cases := []struct {
		who   string
		attrs authorizer.AttributesRecord
		allow bool
	}{
		{"admin", logs("web-1"), true},
		{"viewer", logs("web-1"), true},
		{"nobody", logs("web-1"), false},
		{"host-1", logs("web-1"), false},
		{"host-2", logs("web-1"), false},

		{"host-1", tunnel("create", "host-1"), true},
		{"host-1", tunnel("create", "host-2"), false},
		{"host-1", tunnel("get", "host-1"), false},
		{"host-2", tunnel("create", "host-1"), false},
		{"admin", tunnel("create", "host-1"), false},
		{"admin", tunnel("get", "host-1"), false},
		{"viewer", tunnel("get", "host-1"), false},
		{"nobody", tunnel("create", "host-1"), false},
	}
	for _, c := range cases {
		c.attrs.User = users[c.who]
		d, reason, err := z.Authorize(t.Context(), c.attrs)
		assert.NoError(t, err)
		what := c.who + " " + c.attrs.Verb + " " + c.attrs.Resource + "/" + c.attrs.Subresource + " " + c.attrs.Name
		if c.allow {
			assert.Equal(t, authorizer.DecisionAllow, d, "%s: %s", what, reason)
		} else {
			assert.NotEqual(t, authorizer.DecisionAllow, d, "%s: %s", what, reason)
		}
	}

	// A deregistered instance cannot open its tunnel either.
	gone := identity.Instance{Namespace: "default", Name: "host-1", UID: "uid-old"}
	a := tunnel("create", "host-1")
	a.User = &user.DefaultInfo{Name: gone.User(), Groups: gone.Groups()}
	d, _, err := z.Authorize(t.Context(), a)
	assert.NoError(t, err)
	assert.Equal(t, authorizer.DecisionDeny, d, "an old certificate of a re-registered instance")
}
