package apiserver

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
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

// instanceLookup answers from a watch cache of ContainerInstances, and from storage when the cache
// has not seen an instance yet (one registered a moment ago).
type instanceLookup struct {
	cache cache.Cache
	live  client.Reader
}

// InstanceUID implements auth.InstanceLookup.
func (l *instanceLookup) InstanceUID(ctx context.Context, namespace, name string) (string, bool, error) {
	ci := &ecsv1alpha1.ContainerInstance{}
	err := l.cache.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, ci)
	if apierrors.IsNotFound(err) {
		err = l.live.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, ci)
	}
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

// instanceIdentitiesHook starts accepting container instance identities once droverd can look
// instances up.
func instanceIdentitiesHook(z *auth.Authorizer) genericapiserver.PostStartHookFunc {
	return func(hc genericapiserver.PostStartHookContext) error {
		live, err := client.New(hc.LoopbackClientConfig, client.Options{Scheme: instanceScheme})
		if err != nil {
			return err
		}
		c, err := startCache(hc, &ecsv1alpha1.ContainerInstance{})
		if err != nil {
			return err
		}
		z.SetInstanceLookup(&instanceLookup{cache: c, live: live})
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
