package builtin

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage/names"
)

// strategy is the create/update/delete strategy shared by the built-in kinds; the hooks carry
// what differs between them.
type strategy struct {
	runtime.ObjectTyper
	names.NameGenerator
	namespaced bool
	// nameValidation validates metadata.name.
	nameValidation apivalidation.ValidateNameFunc
	// prepareCreate and prepareUpdate clear or default fields clients may not set.
	prepareCreate func(obj runtime.Object)
	prepareUpdate func(obj, old runtime.Object)
	// validate checks the object beyond its metadata.
	validate func(obj runtime.Object) field.ErrorList
}

func (s *strategy) NamespaceScoped() bool { return s.namespaced }

func (s *strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	if s.prepareCreate != nil {
		s.prepareCreate(obj)
	}
}

func (s *strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	if s.prepareUpdate != nil {
		s.prepareUpdate(obj, old)
	}
}

func (s *strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	om := objectMeta(obj)
	if om == nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), fmt.Errorf("%T has no metadata", obj))}
	}
	errs := apivalidation.ValidateObjectMeta(om, s.namespaced, s.nameValidation, field.NewPath("metadata"))
	if s.validate != nil {
		errs = append(errs, s.validate(obj)...)
	}
	return errs
}

func (s *strategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	newMeta, oldMeta := objectMeta(obj), objectMeta(old)
	if newMeta == nil || oldMeta == nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), fmt.Errorf("%T has no metadata", obj))}
	}
	errs := apivalidation.ValidateObjectMetaUpdate(newMeta, oldMeta, field.NewPath("metadata"))
	if s.validate != nil {
		errs = append(errs, s.validate(obj)...)
	}
	return errs
}

func (s *strategy) WarningsOnCreate(context.Context, runtime.Object) []string { return nil }
func (s *strategy) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}
func (s *strategy) Canonicalize(runtime.Object)                   {}
func (s *strategy) AllowCreateOnUpdate(context.Context) bool      { return false }
func (s *strategy) AllowUnconditionalUpdate(context.Context) bool { return true }

// storeSpec describes one built-in resource for newStore.
type storeSpec struct {
	resource   schema.GroupResource
	singular   string
	newFunc    func() runtime.Object
	newList    func() runtime.Object
	strategy   *strategy
	fields     func(obj runtime.Object) fields.Set
	table      rest.TableConvertor
	ttl        time.Duration
	shortNames []string
}

// store is a registry.Store that also names its short names for kubectl.
type store struct {
	*registry.Store
	shortNames []string
}

// ShortNames implements rest.ShortNamesProvider.
func (s *store) ShortNames() []string { return s.shortNames }

func newStore(spec storeSpec, optsGetter generic.RESTOptionsGetter) (*store, error) {
	s := &registry.Store{
		NewFunc:                   spec.newFunc,
		NewListFunc:               spec.newList,
		DefaultQualifiedResource:  spec.resource,
		SingularQualifiedResource: schema.GroupResource{Group: spec.resource.Group, Resource: spec.singular},
		CreateStrategy:            spec.strategy,
		UpdateStrategy:            spec.strategy,
		DeleteStrategy:            spec.strategy,
		TableConvertor:            spec.table,
	}
	if spec.ttl > 0 {
		ttl := uint64(spec.ttl.Seconds())
		s.TTLFunc = func(runtime.Object, uint64, bool) (uint64, error) { return ttl, nil }
	}
	attrs := func(obj runtime.Object) (labels.Set, fields.Set, error) {
		accessor, err := meta.Accessor(obj)
		if err != nil {
			return nil, nil, err
		}
		return labels.Set(accessor.GetLabels()), spec.fields(obj), nil
	}
	if err := s.CompleteWithOptions(&generic.StoreOptions{RESTOptions: optsGetter, AttrFunc: attrs}); err != nil {
		return nil, fmt.Errorf("storage for %s: %w", spec.resource, err)
	}
	return &store{Store: s, shortNames: spec.shortNames}, nil
}

// table builds a TableConvertor from column definitions and a row function.
type table struct {
	columns []metav1.TableColumnDefinition
	row     func(obj runtime.Object) []interface{}
}

func (t *table) ConvertToTable(_ context.Context, object runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	out := &metav1.Table{ColumnDefinitions: t.columns}
	add := func(obj runtime.Object) {
		out.Rows = append(out.Rows, metav1.TableRow{Cells: t.row(obj), Object: runtime.RawExtension{Object: obj}})
	}
	if meta.IsListType(object) {
		if err := meta.EachListItem(object, func(obj runtime.Object) error { add(obj); return nil }); err != nil {
			return nil, err
		}
	} else {
		add(object)
	}
	if l, err := meta.ListAccessor(object); err == nil {
		out.ResourceVersion = l.GetResourceVersion()
		out.Continue = l.GetContinue()
		out.RemainingItemCount = l.GetRemainingItemCount()
	} else if o, err := meta.CommonAccessor(object); err == nil {
		out.ResourceVersion = o.GetResourceVersion()
	}
	return out, nil
}

func nameColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: "Name of the object."}
}

func ageColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: "Time since the object was created."}
}

func age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}

func joinSorted(s []string) string {
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// objectMeta returns the object's ObjectMeta, or nil when it has none.
func objectMeta(obj runtime.Object) *metav1.ObjectMeta {
	a, ok := obj.(metav1.ObjectMetaAccessor)
	if !ok {
		return nil
	}
	om, _ := a.GetObjectMeta().(*metav1.ObjectMeta)
	return om
}
