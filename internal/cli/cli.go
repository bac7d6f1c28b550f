package cli

import (
	"context"
	"io"

	"github.com/spf13/cobra"
)

// Run runs the drover command line with args (without the program name), writing results to stdout
// and diagnostics to stderr. It returns the error the command failed with, for the caller to print.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := NewCommand(stdout, stderr)
	cmd.SetArgs(args)
	return cmd.ExecuteContext(ctx)
}

// NewCommand returns the drover root command.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	kube := &kubeOptions{}
	root := &cobra.Command{
		Use:           "drover",
		Short:         "Drover's command line: activations that let hosts join a cluster, and task logs",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	kube.addFlags(root.PersistentFlags())

	activation := &cobra.Command{
		Use:     "activation",
		Aliases: []string{"activations", "act"},
		Short:   "Create activations, which hosts register with to become container instances",
		Args:    cobra.NoArgs,
	}
	activation.AddCommand(newActivationCreateCommand(kube, stdout, stderr))
	root.AddCommand(activation)
	root.AddCommand(newLogsCommand(kube, stdout))
	return root
}
