package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/apiserver/builtin"
	"github.com/drover-dev/drover/internal/droverd"
	"github.com/drover-dev/drover/internal/manager"
	"github.com/drover-dev/drover/test/framework"
)

// TestTwoServersShareExternalEtcd runs two droverd processes against the embedded etcd of a third:
// both serve the same objects, and exactly one of them leads the controllers.
func TestTwoServersShareExternalEtcd(t *testing.T) {
	etcdHost := framework.StartProcess(t, framework.NewOptions(t, framework.WithoutControllers()))
	pki := filepath.Join(etcdHost.DataDir, "pki")
	external := func(o *droverd.Options) {
		o.EtcdServers = []string{"https://127.0.0.1:" + itoa(etcdHost.Options.EtcdClientPort)}
		o.EtcdCAFile = filepath.Join(pki, "ca.crt")
		o.EtcdCertFile = filepath.Join(pki, "etcd-client.crt")
		o.EtcdKeyFile = filepath.Join(pki, "etcd-client.key")
		// Servers of one control plane share its CA, so clients trust every one of them.
		copyDir(t, pki, filepath.Join(o.DataDir, "pki"))
	}
	a := framework.StartProcess(t, framework.NewOptions(t, external))
	b := framework.StartProcess(t, framework.NewOptions(t, external))
	ctx := t.Context()

	objs := samples(t)
	for _, u := range objs {
		require.NoError(t, a.Client.Create(ctx, u))
	}
	for _, u := range objs {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(u.GroupVersionKind())
		require.Eventually(t, func() bool {
			return b.Client.Get(ctx, client.ObjectKeyFromObject(u), got) == nil
		}, 30*time.Second, 100*time.Millisecond, "server b serves %s %s created through a", u.GetKind(), u.GetName())
		// The same object, not a copy: controllers may have written its status since.
		require.Equal(t, u.GetUID(), got.GetUID())
		require.Equal(t, u.Object["spec"], got.Object["spec"])
	}

	leaders := func() []*framework.Process {
		var out []*framework.Process
		for _, p := range []*framework.Process{a, b} {
			if isLeader(t, p.Config) {
				out = append(out, p)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(leaders()) == 1 }, time.Minute, 500*time.Millisecond, "exactly one server leads the controllers")
	lease := &coordinationv1.Lease{}
	require.NoError(t, a.Client.Get(ctx, client.ObjectKey{Namespace: builtin.SystemNamespace, Name: manager.LeaderElectionID}, lease))
	require.NotNil(t, lease.Spec.HolderIdentity)
	holder := *lease.Spec.HolderIdentity

	// When the leader goes away, the other server takes the Lease over.
	leader := leaders()[0]
	other := a
	if leader == a {
		other = b
	}
	require.NoError(t, leader.Stop(t, time.Minute))
	require.Eventually(t, func() bool { return isLeader(t, other.Config) }, time.Minute, 500*time.Millisecond, "the remaining server takes over")
	require.NoError(t, other.Client.Get(ctx, client.ObjectKey{Namespace: builtin.SystemNamespace, Name: manager.LeaderElectionID}, lease))
	require.NotEqual(t, holder, *lease.Spec.HolderIdentity)
}

// TestControllersOnlyAgainstAnotherServer runs one droverd with its controllers off as "the cluster"
// and a second droverd in --controllers-only mode against it.
func TestControllersOnlyAgainstAnotherServer(t *testing.T) {
	cluster := framework.StartProcess(t, framework.NewOptions(t, framework.WithoutControllers()))
	ctx := t.Context()
	lease := &coordinationv1.Lease{}
	key := client.ObjectKey{Namespace: builtin.SystemNamespace, Name: manager.LeaderElectionID}

	cmd := framework.Command(t, "droverd", "--controllers-only", "--kubeconfig", cluster.Kubeconfig)
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool {
		return cluster.Client.Get(ctx, key, lease) == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != ""
	}, time.Minute, 200*time.Millisecond, "the controllers-only process takes the controllers' Lease in the cluster")

	// Its controllers act on the cluster's objects: a TaskDefinition gets its first revision.
	td := &ecsv1alpha1.TaskDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "default"},
		Spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
			Name: "app", Image: "example.com/api:1", Memory: ptr.To[int32](64),
		}}},
	}
	require.NoError(t, cluster.Client.Create(ctx, td))
	rev := &ecsv1alpha1.TaskDefinitionRevision{}
	require.Eventually(t, func() bool {
		return cluster.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "api-1"}, rev) == nil
	}, time.Minute, 200*time.Millisecond, "the controllers-only process creates revision api-1 in the cluster")
	require.Equal(t, "example.com/api:1", rev.Spec.TaskDefinition.ContainerDefinitions[0].Image)
}

var leaderMetric = regexp.MustCompile(`(?m)^leader_election_master_status\{name="` + manager.LeaderElectionID + `"\} 1$`)

func isLeader(t *testing.T, cfg *rest.Config) bool {
	t.Helper()
	tr, err := rest.TransportFor(cfg)
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(cfg.Host + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && leaderMetric.Match(body)
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(to, 0o700))
	entries, err := os.ReadDir(from)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, e.Name()), data, 0o600))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
