// Package admission holds droverd's admission plugins.
package admission

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
)

// NamespaceLifecycle refuses to create objects in a namespace that does not exist or is being deleted.
type NamespaceLifecycle struct {
	// Namespaces reads namespaces from storage.
	Namespaces rest.Getter
}

var _ admission.ValidationInterface = &NamespaceLifecycle{}

// Handles implements admission.Interface.
func (p *NamespaceLifecycle) Handles(op admission.Operation) bool { return op == admission.Create }

// Validate implements admission.ValidationInterface.
func (p *NamespaceLifecycle) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetNamespace() == "" || a.GetKind().GroupKind() == corev1.SchemeGroupVersion.WithKind("Namespace").GroupKind() {
		return nil
	}
	if a.GetResource().GroupResource() == corev1.Resource("namespaces") {
		return nil
	}
	ns, err := p.get(ctx, a.GetNamespace())
	if apierrors.IsNotFound(err) {
		return apierrors.NewNotFound(corev1.Resource("namespaces"), a.GetNamespace())
	}
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("looking up namespace %q: %w", a.GetNamespace(), err))
	}
	if ns.Status.Phase == corev1.NamespaceTerminating || ns.DeletionTimestamp != nil {
		return apierrors.NewForbidden(a.GetResource().GroupResource(), a.GetName(),
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", a.GetNamespace()))
	}
	return nil
}

// get reads the namespace from the watch cache, and from etcd when the cache does not have it yet
// (a namespace created a moment ago).
func (p *NamespaceLifecycle) get(ctx context.Context, name string) (*corev1.Namespace, error) {
	ctx = request.WithNamespace(ctx, "")
	obj, err := p.Namespaces.Get(ctx, name, &metav1.GetOptions{ResourceVersion: "0"})
	if apierrors.IsNotFound(err) {
		obj, err = p.Namespaces.Get(ctx, name, &metav1.GetOptions{})
	}
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Namespace), nil
}
