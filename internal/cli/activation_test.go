package cli

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/pki"
	"github.com/drover-dev/drover/internal/registration/wire"
	"github.com/drover-dev/drover/test/framework"
)

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := Run(t.Context(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func activations(t *testing.T, c client.Client) []ecsv1alpha1.Activation {
	t.Helper()
	var l ecsv1alpha1.ActivationList
	require.NoError(t, c.List(t.Context(), &l))
	return l.Items
}

func getActivation(t *testing.T, c client.Client, id string) *ecsv1alpha1.Activation {
	t.Helper()
	ns, name, ok := strings.Cut(id, "/")
	require.True(t, ok, "activation id %q is not <namespace>/<name>", id)
	act := &ecsv1alpha1.Activation{}
	require.NoError(t, c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, act))
	return act
}

func TestActivationCreate(t *testing.T) {
	d := framework.Start(t, framework.WithoutControllers())
	ca, err := pki.LoadOrCreateCA(filepath.Join(d.DataDir, "pki"), "drover-ca")
	require.NoError(t, err)
	require.NoError(t, d.Client.Create(t.Context(), &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "stores", Namespace: "default"}}))

	t.Run("json output for scripts", func(t *testing.T) {
		stdout, stderr, err := run(t, "--kubeconfig", d.Kubeconfig, "activation", "create", "--cluster", "stores",
			"--registration-limit", "3", "--expires", "48h", "--attribute", "store=042", "--attribute", "gpu=",
			"--description", "Store 042", "-o", "json")
		require.NoError(t, err, stderr)
		require.Empty(t, stderr, "the cluster exists, so there is no warning")

		var fields map[string]string
		require.NoError(t, json.Unmarshal([]byte(stdout), &fields), stdout)
		require.Len(t, fields, 5, stdout)
		var out activationCreated
		require.NoError(t, json.Unmarshal([]byte(stdout), &out))
		require.Regexp(t, `^default/act-[a-z0-9]+$`, out.ActivationID, "the namespace comes from the kubeconfig's context")
		require.Equal(t, d.URL, out.Server)
		require.Equal(t, ca.Hash(), out.CACertHash, "the printed hash pins droverd's CA")
		require.Equal(t, "drover-agent register --server "+d.URL+" --ca-cert-hash "+ca.Hash()+
			" --activation-id "+out.ActivationID+" --activation-code "+out.ActivationCode, out.Command)

		act := getActivation(t, d.Client, out.ActivationID)
		require.Equal(t, wire.HashCode(out.ActivationCode), act.Spec.CodeHash)
		require.Equal(t, "stores", act.Spec.Cluster)
		require.EqualValues(t, 3, act.Spec.RegistrationLimit)
		require.Equal(t, []ecsv1alpha1.Attribute{{Name: "store", Value: "042"}, {Name: "gpu"}}, act.Spec.Attributes)
		require.Equal(t, "Store 042", act.Spec.Description)
		require.WithinDuration(t, time.Now().Add(48*time.Hour), act.Spec.ExpiresAt.Time, time.Minute)
		stored, err := json.Marshal(act)
		require.NoError(t, err)
		require.NotContains(t, string(stored), out.ActivationCode, "the activation stores the code's hash, never the code")
	})

	t.Run("text output, KUBECONFIG and -n", func(t *testing.T) {
		require.NoError(t, d.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "eu"}}))
		t.Setenv("KUBECONFIG", d.Kubeconfig)
		stdout, stderr, err := run(t, "activation", "create", "--cluster", "stores", "-n", "eu")
		require.NoError(t, err, stderr)
		require.Contains(t, stderr, `cluster "stores" does not exist in namespace eu`)

		id := regexp.MustCompile(`Activation ID:\s+(eu/act-[a-z0-9]+)\n`).FindStringSubmatch(stdout)
		require.NotNil(t, id, stdout)
		code := regexp.MustCompile(`Activation code:\s+(\S+)\n`).FindStringSubmatch(stdout)
		require.NotNil(t, code, stdout)
		require.Contains(t, stdout, "cannot be shown again")
		require.Regexp(t, `Server:\s+`+regexp.QuoteMeta(d.URL)+`\n`, stdout)
		require.Regexp(t, `CA cert hash:\s+`+regexp.QuoteMeta(ca.Hash())+`\n`, stdout)
		require.Contains(t, stdout, "\n  drover-agent register --server "+d.URL+" --ca-cert-hash "+ca.Hash()+
			" --activation-id "+id[1]+" --activation-code "+code[1]+"\n")
		require.Contains(t, stdout, "hack/install-agent.sh takes the same flags")

		act := getActivation(t, d.Client, id[1])
		require.Equal(t, wire.HashCode(code[1]), act.Spec.CodeHash)
		require.EqualValues(t, 1, act.Spec.RegistrationLimit)
		require.WithinDuration(t, time.Now().Add(24*time.Hour), act.Spec.ExpiresAt.Time, time.Minute)
	})

	t.Run("bad flags are refused, naming the flag, and create nothing", func(t *testing.T) {
		before := len(activations(t, d.Client))
		for _, tc := range []struct {
			args []string
			want string
		}{
			{nil, "--cluster is required"},
			{[]string{"--cluster", "Stores!"}, "--cluster"},
			{[]string{"--cluster", "stores", "--expires", "0"}, "--expires"},
			{[]string{"--cluster", "stores", "--expires", "-1h"}, "--expires"},
			{[]string{"--cluster", "stores", "--expires", "721h"}, "--expires 721h is out of range"},
			{[]string{"--cluster", "stores", "--expires", "31d"}, "--expires"},
			{[]string{"--cluster", "stores", "--expires", "soon"}, "--expires"},
			{[]string{"--cluster", "stores", "--registration-limit", "0"}, "--registration-limit 0 is out of range 1-1000"},
			{[]string{"--cluster", "stores", "--registration-limit", "1001"}, "--registration-limit 1001"},
			{[]string{"--cluster", "stores", "--attribute", "store"}, `--attribute "store" must be NAME=VALUE`},
			{[]string{"--cluster", "stores", "--attribute", "=042"}, `--attribute "=042"`},
			{[]string{"--cluster", "stores", "--attribute", "ecs.os-type=linux"}, "reserved"},
			{[]string{"--cluster", "stores", "--attribute", "a=1", "--attribute", "a=2"}, `--attribute "a" is given more than once`},
			{[]string{"--cluster", "stores", "--description", strings.Repeat("x", 257)}, "--description"},
			{[]string{"--cluster", "stores", "-o", "yaml"}, "--output (-o)"},
		} {
			_, _, err := run(t, append([]string{"--kubeconfig", d.Kubeconfig, "activation", "create"}, tc.args...)...)
			require.Error(t, err, "%v", tc.args)
			require.Contains(t, err.Error(), tc.want, "%v", tc.args)
		}

		// A kubeconfig that does not verify the server gives no CA hash to pin.
		cfg, err := clientcmd.LoadFromFile(d.Kubeconfig)
		require.NoError(t, err)
		for _, c := range cfg.Clusters {
			c.CertificateAuthorityData, c.InsecureSkipTLSVerify = nil, true
		}
		insecure := filepath.Join(t.TempDir(), "insecure.kubeconfig")
		require.NoError(t, clientcmd.WriteToFile(*cfg, insecure))
		_, _, err = run(t, "--kubeconfig", insecure, "activation", "create", "--cluster", "stores")
		require.ErrorContains(t, err, "certificate authority")

		_, _, err = run(t, "--kubeconfig", filepath.Join(t.TempDir(), "missing"), "activation", "create", "--cluster", "stores")
		require.ErrorContains(t, err, "kubeconfig")

		require.Len(t, activations(t, d.Client), before)
	})
}

func TestDaysFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"90m", 90 * time.Minute}, {"0d", 0}} {
		var d days
		require.NoError(t, d.Set(tc.in), tc.in)
		require.Equal(t, tc.want, time.Duration(d), tc.in)
	}
	for _, in := range []string{"", "d", "1.5d", "tomorrow"} {
		var d days
		require.Error(t, d.Set(in), in)
	}
}

func TestShellQuote(t *testing.T) {
	require.Equal(t, "https://10.0.0.1:6443", shellQuote("https://10.0.0.1:6443"))
	require.Equal(t, "''", shellQuote(""))
	require.Equal(t, `'a b'`, shellQuote("a b"))
	require.Equal(t, `'it'\''s'`, shellQuote("it's"))
}
