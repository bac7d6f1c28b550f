package apiserver

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/drover-dev/drover/internal/apiserver/builtin"
)

// namespaceController empties namespaces that are being deleted, then finalizes and removes them.
type namespaceController struct {
	kube      kubernetes.Interface
	dynamic   dynamic.Interface
	discovery discovery.DiscoveryInterface
	lister    cache.Indexer
	queue     workqueue.TypedRateLimitingInterface[string]
}

func namespaceControllerHook(hc genericapiserver.PostStartHookContext) error {
	cfg := hc.LoopbackClientConfig
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(kube, 10*time.Minute)
	inf := factory.Core().V1().Namespaces().Informer()
	c := &namespaceController{
		kube: kube, dynamic: dyn, discovery: kube.Discovery(), lister: inf.GetIndexer(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](200*time.Millisecond, 10*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespace"}),
	}
	enqueue := func(obj interface{}) {
		if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
			c.queue.Add(ns.Name)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj interface{}) { enqueue(obj) },
	}); err != nil {
		return err
	}
	factory.Start(hc.Done())
	go func() {
		<-hc.Done()
		c.queue.ShutDown()
	}()
	go wait.UntilWithContext(hc.Context, c.worker, time.Second)
	return nil
}

func (c *namespaceController) worker(ctx context.Context) {
	for {
		name, shutdown := c.queue.Get()
		if shutdown {
			return
		}
		err := c.sync(ctx, name)
		if err != nil {
			klog.FromContext(ctx).V(2).Info("namespace not yet empty", "namespace", name, "reason", err.Error())
			c.queue.AddRateLimited(name)
		} else {
			c.queue.Forget(name)
		}
		c.queue.Done(name)
	}
}

// sync deletes everything in the namespace; once nothing is left it drops the finalizer and deletes it.
func (c *namespaceController) sync(ctx context.Context, name string) error {
	ns, err := c.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp == nil {
		return nil
	}
	if slices.Contains(ns.Spec.Finalizers, builtin.FinalizerKubernetes) {
		remaining, err := c.deleteContent(ctx, name)
		if err != nil {
			return err
		}
		if remaining > 0 {
			return fmt.Errorf("%d objects remain", remaining)
		}
		ns.Spec.Finalizers = slices.DeleteFunc(ns.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == builtin.FinalizerKubernetes })
		if ns, err = c.kube.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	if len(ns.Spec.Finalizers) > 0 {
		return nil
	}
	err = c.kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &ns.UID}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// deleteContent issues a delete-collection for every namespaced resource and counts what is left.
func (c *namespaceController) deleteContent(ctx context.Context, namespace string) (int, error) {
	lists, discoveryErr := c.discovery.ServerPreferredNamespacedResources()
	remaining := 0
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if !slices.Contains(r.Verbs, "deletecollection") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			client := c.dynamic.Resource(gv.WithResource(r.Name)).Namespace(namespace)
			if err := client.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
				utilruntime.HandleErrorWithContext(ctx, err, "deleting collection", "resource", r.Name, "namespace", namespace)
			}
			left, err := client.List(ctx, metav1.ListOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return 0, err
			}
			remaining += len(left.Items)
		}
	}
	if discoveryErr != nil {
		return remaining, fmt.Errorf("discovery: %w", discoveryErr)
	}
	return remaining, nil
}
