package builtin

import (
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

var (
	// Scheme holds the built-in types droverd serves. The external (v1) Go types are also
	// registered as each group's internal version: droverd stores and serves one version per
	// group, so no conversion is ever needed.
	Scheme = runtime.NewScheme()
	// Codecs serializes the built-in types.
	Codecs = serializer.NewCodecFactory(Scheme)

	groupVersions = []schema.GroupVersion{
		corev1.SchemeGroupVersion,
		coordinationv1.SchemeGroupVersion,
		authenticationv1.SchemeGroupVersion,
		authorizationv1.SchemeGroupVersion,
	}
)

func init() {
	utilruntime.Must(corev1.AddToScheme(Scheme))
	utilruntime.Must(coordinationv1.AddToScheme(Scheme))
	utilruntime.Must(authenticationv1.AddToScheme(Scheme))
	utilruntime.Must(authorizationv1.AddToScheme(Scheme))
	internal := func(group string) schema.GroupVersion {
		return schema.GroupVersion{Group: group, Version: runtime.APIVersionInternal}
	}
	Scheme.AddKnownTypes(internal(corev1.GroupName),
		&corev1.Namespace{}, &corev1.NamespaceList{}, &corev1.Event{}, &corev1.EventList{})
	Scheme.AddKnownTypes(internal(coordinationv1.GroupName), &coordinationv1.Lease{}, &coordinationv1.LeaseList{})
	Scheme.AddKnownTypes(internal(authenticationv1.GroupName), &authenticationv1.SelfSubjectReview{})
	Scheme.AddKnownTypes(internal(authorizationv1.GroupName),
		&authorizationv1.SelfSubjectAccessReview{}, &authorizationv1.SelfSubjectRulesReview{})

	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	Scheme.AddUnversionedTypes(schema.GroupVersion{Version: "v1"},
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})

	utilruntime.Must(Scheme.AddFieldLabelConversionFunc(corev1.SchemeGroupVersion.WithKind("Event"), fieldLabels(eventFieldNames...)))
	utilruntime.Must(Scheme.AddFieldLabelConversionFunc(corev1.SchemeGroupVersion.WithKind("Namespace"), fieldLabels("status.phase")))
	utilruntime.Must(Scheme.AddFieldLabelConversionFunc(coordinationv1.SchemeGroupVersion.WithKind("Lease"), fieldLabels("spec.holderIdentity")))
}

// StorageCodec encodes objects as their served version and decodes without conversion.
func StorageCodec() runtime.Codec {
	return Codecs.CodecForVersions(Codecs.LegacyCodec(groupVersions...), Codecs.UniversalDeserializer(),
		schema.GroupVersions(groupVersions), nil)
}

// fieldLabels accepts metadata.name, metadata.namespace and the given field labels in field selectors.
func fieldLabels(extra ...string) runtime.FieldLabelConversionFunc {
	allowed := map[string]bool{"metadata.name": true, "metadata.namespace": true}
	for _, f := range extra {
		allowed[f] = true
	}
	return func(label, value string) (string, string, error) {
		if !allowed[label] {
			return "", "", fieldSelectorError(label, allowed)
		}
		return label, value, nil
	}
}

func fieldSelectorError(label string, allowed map[string]bool) error {
	names := make([]string, 0, len(allowed))
	for k := range allowed {
		names = append(names, k)
	}
	return &fieldError{label: label, allowed: names}
}

type fieldError struct {
	label   string
	allowed []string
}

func (e *fieldError) Error() string {
	return "field label not supported: " + e.label + " (supported: " + joinSorted(e.allowed) + ")"
}

// objectFields returns the field set for field selectors of an object with ObjectMeta.
func objectFields(meta *metav1.ObjectMeta, namespaced bool, extra fields.Set) fields.Set {
	set := fields.Set{"metadata.name": meta.Name}
	if namespaced {
		set["metadata.namespace"] = meta.Namespace
	}
	for k, v := range extra {
		set[k] = v
	}
	return set
}
