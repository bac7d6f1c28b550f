package builtin

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/names"
)

// FinalizerKubernetes is the spec.finalizers entry that keeps a deleted namespace in phase
// Terminating until the namespace controller has removed everything in it.
const FinalizerKubernetes corev1.FinalizerName = "kubernetes"

// ProtectedNamespaces cannot be deleted.
var ProtectedNamespaces = map[string]bool{metav1.NamespaceDefault: true, SystemNamespace: true}

// SystemNamespace holds droverd's own objects, such as the controllers' leader-election Lease.
const SystemNamespace = "drover-system"

// NamespaceREST serves namespaces. Deleting a namespace marks it Terminating; the namespace
// controller empties it and calls finalize, and the next delete removes it.
type NamespaceREST struct {
	*store
	status   *store
	finalize *store
}

func namespaceStrategy() *strategy {
	return &strategy{
		ObjectTyper:    Scheme,
		NameGenerator:  names.SimpleNameGenerator,
		nameValidation: apivalidation.ValidateNamespaceName,
		prepareCreate: func(obj runtime.Object) {
			ns := obj.(*corev1.Namespace)
			ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
			ns.Spec.Finalizers = []corev1.FinalizerName{FinalizerKubernetes}
		},
		prepareUpdate: func(obj, old runtime.Object) {
			ns, oldNs := obj.(*corev1.Namespace), old.(*corev1.Namespace)
			ns.Spec = oldNs.Spec
			ns.Status = oldNs.Status
		},
	}
}

// NewNamespaceREST returns the storage for namespaces, namespaces/status and namespaces/finalize.
func NewNamespaceREST(optsGetter generic.RESTOptionsGetter) (*NamespaceREST, error) {
	spec := storeSpec{
		resource: corev1.Resource("namespaces"), singular: "namespace",
		newFunc:  func() runtime.Object { return &corev1.Namespace{} },
		newList:  func() runtime.Object { return &corev1.NamespaceList{} },
		strategy: namespaceStrategy(),
		fields: func(obj runtime.Object) fields.Set {
			ns := obj.(*corev1.Namespace)
			return objectFields(&ns.ObjectMeta, false, fields.Set{"status.phase": string(ns.Status.Phase)})
		},
		table: &table{
			columns: []metav1.TableColumnDefinition{nameColumn(), {Name: "Status", Type: "string", Description: "The phase of the namespace."}, ageColumn()},
			row: func(obj runtime.Object) []interface{} {
				ns := obj.(*corev1.Namespace)
				return []interface{}{ns.Name, string(ns.Status.Phase), age(ns.CreationTimestamp)}
			},
		},
		shortNames: []string{"ns"},
	}
	main, err := newStore(spec, optsGetter)
	if err != nil {
		return nil, err
	}
	statusStore := *main.Store
	statusStrategy := *spec.strategy
	statusStrategy.prepareUpdate = func(obj, old runtime.Object) {
		ns, oldNs := obj.(*corev1.Namespace), old.(*corev1.Namespace)
		ns.Spec = oldNs.Spec
	}
	statusStore.UpdateStrategy = &statusStrategy
	finalizeStore := *main.Store
	finalizeStrategy := *spec.strategy
	finalizeStrategy.prepareUpdate = func(obj, old runtime.Object) {
		ns, oldNs := obj.(*corev1.Namespace), old.(*corev1.Namespace)
		ns.Status = oldNs.Status
	}
	finalizeStore.UpdateStrategy = &finalizeStrategy
	return &NamespaceREST{
		store:    main,
		status:   &store{Store: &statusStore},
		finalize: &store{Store: &finalizeStore},
	}, nil
}

// Storage returns the resource map for the namespaces resource and its subresources.
func (r *NamespaceREST) Storage() map[string]rest.Storage {
	return map[string]rest.Storage{
		"namespaces":          r,
		"namespaces/status":   &subresource{r.status},
		"namespaces/finalize": &subresource{r.finalize},
	}
}

// Delete marks the namespace Terminating, or removes it when nothing is left to finalize.
func (r *NamespaceREST) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	if ProtectedNamespaces[name] {
		return nil, false, apierrors.NewForbidden(corev1.Resource("namespaces"), name, fmt.Errorf("namespace %q is required by droverd and cannot be deleted", name))
	}
	obj, err := r.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, false, err
	}
	ns := obj.(*corev1.Namespace)
	if options == nil {
		options = metav1.NewDeleteOptions(0)
	}
	if options.Preconditions == nil {
		options.Preconditions = &metav1.Preconditions{}
	}
	if options.Preconditions.UID == nil {
		options.Preconditions.UID = &ns.UID
	} else if *options.Preconditions.UID != ns.UID {
		return nil, false, apierrors.NewConflict(corev1.Resource("namespaces"), name, fmt.Errorf("precondition failed: UID in precondition: %v, UID in object meta: %v", *options.Preconditions.UID, ns.UID))
	}
	if ns.DeletionTimestamp != nil && len(ns.Spec.Finalizers) == 0 {
		return r.store.Delete(ctx, name, deleteValidation, options)
	}
	if deleteValidation != nil {
		if err := deleteValidation(ctx, ns); err != nil {
			return nil, false, err
		}
	}
	key, err := r.KeyFunc(ctx, name)
	if err != nil {
		return nil, false, err
	}
	out := &corev1.Namespace{}
	err = r.Store.Storage.GuaranteedUpdate(ctx, key, out, false, &storage.Preconditions{UID: options.Preconditions.UID, ResourceVersion: options.Preconditions.ResourceVersion},
		storage.SimpleUpdate(func(existing runtime.Object) (runtime.Object, error) {
			cur := existing.(*corev1.Namespace)
			if cur.DeletionTimestamp == nil {
				now := metav1.NewTime(time.Now())
				cur.DeletionTimestamp = &now
				zero := int64(0)
				cur.DeletionGracePeriodSeconds = &zero
			}
			cur.Status.Phase = corev1.NamespaceTerminating
			return cur, nil
		}), dryRun(options), nil)
	if err != nil {
		return nil, false, err
	}
	return out, false, nil
}

func dryRun(options *metav1.DeleteOptions) bool {
	return options != nil && len(options.DryRun) > 0
}

// subresource exposes only get and update of a store, as status-like subresources do.
type subresource struct{ s *store }

func (r *subresource) New() runtime.Object { return r.s.New() }
func (r *subresource) Destroy()            {}
func (r *subresource) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	return r.s.Get(ctx, name, options)
}
func (r *subresource) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	return r.s.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}
