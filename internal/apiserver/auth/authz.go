package auth

import (
	"context"
	"strings"
	"sync/atomic"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/drover-dev/drover/internal/identity"
	"github.com/drover-dev/drover/internal/tunnel/wire"
)

// Groups droverd recognises. Membership comes from the O= fields of a client certificate.
const (
	// GroupAdmins may do anything. user.SystemPrivilegedGroup (system:masters) is treated the same,
	// as Kubernetes does, and is what droverd's own loopback client uses.
	GroupAdmins = "drover:admins"
	// GroupViewers may read (get, list, watch) everything and change nothing.
	GroupViewers = "drover:viewers"
)

// Role is a named set of rules.
type Role struct {
	Name             string
	ResourceRules    []authorizer.DefaultResourceRuleInfo
	NonResourceRules []authorizer.DefaultNonResourceRuleInfo
}

var (
	roleAdmin = Role{
		Name:             "admin",
		ResourceRules:    []authorizer.DefaultResourceRuleInfo{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}},
		NonResourceRules: []authorizer.DefaultNonResourceRuleInfo{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}},
	}
	roleViewer = Role{
		Name:             "viewer",
		ResourceRules:    []authorizer.DefaultResourceRuleInfo{{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"*"}, Resources: []string{"*"}}},
		NonResourceRules: []authorizer.DefaultNonResourceRuleInfo{{Verbs: []string{"get"}, NonResourceURLs: []string{"*"}}},
	}
	// roleBasic is every authenticated caller's: discovery, OpenAPI, version, health, and asking about itself.
	roleBasic = Role{
		Name: "basic-user",
		ResourceRules: []authorizer.DefaultResourceRuleInfo{
			{Verbs: []string{"create"}, APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"selfsubjectreviews"}},
			{Verbs: []string{"create"}, APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"selfsubjectaccessreviews", "selfsubjectrulesreviews"}},
		},
		NonResourceRules: []authorizer.DefaultNonResourceRuleInfo{{Verbs: []string{"get"}, NonResourceURLs: []string{
			"/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version", "/version/",
			"/healthz", "/healthz/*", "/readyz", "/readyz/*", "/livez", "/livez/*",
		}}},
	}
	// rolePublic is for callers without credentials: health endpoints only.
	rolePublic = Role{
		Name: "public-health",
		NonResourceRules: []authorizer.DefaultNonResourceRuleInfo{{Verbs: []string{"get"}, NonResourceURLs: []string{
			"/healthz", "/healthz/*", "/readyz", "/readyz/*", "/livez", "/livez/*",
		}}},
	}
)

// GroupRoles binds groups to roles.
var GroupRoles = map[string][]Role{
	user.SystemPrivilegedGroup: {roleAdmin},
	GroupAdmins:                {roleAdmin},
	GroupViewers:               {roleViewer},
	user.AllAuthenticated:      {roleBasic},
	user.AllUnauthenticated:    {rolePublic},
}

// Authorizer allows a request when any role bound to any of the caller's groups has a matching
// rule, or, for a container instance's identity, when the instance rules allow it.
type Authorizer struct {
	lookup atomic.Pointer[InstanceLookup]
}

var (
	_ authorizer.Authorizer   = &Authorizer{}
	_ authorizer.RuleResolver = &Authorizer{}
)

// SetInstanceLookup starts accepting container instance identities; until it is called they are
// refused.
func (z *Authorizer) SetInstanceLookup(l InstanceLookup) { z.lookup.Store(&l) }

// Authorize implements authorizer.Authorizer.
func (z *Authorizer) Authorize(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	u := a.GetUser()
	if u == nil {
		return authorizer.DecisionNoOpinion, "no user", nil
	}
	if in, ok := identity.FromUser(u.GetName(), u.GetGroups()); ok {
		decision, reason, err := z.authorizeInstance(ctx, in, a)
		if decision != authorizer.DecisionNoOpinion || err != nil {
			return decision, reason, err
		}
	}
	if isTunnel(a) {
		// Whoever holds an instance's tunnel is that instance's agent to droverd: it is asked for,
		// and answers, the logs of the instance's tasks. Only the instance's own identity may
		// open it (above); no role grants it, not even admin, whose work never needs it.
		return authorizer.DecisionDeny, "only the agent of a container instance, with its instance certificate, may open the instance's tunnel", nil
	}
	for _, role := range rolesOf(u) {
		if a.IsResourceRequest() {
			for _, r := range role.ResourceRules {
				if matchResource(r, a) {
					return authorizer.DecisionAllow, "allowed by role " + role.Name, nil
				}
			}
			continue
		}
		for _, r := range role.NonResourceRules {
			if matchNonResource(r, a) {
				return authorizer.DecisionAllow, "allowed by role " + role.Name, nil
			}
		}
	}
	return authorizer.DecisionNoOpinion, "", nil
}

// ConditionsAwareAuthorize implements authorizer.Authorizer; droverd's rules carry no conditions.
func (z *Authorizer) ConditionsAwareAuthorize(ctx context.Context, a authorizer.Attributes) authorizer.ConditionsAwareDecision {
	return authorizer.ConditionsAwareDecisionFromParts(z.Authorize(ctx, a))
}

// EvaluateConditions implements authorizer.Authorizer.
func (*Authorizer) EvaluateConditions(context.Context, authorizer.ConditionsAwareDecision, authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, "", authorizer.ErrorConditionEvaluationNotSupported
}

// RulesFor implements authorizer.RuleResolver, for `kubectl auth can-i --list`.
func (*Authorizer) RulesFor(_ context.Context, u user.Info, _ string) ([]authorizer.ResourceRuleInfo, []authorizer.NonResourceRuleInfo, bool, error) {
	var rr []authorizer.ResourceRuleInfo
	var nr []authorizer.NonResourceRuleInfo
	for _, role := range rolesOf(u) {
		for i := range role.ResourceRules {
			rr = append(rr, &role.ResourceRules[i])
		}
		for i := range role.NonResourceRules {
			nr = append(nr, &role.NonResourceRules[i])
		}
	}
	return rr, nr, false, nil
}

// isTunnel reports whether a is a request to a ContainerInstance's tunnel.
func isTunnel(a authorizer.Attributes) bool {
	return a.IsResourceRequest() && a.GetAPIGroup() == wire.Group && a.GetResource() == "containerinstances" &&
		a.GetSubresource() == wire.TunnelSubresource
}

func rolesOf(u user.Info) []Role {
	var roles []Role
	for _, g := range u.GetGroups() {
		roles = append(roles, GroupRoles[g]...)
	}
	return roles
}

func matchResource(r authorizer.DefaultResourceRuleInfo, a authorizer.Attributes) bool {
	resource := a.GetResource()
	if a.GetSubresource() != "" {
		resource += "/" + a.GetSubresource()
	}
	return has(r.Verbs, a.GetVerb()) && has(r.APIGroups, a.GetAPIGroup()) && has(r.Resources, resource) &&
		(len(r.ResourceNames) == 0 || contains(r.ResourceNames, a.GetName()))
}

func matchNonResource(r authorizer.DefaultNonResourceRuleInfo, a authorizer.Attributes) bool {
	if !has(r.Verbs, a.GetVerb()) {
		return false
	}
	for _, u := range r.NonResourceURLs {
		if u == "*" || u == a.GetPath() || (strings.HasSuffix(u, "*") && strings.HasPrefix(a.GetPath(), strings.TrimSuffix(u, "*"))) {
			return true
		}
	}
	return false
}

// has reports whether list holds v or the wildcard "*".
func has(list []string, v string) bool {
	for _, s := range list {
		if s == "*" || s == v {
			return true
		}
	}
	return false
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
