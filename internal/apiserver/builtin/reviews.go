package builtin

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
)

// SelfSubjectReviewREST answers `kubectl auth whoami`: who the server thinks the caller is.
type SelfSubjectReviewREST struct{}

var (
	_ rest.Creater              = &SelfSubjectReviewREST{}
	_ rest.Scoper               = &SelfSubjectReviewREST{}
	_ rest.SingularNameProvider = &SelfSubjectReviewREST{}
	_ rest.Creater              = &SelfSubjectAccessReviewREST{}
	_ rest.Creater              = &SelfSubjectRulesReviewREST{}
)

func (r *SelfSubjectReviewREST) New() runtime.Object     { return &authenticationv1.SelfSubjectReview{} }
func (r *SelfSubjectReviewREST) Destroy()                {}
func (r *SelfSubjectReviewREST) NamespaceScoped() bool   { return false }
func (r *SelfSubjectReviewREST) GetSingularName() string { return "selfsubjectreview" }

// Create returns the caller's user info.
func (r *SelfSubjectReviewREST) Create(ctx context.Context, obj runtime.Object, _ rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	u, ok := request.UserFrom(ctx)
	if !ok {
		return nil, apierrors.NewUnauthorized("no user in the request")
	}
	out := &authenticationv1.SelfSubjectReview{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.Now()}}
	out.Status.UserInfo = authenticationv1.UserInfo{Username: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups()}
	if extra := u.GetExtra(); len(extra) > 0 {
		out.Status.UserInfo.Extra = map[string]authenticationv1.ExtraValue{}
		for k, v := range extra {
			out.Status.UserInfo.Extra[k] = v
		}
	}
	return out, nil
}

// SelfSubjectAccessReviewREST answers `kubectl auth can-i VERB RESOURCE`.
type SelfSubjectAccessReviewREST struct {
	Authorizer authorizer.Authorizer
}

func (r *SelfSubjectAccessReviewREST) New() runtime.Object {
	return &authorizationv1.SelfSubjectAccessReview{}
}
func (r *SelfSubjectAccessReviewREST) Destroy()                {}
func (r *SelfSubjectAccessReviewREST) NamespaceScoped() bool   { return false }
func (r *SelfSubjectAccessReviewREST) GetSingularName() string { return "selfsubjectaccessreview" }

// Create asks the server's authorizer about the caller and the attributes in the spec.
func (r *SelfSubjectAccessReviewREST) Create(ctx context.Context, obj runtime.Object, _ rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	review, ok := obj.(*authorizationv1.SelfSubjectAccessReview)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a SelfSubjectAccessReview: %T", obj))
	}
	u, ok := request.UserFrom(ctx)
	if !ok {
		return nil, apierrors.NewUnauthorized("no user in the request")
	}
	spec := review.Spec
	if (spec.ResourceAttributes == nil) == (spec.NonResourceAttributes == nil) {
		return nil, apierrors.NewInvalid(authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectAccessReview").GroupKind(), "",
			field.ErrorList{field.Required(field.NewPath("spec"), "exactly one of resourceAttributes or nonResourceAttributes must be set")})
	}
	attrs := authorizer.AttributesRecord{User: u}
	if ra := spec.ResourceAttributes; ra != nil {
		attrs.Verb, attrs.Namespace, attrs.APIGroup, attrs.APIVersion = ra.Verb, ra.Namespace, ra.Group, ra.Version
		attrs.Resource, attrs.Subresource, attrs.Name, attrs.ResourceRequest = ra.Resource, ra.Subresource, ra.Name, true
	} else {
		attrs.Verb, attrs.Path = spec.NonResourceAttributes.Verb, spec.NonResourceAttributes.Path
	}
	decision, reason, err := r.Authorizer.Authorize(ctx, attrs)
	review.Status = authorizationv1.SubjectAccessReviewStatus{
		Allowed: decision == authorizer.DecisionAllow,
		Denied:  decision == authorizer.DecisionDeny,
		Reason:  reason,
	}
	if err != nil {
		review.Status.EvaluationError = err.Error()
	}
	return review, nil
}

// SelfSubjectRulesReviewREST answers `kubectl auth can-i --list`.
type SelfSubjectRulesReviewREST struct {
	Resolver authorizer.RuleResolver
}

func (r *SelfSubjectRulesReviewREST) New() runtime.Object {
	return &authorizationv1.SelfSubjectRulesReview{}
}
func (r *SelfSubjectRulesReviewREST) Destroy()                {}
func (r *SelfSubjectRulesReviewREST) NamespaceScoped() bool   { return false }
func (r *SelfSubjectRulesReviewREST) GetSingularName() string { return "selfsubjectrulesreview" }

// Create lists the rules that apply to the caller in the given namespace.
func (r *SelfSubjectRulesReviewREST) Create(ctx context.Context, obj runtime.Object, _ rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	review, ok := obj.(*authorizationv1.SelfSubjectRulesReview)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a SelfSubjectRulesReview: %T", obj))
	}
	u, ok := request.UserFrom(ctx)
	if !ok {
		return nil, apierrors.NewUnauthorized("no user in the request")
	}
	resourceInfo, nonResourceInfo, incomplete, err := r.Resolver.RulesFor(ctx, u, review.Spec.Namespace)
	status := authorizationv1.SubjectRulesReviewStatus{Incomplete: incomplete}
	for _, ri := range resourceInfo {
		status.ResourceRules = append(status.ResourceRules, authorizationv1.ResourceRule{
			Verbs: ri.GetVerbs(), APIGroups: ri.GetAPIGroups(), Resources: ri.GetResources(), ResourceNames: ri.GetResourceNames(),
		})
	}
	for _, ni := range nonResourceInfo {
		status.NonResourceRules = append(status.NonResourceRules, authorizationv1.NonResourceRule{
			Verbs: ni.GetVerbs(), NonResourceURLs: ni.GetNonResourceURLs(),
		})
	}
	if err != nil {
		status.EvaluationError = err.Error()
	}
	review.Status = status
	return review, nil
}
