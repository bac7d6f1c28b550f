package apiserver

import (
	"fmt"
	"net/url"

	"k8s.io/apiserver/pkg/registry/generic"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/util/webhook"

	"github.com/drover-dev/drover/internal/apiserver/builtin"
)

// builtinRESTOptionsGetter stores the built-in kinds as their served version (no internal types).
func builtinRESTOptionsGetter(etcdOpts genericoptions.EtcdOptions, c *genericapiserver.RecommendedConfig) generic.RESTOptionsGetter {
	etcdOpts.StorageConfig.Codec = builtin.StorageCodec()
	etcdOpts.StorageConfig.StorageObjectCountTracker = c.StorageObjectCountTracker
	return etcdOpts.CreateRESTOptionsGetter(&genericoptions.SimpleStorageFactory{StorageConfig: etcdOpts.StorageConfig}, c.ResourceTransformers)
}

// noServices resolves no Kubernetes Services: droverd has none, so CRD conversion webhooks must use URLs.
type noServices struct{}

func (noServices) ResolveEndpoint(namespace, name string, port int32) (*url.URL, error) {
	return nil, fmt.Errorf("service %s/%s: droverd does not serve Services; give conversion webhooks a URL", namespace, name)
}

func identityAuthResolverWrapper(r webhook.AuthenticationInfoResolver) webhook.AuthenticationInfoResolver {
	return r
}
