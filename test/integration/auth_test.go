package integration

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/drover-dev/drover/internal/apiserver"
	"github.com/drover-dev/drover/internal/apiserver/auth"
	"github.com/drover-dev/drover/test/framework"
)

func TestAuthentication(t *testing.T) {
	s := framework.Start(t, framework.WithoutControllers())
	ca, err := os.ReadFile(filepath.Join(s.DataDir, "pki", "ca.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca))
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	get := func(path string) (int, string) {
		resp, err := anon.Get(s.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, path := range []string{"/api/v1/namespaces", "/apis/ecs.drover.dev/v1alpha1/tasks", "/metrics", "/version", "/apis", "/openapi/v3"} {
		code, _ := get(path)
		require.Equal(t, http.StatusUnauthorized, code, "anonymous GET %s", path)
	}
	for _, path := range []string{"/readyz", "/healthz", "/livez"} {
		code, body := get(path)
		require.Equal(t, http.StatusOK, code, "anonymous GET %s: %s", path, body)
	}

	// A certificate from another CA is not accepted either.
	otherDir := t.TempDir()
	require.NoError(t, apiserver.WriteKubeconfig(otherDir, s.URL, filepath.Join(otherDir, "forged.kubeconfig"), "mallory", []string{auth.GroupAdmins}))
	forged := clientFor(t, filepath.Join(otherDir, "forged.kubeconfig"), s.DataDir)
	_, err = forged.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{})
	require.True(t, apierrors.IsUnauthorized(err), "forged admin certificate: %v", err)
}

func TestViewerCanReadButNotWrite(t *testing.T) {
	s := framework.Start(t, framework.WithoutControllers())
	admin, err := kubernetes.NewForConfig(s.Config)
	require.NoError(t, err)
	ctx := t.Context()
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "l", Namespace: "default"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("admin")}}
	_, err = admin.CoordinationV1().Leases("default").Create(ctx, lease, metav1.CreateOptions{})
	require.NoError(t, err)

	path := filepath.Join(t.TempDir(), "viewer.kubeconfig")
	require.NoError(t, apiserver.WriteKubeconfig(s.DataDir, s.URL, path, "vera", []string{auth.GroupViewers}))
	viewer := clientFor(t, path, s.DataDir)

	list, err := viewer.CoordinationV1().Leases("default").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	got, err := viewer.CoordinationV1().Leases("default").Get(ctx, "l", metav1.GetOptions{})
	require.NoError(t, err)
	w, err := viewer.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	w.Stop()

	_, err = viewer.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "nope"}}, metav1.CreateOptions{})
	require.True(t, apierrors.IsForbidden(err), "create: %v", err)
	got.Spec.HolderIdentity = ptr.To("viewer")
	_, err = viewer.CoordinationV1().Leases("default").Update(ctx, got, metav1.UpdateOptions{})
	require.True(t, apierrors.IsForbidden(err), "update: %v", err)
	err = viewer.CoordinationV1().Leases("default").Delete(ctx, "l", metav1.DeleteOptions{})
	require.True(t, apierrors.IsForbidden(err), "delete: %v", err)

	// Nothing the viewer tried changed anything.
	after, err := admin.CoordinationV1().Leases("default").Get(ctx, "l", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "admin", *after.Spec.HolderIdentity)
	require.Equal(t, got.ResourceVersion, after.ResourceVersion)
	_, err = admin.CoreV1().Namespaces().Get(ctx, "nope", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err))
}

// clientFor builds a clientset from a kubeconfig, trusting the CA of dataDir.
func clientFor(t *testing.T, kubeconfig, dataDir string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	require.NoError(t, err)
	ca, err := os.ReadFile(filepath.Join(dataDir, "pki", "ca.crt"))
	require.NoError(t, err)
	cfg.CAData = ca
	c, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	return c
}
