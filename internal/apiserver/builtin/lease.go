package builtin

import (
	"context"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage/names"

	"github.com/drover-dev/drover/internal/liveness"
)

// ecsGroup is the API group of the ContainerInstances that own heartbeat Leases.
const ecsGroup = "ecs.drover.dev"

// LeaseStore is the storage for coordination.k8s.io/v1 leases. With an active liveness.Renewals,
// a container instance's renewal that only moves spec.renewTime is kept in memory instead of
// written (see package liveness), and reads show the latest renewal.
type LeaseStore struct {
	*store
	renewals *liveness.Renewals
}

// NewLeaseStore returns the storage for coordination.k8s.io/v1 leases. renewals may be nil.
func NewLeaseStore(optsGetter generic.RESTOptionsGetter, renewals *liveness.Renewals) (*LeaseStore, error) {
	s, err := newStore(storeSpec{
		resource: coordinationv1.Resource("leases"), singular: "lease",
		newFunc: func() runtime.Object { return &coordinationv1.Lease{} },
		newList: func() runtime.Object { return &coordinationv1.LeaseList{} },
		strategy: &strategy{
			ObjectTyper: Scheme, NameGenerator: names.SimpleNameGenerator, namespaced: true,
			nameValidation: apivalidation.NameIsDNSSubdomain,
			validate:       validateLease,
		},
		fields: func(obj runtime.Object) fields.Set {
			l := obj.(*coordinationv1.Lease)
			holder := ""
			if l.Spec.HolderIdentity != nil {
				holder = *l.Spec.HolderIdentity
			}
			return objectFields(&l.ObjectMeta, true, fields.Set{"spec.holderIdentity": holder})
		},
		table: &table{
			columns: []metav1.TableColumnDefinition{nameColumn(),
				{Name: "Holder", Type: "string", Description: "The current holder of the lease."}, ageColumn()},
			row: func(obj runtime.Object) []interface{} {
				l := obj.(*coordinationv1.Lease)
				holder := ""
				if l.Spec.HolderIdentity != nil {
					holder = *l.Spec.HolderIdentity
				}
				return []interface{}{l.Name, holder, age(l.CreationTimestamp)}
			},
		},
	}, optsGetter)
	if err != nil {
		return nil, err
	}
	return &LeaseStore{store: s, renewals: renewals}, nil
}

func validateLease(obj runtime.Object) field.ErrorList {
	l := obj.(*coordinationv1.Lease)
	var errs field.ErrorList
	if l.Spec.LeaseDurationSeconds != nil && *l.Spec.LeaseDurationSeconds <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("spec", "leaseDurationSeconds"), *l.Spec.LeaseDurationSeconds, "must be greater than 0"))
	}
	if l.Spec.LeaseTransitions != nil && *l.Spec.LeaseTransitions < 0 {
		errs = append(errs, field.Invalid(field.NewPath("spec", "leaseTransitions"), *l.Spec.LeaseTransitions, "must be greater than or equal to 0"))
	}
	return errs
}

// Get implements rest.Getter, with the latest renewal kept in memory.
func (s *LeaseStore) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	obj, err := s.store.Get(ctx, name, options)
	if err != nil || !s.renewals.Active() {
		return obj, err
	}
	if l, ok := obj.(*coordinationv1.Lease); ok {
		return s.latest(l), nil
	}
	return obj, nil
}

// List implements rest.Lister, with the latest renewals kept in memory.
func (s *LeaseStore) List(ctx context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	obj, err := s.store.List(ctx, options)
	if err != nil || !s.renewals.Active() {
		return obj, err
	}
	if list, ok := obj.(*coordinationv1.LeaseList); ok {
		for i := range list.Items {
			// The items are copies of the stored objects' structs, so replacing a pointer in one
			// leaves the stored object as it is.
			if r, ok := s.newer(&list.Items[i]); ok {
				list.Items[i].Spec.RenewTime = &metav1.MicroTime{Time: r}
			}
		}
	}
	return obj, nil
}

// Update implements rest.Updater. An instance's renewal is kept in memory when package liveness
// allows it; everything else is written as usual.
func (s *LeaseStore) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc,
	updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	if s.renewals.Active() && len(options.DryRun) == 0 {
		if obj, ok, err := s.absorb(ctx, name, objInfo, updateValidation); ok || err != nil {
			return obj, false, err
		}
	}
	obj, created, err := s.store.Update(ctx, name, objInfo, createValidation, updateValidation, forceAllowCreate, options)
	if l, ok := obj.(*coordinationv1.Lease); err == nil && ok && instanceLease(l) && l.Spec.RenewTime != nil {
		s.renewals.Written(types.NamespacedName{Namespace: l.Namespace, Name: l.Name}, l.UID, l.Spec.RenewTime.Time)
	}
	return obj, created, err
}

// Delete implements rest.GracefulDeleter and forgets the Lease's renewals.
func (s *LeaseStore) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	obj, deleted, err := s.store.Delete(ctx, name, deleteValidation, options)
	if err == nil {
		ns, _ := genericapirequest.NamespaceFrom(ctx)
		s.renewals.Forget(types.NamespacedName{Namespace: ns, Name: name})
	}
	return obj, deleted, err
}

// absorb keeps the update in memory when it only renews an instance's Lease and package
// liveness allows it. ok false with a nil error means the update is to be written.
func (s *LeaseStore) absorb(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, updateValidation rest.ValidateObjectUpdateFunc) (runtime.Object, bool, error) {
	rv := ""
	if p := objInfo.Preconditions(); p != nil && p.ResourceVersion != nil {
		rv = *p.ResourceVersion
	}
	stored, seen, ok := s.renewable(ctx, name, rv)
	if !ok {
		return nil, false, nil
	}
	obj, err := objInfo.UpdatedObject(ctx, seen.DeepCopy())
	if err != nil {
		return nil, false, nil
	}
	updated, ok := obj.(*coordinationv1.Lease)
	if !ok || !onlyRenews(updated, stored, seen) {
		return nil, false, nil
	}
	if updateValidation != nil {
		if err := updateValidation(ctx, updated, seen); err != nil {
			return nil, false, err
		}
	}
	if !s.record(stored, updated) {
		return nil, false, nil
	}
	return updated, true, nil
}

// renewable returns the Lease name as the watch cache holds it (stored) and as its holder last saw
// it (seen: with the renewal kept in memory), when it is an instance's heartbeat Lease. seen is
// only to be read. rv is the resourceVersion the update carries: when the cache has not caught up
// with it yet (the renewal before was written a moment ago), the read waits for the cache, a few
// seconds at most. Without the wait, a lagging cache made every renewal a write, each write made
// the cache lag more, and at 5,000 instances thousands of renewals ended up waiting on etcd.
func (s *LeaseStore) renewable(ctx context.Context, name, rv string) (stored, seen *coordinationv1.Lease, ok bool) {
	// The watch cache's copy: the same object the store would update.
	cur, err := s.store.Get(ctx, name, &metav1.GetOptions{ResourceVersion: "0"})
	if err != nil {
		return nil, nil, false
	}
	if m, merr := meta.Accessor(cur); merr == nil && rv != "" && rv != "0" && m.GetResourceVersion() != rv {
		// Not older than rv, from the cache.
		if cur, err = s.store.Get(ctx, name, &metav1.GetOptions{ResourceVersion: rv}); err != nil {
			return nil, nil, false
		}
	}
	stored, ok = cur.(*coordinationv1.Lease)
	if !ok || !instanceLease(stored) || stored.Spec.RenewTime == nil {
		return nil, nil, false
	}
	return stored, s.latest(stored), true
}

// onlyRenews reports whether updated, written over stored, would change nothing but the renewal
// its holder saw (seen).
func onlyRenews(updated, stored, seen *coordinationv1.Lease) bool {
	return updated.Spec.RenewTime != nil && updated.ResourceVersion == stored.ResourceVersion && onlyRenewed(updated, seen)
}

// keep records updated, a renewal of stored, in memory when it only renews and package liveness
// allows it; false means it is to be written.
func (s *LeaseStore) keep(stored, seen, updated *coordinationv1.Lease) bool {
	return onlyRenews(updated, stored, seen) && s.record(stored, updated)
}

// record records updated, known to only renew stored, in memory when package liveness allows it.
func (s *LeaseStore) record(stored, updated *coordinationv1.Lease) bool {
	key := types.NamespacedName{Namespace: stored.Namespace, Name: stored.Name}
	return s.renewals.Absorb(key, stored.UID, stored.Spec.RenewTime.Time, updated.Spec.RenewTime.Time)
}

// latest returns l with the renewal kept in memory, a copy when that is newer, else l itself.
func (s *LeaseStore) latest(l *coordinationv1.Lease) *coordinationv1.Lease {
	r, ok := s.newer(l)
	if !ok {
		return l
	}
	l = l.DeepCopy()
	l.Spec.RenewTime = &metav1.MicroTime{Time: r}
	return l
}

// newer returns the renewal kept in memory for l when it is later than l's renewTime.
func (s *LeaseStore) newer(l *coordinationv1.Lease) (time.Time, bool) {
	var stored time.Time
	if l.Spec.RenewTime != nil {
		stored = l.Spec.RenewTime.Time
	}
	return s.renewals.Newer(types.NamespacedName{Namespace: l.Namespace, Name: l.Name}, l.UID, stored)
}

// instanceLease reports whether l is a container instance's heartbeat Lease: owned by the
// ContainerInstance of the same name.
func instanceLease(l *coordinationv1.Lease) bool {
	for _, ref := range l.OwnerReferences {
		if ref.Kind == "ContainerInstance" && ref.Name == l.Name && strings.HasPrefix(ref.APIVersion, ecsGroup+"/") {
			return true
		}
	}
	return false
}

// onlyRenewed reports whether updated differs from old in nothing but spec.renewTime and the
// times of its managed fields entries.
func onlyRenewed(updated, old *coordinationv1.Lease) bool {
	if len(updated.ManagedFields) != len(old.ManagedFields) {
		return false
	}
	for i := range updated.ManagedFields {
		a, b := updated.ManagedFields[i], old.ManagedFields[i]
		a.Time, b.Time = nil, nil
		if !equality.Semantic.DeepEqual(a, b) {
			return false
		}
	}
	a, b := *updated, *old
	a.TypeMeta, b.TypeMeta = metav1.TypeMeta{}, metav1.TypeMeta{}
	a.ManagedFields, b.ManagedFields = nil, nil
	a.Spec.RenewTime = b.Spec.RenewTime
	return equality.Semantic.DeepEqual(a, b)
}
