// Command drover-agent joins a host to a Drover cluster and reports it to the control plane:
// `drover-agent register` once, with an activation, then `drover-agent run` (or just
// `drover-agent`), typically from the systemd unit `drover-agent systemd-unit` prints.
package main

import (
	"context"
	goflag "flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/drover-dev/drover/internal/agent"
	"github.com/drover-dev/drover/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := newCommand().ExecuteContext(ctx)
	klog.Flush()
	if err != nil {
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	runOpts := agent.NewRunOptions()
	run := func(cmd *cobra.Command, _ []string) error {
		if err := runOpts.Complete(); err != nil {
			return err
		}
		if err := runOpts.Validate(); err != nil {
			return err
		}
		return agent.Run(cmd.Context(), *runOpts)
	}
	root := &cobra.Command{
		Use:          "drover-agent",
		Short:        "Drover agent: joins this host to a Drover cluster and reports it to the control plane",
		Long:         "Drover agent: joins this host to a Drover cluster and reports it to the control plane.\n\nRegister the host once with `drover-agent register`; then `drover-agent` alone runs the agent.",
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ok, err := agent.Registered(runOpts.StateDir)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w (no registration in %s): run `drover-agent register --server URL --ca-cert-hash HASH --activation-id ID` with the values `drover activation create` printed",
					agent.ErrNotRegistered, runOpts.StateDir)
			}
			return run(cmd, args)
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	runOpts.AddFlags(root.Flags())
	klogFlags := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(klogFlags)
	root.PersistentFlags().AddGoFlag(klogFlags.Lookup("v"))

	runCmd := &cobra.Command{
		Use:   "run [--state-dir DIR]",
		Short: "Run the agent with the registration in the state directory, until SIGTERM",
		Args:  cobra.NoArgs,
		RunE:  run,
	}
	runOpts.AddFlags(runCmd.Flags())

	regOpts := agent.NewRegisterOptions()
	registerCmd := &cobra.Command{
		Use:   "register --server URL --ca-cert-hash sha256:HEX --activation-id NAMESPACE/NAME --activation-code CODE",
		Short: "Register this host with an activation and store its identity in the state directory",
		Long: "Register this host with an activation and store its identity in the state directory.\n\n" +
			"The server's CA is fetched and compared with --ca-cert-hash before anything else is sent: the activation " +
			"code goes only to the control plane the hash names. The code may be given in " + agent.ActivationCodeEnv +
			" instead of --activation-code, which other users of the host can see in the process list.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := regOpts.Complete(); err != nil {
				return err
			}
			if err := regOpts.Validate(); err != nil {
				return err
			}
			cfg, err := agent.Register(cmd.Context(), *regOpts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "This host is registered as container instance %s/%s in cluster %s.\n"+
				"Its identity is in %s. Start the agent with: drover-agent run --state-dir %s\n",
				cfg.Namespace, cfg.ContainerInstance, cfg.Cluster, regOpts.StateDir, regOpts.StateDir)
			return nil
		},
	}
	regOpts.AddFlags(registerCmd.Flags())

	unitOpts := agent.NewSystemdUnitOptions()
	unitCmd := &cobra.Command{
		Use:   "systemd-unit [--state-dir DIR] [--binary PATH]",
		Short: "Print a systemd unit that runs the agent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			unit, err := agent.SystemdUnit(*unitOpts)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), unit)
			return err
		},
	}
	unitOpts.AddFlags(unitCmd.Flags())

	versionCmd := &cobra.Command{
		Use:   "version",
		Short: "Print the agent's version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), version.Version) },
	}

	root.AddCommand(runCmd, registerCmd, unitCmd, versionCmd)
	return root
}
