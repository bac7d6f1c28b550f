package droverd

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/drover-dev/drover/internal/apiserver"
	"github.com/drover-dev/drover/internal/apiserver/auth"
)

// KubeconfigOptions mint a kubeconfig signed by the data dir's CA, for a viewer by default.
type KubeconfigOptions struct {
	DataDir string
	Server  string
	User    string
	Groups  []string
	Out     string
}

// NewKubeconfigOptions returns the defaults: a read-only viewer.
func NewKubeconfigOptions() *KubeconfigOptions {
	return &KubeconfigOptions{DataDir: "./drover-data", Server: "https://127.0.0.1:6443", Groups: []string{auth.GroupViewers}}
}

// AddFlags registers the flags.
func (o *KubeconfigOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "droverd's data directory (its pki/ holds the CA that signs the certificate).")
	fs.StringVar(&o.Server, "server", o.Server, "URL the kubeconfig points at.")
	fs.StringVar(&o.User, "user", o.User, "User name (certificate CN).")
	fs.StringSliceVar(&o.Groups, "group", o.Groups, fmt.Sprintf("Groups (certificate O): %s reads everything, %s may do anything.", auth.GroupViewers, auth.GroupAdmins))
	fs.StringVarP(&o.Out, "output", "o", o.Out, "File to write (mode 0600).")
}

// Run validates the options and writes the kubeconfig.
func (o *KubeconfigOptions) Run() error {
	var errs []error
	if o.User == "" {
		errs = append(errs, errors.New("--user is required"))
	}
	if o.Out == "" {
		errs = append(errs, errors.New("--output is required"))
	}
	if errs != nil {
		return errors.Join(errs...)
	}
	if _, err := filepath.Abs(o.DataDir); err != nil {
		return err
	}
	return apiserver.WriteKubeconfig(o.DataDir, o.Server, o.Out, o.User, o.Groups)
}
