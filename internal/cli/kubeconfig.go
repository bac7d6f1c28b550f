package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/pki"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(ecsv1alpha1.AddToScheme(scheme))
}

// kubeOptions choose the API server and namespace the way kubectl does.
type kubeOptions struct {
	kubeconfig string
	context    string
	namespace  string
}

func (o *kubeOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).")
	fs.StringVar(&o.context, "context", "", "The kubeconfig context to use (default: its current context).")
	fs.StringVarP(&o.namespace, "namespace", "n", "", "The namespace (default: the context's namespace, or default).")
}

// kube is a connection to the API server a kubeconfig names.
type kube struct {
	config    *rest.Config
	client    client.Client
	namespace string
	// caHash is the pin of the CA that the kubeconfig trusts to verify the server, as pki.CA.Hash
	// computes it; set by the commands that print it (caHash).
	caHash string
}

func (o *kubeOptions) connect() (*kube, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.context}
	overrides.Context.Namespace = o.namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errors.New("no kubeconfig: pass --kubeconfig or set KUBECONFIG (droverd writes one to <data-dir>/admin.kubeconfig)")
		}
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	cfg.UserAgent = "drover"
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", cfg.Host, err)
	}
	return &kube{config: cfg, client: c, namespace: ns}, nil
}

// caHash returns the pin of the first certificate in the kubeconfig's certificate authority.
func caHash(cfg *rest.Config) (string, error) {
	data := cfg.TLSClientConfig.CAData
	if len(data) == 0 && cfg.TLSClientConfig.CAFile != "" {
		var err error
		if data, err = os.ReadFile(cfg.TLSClientConfig.CAFile); err != nil {
			return "", fmt.Errorf("reading the kubeconfig's certificate authority: %w", err)
		}
	}
	if len(data) == 0 {
		return "", errors.New("the kubeconfig names no certificate authority (certificate-authority-data), so there is no CA hash for hosts to pin the server with; use a kubeconfig that verifies the server, such as droverd's admin.kubeconfig")
	}
	cert, err := pki.ParseCertificate(data)
	if err != nil {
		return "", fmt.Errorf("the kubeconfig's certificate authority: %w", err)
	}
	return (&pki.CA{Cert: cert}).Hash(), nil
}
