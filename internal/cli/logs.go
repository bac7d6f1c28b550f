package cli

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/tunnel/wire"
)

// logsOptions are the flags of drover logs.
type logsOptions struct {
	container  string
	follow     bool
	tail       int
	timestamps bool
}

func newLogsCommand(kube *kubeOptions, stdout io.Writer) *cobra.Command {
	o := &logsOptions{tail: -1}
	cmd := &cobra.Command{
		Use:   "logs TASK [-c CONTAINER] [-f] [--tail N] [--timestamps]",
		Short: "Print the output of a task's container",
		Long: `Print the output of a container of a task: what it wrote to stdout and stderr, as lines.

The output stays on the host that runs the task, in the Docker Engine's log, and droverd fetches it
from the host's agent over the connection the agent keeps open to droverd. A task's logs can be
read while its agent is connected, from when the task is placed until the agent removes the
task's containers (drover-agent --task-cleanup-delay after the task stopped, 1h by default).

Admins and viewers may read logs; an instance's own certificate may not.`,
		Example: `  drover logs web-7f3c
  drover logs web-7f3c -c sidecar -f
  drover logs web-7f3c --tail 100 --timestamps -n stores`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			k, err := kube.connect()
			if err != nil {
				return err
			}
			return o.run(cmd, k, args[0], stdout)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.container, "container", "c", "", "Container of the task whose output to print; may be left out when the task has only one.")
	fs.BoolVarP(&o.follow, "follow", "f", false, "Keep printing new output until interrupted, or until the container stops.")
	fs.IntVar(&o.tail, "tail", o.tail, "Lines from the end of the output to print; -1 prints all.")
	fs.BoolVar(&o.timestamps, "timestamps", false, "Start each line with the time it was written (RFC 3339).")
	return cmd
}

func (o *logsOptions) validate() error {
	if o.tail == 0 || o.tail < -1 {
		return fmt.Errorf("--tail %d is out of range: print the last N lines with N of at least 1, or all with -1", o.tail)
	}
	return nil
}

func (o *logsOptions) run(cmd *cobra.Command, k *kube, task string, stdout io.Writer) error {
	ctx := cmd.Context()
	cfg := rest.CopyConfig(k.config)
	cfg.GroupVersion = &ecsv1alpha1.GroupVersion
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	// A followed log lasts as long as the user wants it.
	cfg.Timeout = 0
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", cfg.Host, err)
	}
	req := rc.Get().Namespace(k.namespace).Resource("tasks").Name(task).SubResource(wire.LogSubresource)
	if o.container != "" {
		req = req.Param(wire.ParamContainer, o.container)
	}
	if o.follow {
		req = req.Param(wire.ParamFollow, "true")
	}
	if o.tail > 0 {
		req = req.Param(wire.ParamTailLines, strconv.Itoa(o.tail))
	}
	if o.timestamps {
		req = req.Param(wire.ParamTimestamps, "true")
	}
	stream, err := req.Stream(ctx)
	if err != nil {
		return err
	}
	defer stream.Close()
	if _, err := io.Copy(stdout, stream); err != nil && ctx.Err() == nil {
		return fmt.Errorf("the logs of task %s broke off: %w (the agent's connection to droverd may have dropped; run the command again)", task, err)
	}
	return nil
}
