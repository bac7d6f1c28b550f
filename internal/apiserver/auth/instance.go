package auth

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/drover-dev/drover/internal/identity"
	"github.com/drover-dev/drover/internal/tunnel/wire"
)

// InstanceLookup tells whether a container instance is registered, and under which UID.
type InstanceLookup interface {
	InstanceUID(ctx context.Context, namespace, name string) (uid string, found bool, err error)
}

// RenewPath is where an instance renews its certificate; only instances may post to it.
const RenewPath = "/drover/v1/renew"

// authorizeInstance decides for a container instance's identity. An instance may read and report
// on its own ContainerInstance, open its own tunnel, renew its own Lease, list and watch only the
// Tasks bound to it and report their status, create Events in its namespace, and renew its
// certificate - and only while the ContainerInstance its certificate was issued for still exists.
// It may not read task logs, not even of its own tasks: it has them on its host.
func (z *Authorizer) authorizeInstance(ctx context.Context, in identity.Instance, a authorizer.Attributes) (authorizer.Decision, string, error) {
	lookup := z.lookup.Load()
	if lookup == nil {
		return authorizer.DecisionNoOpinion, "container instance identities are not accepted yet", nil
	}
	uid, found, err := (*lookup).InstanceUID(ctx, in.Namespace, in.Name)
	if err != nil {
		return authorizer.DecisionNoOpinion, "", fmt.Errorf("looking up container instance %s/%s: %w", in.Namespace, in.Name, err)
	}
	if !found || uid != in.UID {
		return authorizer.DecisionDeny, fmt.Sprintf("container instance %s/%s is deregistered", in.Namespace, in.Name), nil
	}
	if !a.IsResourceRequest() {
		if a.GetPath() == RenewPath && a.GetVerb() == "post" {
			return authorizer.DecisionAllow, "", nil
		}
		return authorizer.DecisionNoOpinion, "", nil
	}
	if a.GetNamespace() != in.Namespace {
		return authorizer.DecisionNoOpinion, "", nil
	}
	verb, sub := a.GetVerb(), a.GetSubresource()
	own := a.GetName() == in.Name
	allow := false
	switch a.GetAPIGroup() + "/" + a.GetResource() {
	case "ecs.drover.dev/containerinstances":
		switch {
		case sub == "" && verb == "get" && own:
			allow = true
		case sub == "" && (verb == "list" || verb == "watch"):
			allow = selects(a, "metadata.name", in.Name)
		case sub == "status" && own && (verb == "get" || verb == "update" || verb == "patch"):
			allow = true
		case sub == wire.TunnelSubresource && own && verb == "create":
			allow = true
		}
	case "coordination.k8s.io/leases":
		allow = sub == "" && own && (verb == "get" || verb == "update" || verb == "patch")
	case "ecs.drover.dev/tasks":
		switch {
		case sub == "" && (verb == "list" || verb == "watch"):
			allow = selects(a, "spec.containerInstance", in.Name)
		case sub == "status" && (verb == "update" || verb == "patch"):
			// Admission (InstanceRestriction) checks the task is bound to this instance.
			allow = true
		}
	case "/events", "events.k8s.io/events":
		allow = sub == "" && (verb == "create" || verb == "patch")
	}
	if allow {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}

// selects reports whether the request's field selector pins field to value.
func selects(a authorizer.Attributes, field, value string) bool {
	reqs, err := a.GetFieldSelector()
	if err != nil {
		return false
	}
	for _, r := range reqs {
		if r.Field == field && (r.Operator == selection.Equals || r.Operator == selection.DoubleEquals) && r.Value == value {
			return true
		}
	}
	return false
}
