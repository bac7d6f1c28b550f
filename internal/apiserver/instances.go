package apiserver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	droveradmission "github.com/drover-dev/drover/internal/apiserver/admission"
	"github.com/drover-dev/drover/internal/apiserver/auth"
	"github.com/drover-dev/drover/internal/apiserver/tunnel"
)

var instanceScheme = runtime.NewScheme()

func init() {
	utilruntime.Must(ecsv1alpha1.AddToScheme(instanceScheme))
}

// instanceLookup answers from an index of ContainerInstance UIDs that an informer keeps, and from
// storage when the index has not seen an instance yet (one registered a moment ago). Every request
// of every instance is authorized with it, so a lookup takes no lock and copies nothing: reading
// the informer's store would copy the whole object, and its read lock queues behind the informer's
// writes, so that under load thousands of requests waited on one lock.
type instanceLookup struct {
	uids sync.Map // namespace/name -> instanceEntry
	live client.Reader
}

type instanceEntry struct {
	uid      types.UID
	deleting bool
}

// InstanceUID implements auth.InstanceLookup.
func (l *instanceLookup) InstanceUID(ctx context.Context, namespace, name string) (string, bool, error) {
	if v, ok := l.uids.Load(namespace + "/" + name); ok {
		e := v.(instanceEntry)
		return string(e.uid), !e.deleting, nil
	}
	ci := &ecsv1alpha1.ContainerInstance{}
	err := l.live.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, ci)
	if apierrors.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if !ci.DeletionTimestamp.IsZero() {
		return "", false, nil
	}
	return string(ci.UID), true, nil
}

// set records an instance the informer saw added or updated; most updates change nothing here.
func (l *instanceLookup) set(obj any) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	key, e := m.GetNamespace()+"/"+m.GetName(), instanceEntry{uid: m.GetUID(), deleting: m.GetDeletionTimestamp() != nil}
	if v, ok := l.uids.Load(key); ok && v.(instanceEntry) == e {
		return
	}
	l.uids.Store(key, e)
}

// forget drops an instance the informer saw deleted.
func (l *instanceLookup) forget(obj any) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if m, ok := obj.(metav1.Object); ok {
		l.uids.Delete(m.GetNamespace() + "/" + m.GetName())
	}
}

// instanceIdentitiesHook starts accepting container instance identities once droverd can look
// instances up.
func instanceIdentitiesHook(z *auth.Authorizer) genericapiserver.PostStartHookFunc {
	return func(hc genericapiserver.PostStartHookContext) error {
		live, err := client.New(hc.LoopbackClientConfig, client.Options{Scheme: instanceScheme})
		if err != nil {
			return err
		}
		// Only the metadata: the UID and whether the instance is being deleted is all a lookup reads.
		instances := &metav1.PartialObjectMetadata{}
		instances.SetGroupVersionKind(ecsv1alpha1.GroupVersion.WithKind("ContainerInstance"))
		c, err := startCache(hc, instances)
		if err != nil {
			return err
		}
		inf, err := c.GetInformer(hc.Context, instances)
		if err != nil {
			return err
		}
		l := &instanceLookup{live: live}
		reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    l.set,
			UpdateFunc: func(_, obj any) { l.set(obj) },
			DeleteFunc: l.forget,
		})
		if err != nil {
			return err
		}
		if !toolscache.WaitForCacheSync(hc.Context.Done(), reg.HasSynced) {
			return errors.New("the container instance index did not sync")
		}
		z.SetInstanceLookup(l)
		return nil
	}
}

// taskResolutionHook lets the task resolution admission plugin read TaskDefinitions and their
// revisions.
func taskResolutionHook(p *droveradmission.TaskResolution) genericapiserver.PostStartHookFunc {
	return func(hc genericapiserver.PostStartHookContext) error {
		c, err := startCache(hc, &ecsv1alpha1.TaskDefinition{}, &ecsv1alpha1.TaskDefinitionRevision{})
		if err != nil {
			return err
		}
		p.SetReader(c)
		return nil
	}
}

// startCache starts an informer cache of objs over the loopback connection and returns once it
// has synced. The CRDs are installed by another post-start hook, so it first waits until they are
// served; the informers are registered before the cache starts, so the sync waits for them.
func startCache(hc genericapiserver.PostStartHookContext, objs ...client.Object) (cache.Cache, error) {
	byObject := map[client.Object]cache.ByObject{}
	for _, o := range objs {
		byObject[o] = cache.ByObject{}
	}
	var c cache.Cache
	if err := wait.PollUntilContextTimeout(hc.Context, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		var err error
		if c, err = cache.New(hc.LoopbackClientConfig, cache.Options{Scheme: instanceScheme, ByObject: byObject}); err != nil {
			return false, nil
		}
		for _, o := range objs {
			if _, err := c.GetInformer(ctx, o); err != nil {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return nil, fmt.Errorf("waiting for the %T resource to be served: %w", objs[0], err)
	}
	go func() { _ = c.Start(hc.Context) }()
	if !c.WaitForCacheSync(hc.Context) {
		return nil, fmt.Errorf("the %T cache did not sync", objs[0])
	}
	return c, nil
}

// tunnelsHook lets the tunnel server read Tasks and ContainerInstances, and closes the tunnels
// when droverd stops: their connections were taken over from the HTTP server, which no longer
// tracks them.
func tunnelsHook(tunnels *tunnel.Server) genericapiserver.PostStartHookFunc {
	return func(hc genericapiserver.PostStartHookContext) error {
		c, err := client.New(hc.LoopbackClientConfig, client.Options{Scheme: instanceScheme})
		if err != nil {
			return err
		}
		tunnels.SetClient(c)
		context.AfterFunc(hc.Context, tunnels.Close)
		return nil
	}
}
