// Package cacheview reads the objects of a controller-runtime cache in place. A list through the
// cache's client copies every object it returns into the list's items, even with
// client.UnsafeDisableDeepCopy; a controller that reads every instance or task of a namespace on
// each pass, at thousands of them, spends much of its time and garbage on those copies. A View
// hands out the cache's own objects instead, which the caller must not modify.
package cacheview

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// View reads the cached objects of one type. Objects it returns are shared with the cache and
// with every other reader: read them, copy them before changing anything.
type View[T client.Object] struct {
	indexer toolscache.Indexer
}

// New returns a View of the objects of obj's type in c. It fails when c does not keep them in an
// indexer it exposes, as a cache restricted to several namespaces does not.
func New[T client.Object](ctx context.Context, c cache.Cache, obj T) (*View[T], error) {
	inf, err := c.GetInformer(ctx, obj)
	if err != nil {
		return nil, err
	}
	src, ok := inf.(interface{ GetIndexer() toolscache.Indexer })
	if !ok {
		return nil, fmt.Errorf("the cache's informer for %T (%T) exposes no indexer", obj, inf)
	}
	return &View[T]{indexer: src.GetIndexer()}, nil
}

// List returns the cached objects of namespace, in no particular order.
func (v *View[T]) List(namespace string) ([]T, error) {
	items, err := v.indexer.ByIndex(toolscache.NamespaceIndex, namespace)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(items))
	for _, item := range items {
		if obj, ok := item.(T); ok {
			out = append(out, obj)
		}
	}
	return out, nil
}

// List returns the objects of namespace: through v in place, or when v is nil (no View could be
// had) through c into list, as pointers to list's items.
func List[T client.Object](ctx context.Context, v *View[T], c client.Reader, list client.ObjectList, namespace string) ([]T, error) {
	if v != nil {
		return v.List(namespace)
	}
	if err := c.List(ctx, list, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(items))
	for _, item := range items {
		obj, ok := item.(T)
		if !ok {
			return nil, fmt.Errorf("listing %T: an item is %T", list, item)
		}
		out = append(out, obj)
	}
	return out, nil
}
