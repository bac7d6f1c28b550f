package apiserver

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	"k8s.io/client-go/tools/cache"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// taskInstanceField is the field every agent selects its Tasks by.
const taskInstanceField = "spec.containerInstance"

var tasksResource = schema.GroupResource{Group: ecsv1alpha1.GroupVersion.Group, Resource: "tasks"}

// indexedTasks gives the Tasks' watch cache an index on spec.containerInstance, as Kubernetes gives
// the Pods' one on spec.nodeName. Every agent watches its own Tasks with the field selector
// spec.containerInstance=<instance>; without the index the watch cache hands each Task event to
// every agent's watch to filter, so that with thousands of agents the watches fall behind and are
// ended, and every agent then lists again. With it, an event goes only to the watches of the
// instance the Task is bound to (before and after the change), and such lists read the index.
//
// Custom resources get no index from apiextensions-apiserver, so this wraps the storage decorator
// of the Tasks resource: the cacher gets the trigger function and the index, and the storage marks
// selectors on the field as indexable (which Kubernetes' Pod strategy does in its predicate).
type indexedTasks struct{ generic.RESTOptionsGetter }

func (g indexedTasks) GetRESTOptions(resource schema.GroupResource, example runtime.Object) (generic.RESTOptions, error) {
	opts, err := g.RESTOptionsGetter.GetRESTOptions(resource, example)
	if err != nil || resource != tasksResource {
		return opts, err
	}
	decorate := opts.Decorator
	opts.Decorator = func(config *storagebackend.ConfigForResource, resourcePrefix string, keyFunc func(obj runtime.Object) (string, error),
		newFunc, newListFunc func() runtime.Object, getAttrs storage.AttrFunc, triggers storage.IndexerFuncs,
		indexers *cache.Indexers) (storage.Interface, factory.DestroyFunc, error) {
		if len(triggers) > 0 || (indexers != nil && len(*indexers) > 0) {
			return nil, nil, fmt.Errorf("the %s storage already has indexes; it cannot be given one on %s", tasksResource, taskInstanceField)
		}
		triggers = storage.IndexerFuncs{taskInstanceField: taskInstance}
		indexers = &cache.Indexers{storage.FieldIndex(taskInstanceField): func(obj any) ([]string, error) {
			o, ok := obj.(runtime.Object)
			if !ok {
				return nil, fmt.Errorf("indexing %T: not an object", obj)
			}
			return []string{taskInstance(o)}, nil
		}}
		s, destroy, err := decorate(config, resourcePrefix, keyFunc, newFunc, newListFunc, getAttrs, triggers, indexers)
		if err != nil {
			return s, destroy, err
		}
		return indexedSelectors{s}, destroy, nil
	}
	return opts, nil
}

// taskInstance returns the instance a Task (a custom resource, so unstructured) is bound to, or "".
func taskInstance(obj runtime.Object) string {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return ""
	}
	spec, _ := u.Object["spec"].(map[string]any)
	name, _ := spec["containerInstance"].(string)
	return name
}

// indexedSelectors marks spec.containerInstance as an indexed field in every watch and list, so
// that the watch cache serves a selector that requires one value of it from its index.
type indexedSelectors struct{ storage.Interface }

func (s indexedSelectors) Watch(ctx context.Context, key string, opts storage.ListOptions) (watch.Interface, error) {
	opts.Predicate = withInstanceIndex(opts.Predicate)
	return s.Interface.Watch(ctx, key, opts)
}

func (s indexedSelectors) GetList(ctx context.Context, key string, opts storage.ListOptions, listObj runtime.Object) error {
	opts.Predicate = withInstanceIndex(opts.Predicate)
	return s.Interface.GetList(ctx, key, opts, listObj)
}

func withInstanceIndex(p storage.SelectionPredicate) storage.SelectionPredicate {
	if !slices.Contains(p.IndexFields, taskInstanceField) {
		p.IndexFields = append(slices.Clone(p.IndexFields), taskInstanceField)
	}
	return p
}
