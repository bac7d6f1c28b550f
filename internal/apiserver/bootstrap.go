package apiserver

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/drover-dev/drover/config/crd"
	"github.com/drover-dev/drover/internal/apiserver/builtin"
)

// bootstrapHook creates the namespaces droverd needs and installs or updates the CRDs, returning
// (and so letting /readyz pass) only once every CRD is established and answering requests.
func bootstrapHook(hc genericapiserver.PostStartHookContext) error {
	ctx := hc.Context
	kube, err := kubernetes.NewForConfig(hc.LoopbackClientConfig)
	if err != nil {
		return err
	}
	for _, name := range []string{metav1.NamespaceDefault, builtin.SystemNamespace} {
		if err := retry(ctx, func() error {
			_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		}); err != nil {
			return fmt.Errorf("creating namespace %s: %w", name, err)
		}
	}
	crds, err := crd.CustomResourceDefinitions()
	if err != nil {
		return err
	}
	ext, err := apiextensionsclient.NewForConfig(hc.LoopbackClientConfig)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(hc.LoopbackClientConfig)
	if err != nil {
		return err
	}
	for _, want := range crds {
		if err := retry(ctx, func() error { return applyCRD(ctx, ext, want) }); err != nil {
			return fmt.Errorf("installing CRD %s: %w", want.Name, err)
		}
	}
	for _, want := range crds {
		if err := waitServed(ctx, ext, dyn, want); err != nil {
			return fmt.Errorf("waiting for CRD %s: %w", want.Name, err)
		}
	}
	return nil
}

func applyCRD(ctx context.Context, ext apiextensionsclient.Interface, want *apiextensionsv1.CustomResourceDefinition) error {
	client := ext.ApiextensionsV1().CustomResourceDefinitions()
	have, err := client.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = client.Create(ctx, want.DeepCopy(), metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	// The server defaults conversion to None; compare with that filled in, or every start rewrites
	// every CRD (and rebuilds its OpenAPI) for nothing.
	want = want.DeepCopy()
	if want.Spec.Conversion == nil {
		want.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.NoneConverter}
	}
	if apiequality.Semantic.DeepEqual(have.Spec, want.Spec) && apiequality.Semantic.DeepEqual(have.Labels, want.Labels) {
		return nil
	}
	have.Spec = want.Spec
	have.Labels = want.Labels
	_, err = client.Update(ctx, have, metav1.UpdateOptions{})
	return err
}

// waitServed waits until the CRD is Established, past the 2 s during which apiextensions delays
// the first creates after establishment, and its resource answers a list.
func waitServed(ctx context.Context, ext apiextensionsclient.Interface, dyn dynamic.Interface, want *apiextensionsv1.CustomResourceDefinition) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		have, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		var established *apiextensionsv1.CustomResourceDefinitionCondition
		for i := range have.Status.Conditions {
			if c := &have.Status.Conditions[i]; c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				established = c
			}
		}
		if established == nil || time.Since(established.LastTransitionTime.Time) < 2*time.Second {
			return false, nil
		}
		gvr := schema.GroupVersionResource{Group: have.Spec.Group, Version: storageVersion(have), Resource: have.Spec.Names.Plural}
		_, err = dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	})
}

func storageVersion(c *apiextensionsv1.CustomResourceDefinition) string {
	for _, v := range c.Spec.Versions {
		if v.Storage {
			return v.Name
		}
	}
	return c.Spec.Versions[0].Name
}

// retry retries fn on errors for up to a minute; the server may still be settling just after start.
func retry(ctx context.Context, fn func() error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		last = fn()
		return last == nil, nil
	})
	if err != nil && last != nil {
		return last
	}
	return err
}
