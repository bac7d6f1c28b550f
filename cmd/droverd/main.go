// Command droverd is Drover's control plane: a Kubernetes-compatible API server for the
// ecs.drover.dev resources over etcd, and the controllers that act on them.
package main

import (
	"os"

	"github.com/spf13/cobra"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/cli"

	"github.com/drover-dev/drover/internal/droverd"
)

func main() {
	o := droverd.NewOptions()
	cmd := &cobra.Command{
		Use:          "droverd",
		Short:        "Drover control plane: API server, embedded etcd and controllers",
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.AddFlags(cmd.Flags())

	k := droverd.NewKubeconfigOptions()
	kubeconfigCmd := &cobra.Command{
		Use:   "kubeconfig --user NAME --output FILE [--group drover:viewers]",
		Short: "Write a kubeconfig for a user, signed by the data dir's CA (read-only viewer by default)",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return k.Run() },
	}
	k.AddFlags(kubeconfigCmd.Flags())
	cmd.AddCommand(kubeconfigCmd)

	cmd.SetContext(genericapiserver.SetupSignalContext())
	os.Exit(cli.Run(cmd))
}
