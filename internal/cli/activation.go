package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/registration/wire"
)

// Limits of an activation, as ECS sets them.
const (
	DefaultExpiry          = 24 * time.Hour
	MaxExpiry              = 30 * 24 * time.Hour
	MaxRegistrationLimit   = 1000
	maxAttributes          = 100
	maxAttributeLength     = 128
	maxDescriptionLength   = 256
	activationGenerateName = "act-"
)

var attributeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._/:-]*$`)

// activationCreateOptions are the flags of drover activation create.
type activationCreateOptions struct {
	cluster           string
	expires           days
	registrationLimit int
	attributes        []string
	description       string
	output            string
}

// activationCreated is what drover activation create -o json prints.
type activationCreated struct {
	ActivationID   string `json:"activationId"`
	ActivationCode string `json:"activationCode"`
	Server         string `json:"server"`
	CACertHash     string `json:"caCertHash"`
	Command        string `json:"command"`
}

func newActivationCreateCommand(kube *kubeOptions, stdout, stderr io.Writer) *cobra.Command {
	o := &activationCreateOptions{expires: days(DefaultExpiry), registrationLimit: 1}
	cmd := &cobra.Command{
		Use:   "create --cluster CLUSTER [--expires 24h] [--registration-limit N] [--attribute NAME=VALUE ...]",
		Short: "Create an activation and print the command that registers a host with it",
		Long: `Create an activation: a code that lets hosts register as container instances of a cluster.

The code is generated here and shown only once; the activation stores only its hash. The printed
drover-agent command carries everything a host needs: the server URL, the hash of the server's CA
certificate (so that the agent sends the code to this control plane and no other), the activation id
and the code.`,
		Example: `  drover activation create --cluster stores
  drover activation create --cluster stores --registration-limit 50 --expires 7d --attribute region=eu -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			attrs, err := o.validate()
			if err != nil {
				return err
			}
			k, err := kube.connect()
			if err != nil {
				return err
			}
			if k.caHash, err = caHash(k.config); err != nil {
				return err
			}
			return o.run(cmd, k, attrs, stdout, stderr)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.cluster, "cluster", "", "Cluster, in the namespace, that hosts registering with the activation join (required).")
	fs.Var(&o.expires, "expires", "How long the activation accepts registrations, at most 720h (30 days); a Go duration or whole days such as 7d.")
	fs.IntVar(&o.registrationLimit, "registration-limit", o.registrationLimit, "How many hosts can register with the activation, 1-1000.")
	fs.StringArrayVar(&o.attributes, "attribute", nil, "Custom attribute NAME=VALUE given to every host that registers (repeatable).")
	fs.StringVar(&o.description, "description", "", "Description of the activation, for people.")
	fs.StringVarP(&o.output, "output", "o", "", "Output format: json prints {activationId, activationCode, server, caCertHash, command}.")
	return cmd
}

// validate checks the flags, naming the flag in each error, and returns the attributes.
func (o *activationCreateOptions) validate() ([]ecsv1alpha1.Attribute, error) {
	var errs []error
	switch {
	case o.cluster == "":
		errs = append(errs, errors.New("--cluster is required: the cluster the hosts join"))
	default:
		if msgs := validation.IsDNS1123Subdomain(o.cluster); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--cluster %q is not a valid cluster name: %s", o.cluster, strings.Join(msgs, "; ")))
		}
	}
	if d := time.Duration(o.expires); d <= 0 || d > MaxExpiry {
		errs = append(errs, fmt.Errorf("--expires %s is out of range: it must be more than 0 and at most 720h (30 days)", o.expires.String()))
	}
	if o.registrationLimit < 1 || o.registrationLimit > MaxRegistrationLimit {
		errs = append(errs, fmt.Errorf("--registration-limit %d is out of range 1-%d", o.registrationLimit, MaxRegistrationLimit))
	}
	if len(o.description) > maxDescriptionLength {
		errs = append(errs, fmt.Errorf("--description is longer than %d characters", maxDescriptionLength))
	}
	if o.output != "" && o.output != "json" {
		errs = append(errs, fmt.Errorf("--output (-o) %q is not supported: use json, or leave it out for text", o.output))
	}
	attrs, err := parseAttributes(o.attributes)
	if err != nil {
		errs = append(errs, err)
	}
	return attrs, errors.Join(errs...)
}

func parseAttributes(args []string) ([]ecsv1alpha1.Attribute, error) {
	if len(args) > maxAttributes {
		return nil, fmt.Errorf("--attribute is given %d times; at most %d attributes are allowed", len(args), maxAttributes)
	}
	var errs []error
	var attrs []ecsv1alpha1.Attribute
	seen := map[string]bool{}
	for _, a := range args {
		name, value, ok := strings.Cut(a, "=")
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("--attribute %q must be NAME=VALUE (VALUE may be empty: NAME=)", a))
		case name == "" || len(name) > maxAttributeLength || !attributeName.MatchString(name):
			errs = append(errs, fmt.Errorf("--attribute %q: the name must be 1-%d letters, digits and . - _ / :, starting with a letter or digit", a, maxAttributeLength))
		case strings.HasPrefix(name, "ecs."):
			errs = append(errs, fmt.Errorf("--attribute %q: names starting with ecs. are reserved for the attributes agents report", a))
		case len(value) > maxAttributeLength:
			errs = append(errs, fmt.Errorf("--attribute %q: the value is longer than %d characters", name, maxAttributeLength))
		case seen[name]:
			errs = append(errs, fmt.Errorf("--attribute %q is given more than once", name))
		default:
			seen[name] = true
			attrs = append(attrs, ecsv1alpha1.Attribute{Name: name, Value: value})
		}
	}
	return attrs, errors.Join(errs...)
}

func (o *activationCreateOptions) run(cmd *cobra.Command, k *kube, attrs []ecsv1alpha1.Attribute, stdout, stderr io.Writer) error {
	ctx := cmd.Context()
	code, err := wire.NewCode()
	if err != nil {
		return fmt.Errorf("generating the activation code: %w", err)
	}
	expiresAt := time.Now().Add(time.Duration(o.expires)).UTC().Truncate(time.Second)
	act := &ecsv1alpha1.Activation{
		ObjectMeta: metav1.ObjectMeta{GenerateName: activationGenerateName, Namespace: k.namespace},
		Spec: ecsv1alpha1.ActivationSpec{
			Cluster:           o.cluster,
			CodeHash:          wire.HashCode(code),
			ExpiresAt:         metav1.NewTime(expiresAt),
			RegistrationLimit: int32(o.registrationLimit),
			Attributes:        attrs,
			Description:       o.description,
		},
	}
	if err := k.client.Create(ctx, act); err != nil {
		return fmt.Errorf("creating the activation in namespace %s: %w", k.namespace, err)
	}
	if err := k.client.Get(ctx, types.NamespacedName{Namespace: k.namespace, Name: o.cluster}, &ecsv1alpha1.Cluster{}); apierrors.IsNotFound(err) {
		fmt.Fprintf(stderr, "Warning: cluster %q does not exist in namespace %s yet; create it so that the hosts' tasks can be placed.\n", o.cluster, k.namespace)
	}

	out := activationCreated{
		ActivationID: act.Namespace + "/" + act.Name, ActivationCode: code, Server: k.config.Host, CACertHash: k.caHash,
	}
	out.Command = agentCommand("drover-agent register", out)
	if o.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	registrations := "1 host"
	if o.registrationLimit > 1 {
		registrations = strconv.Itoa(o.registrationLimit) + " hosts"
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Activation ID:\t%s\n", out.ActivationID)
	fmt.Fprintf(tw, "Activation code:\t%s\n", out.ActivationCode)
	fmt.Fprintf(tw, "\t(shown only this once: it cannot be shown again, so keep it now)\n")
	fmt.Fprintf(tw, "Server:\t%s\n", out.Server)
	fmt.Fprintf(tw, "CA cert hash:\t%s\n", out.CACertHash)
	fmt.Fprintf(tw, "Cluster:\t%s\n", o.cluster)
	fmt.Fprintf(tw, "Registers:\tup to %s, until %s\n", registrations, expiresAt.Format(time.RFC3339))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nTo register a host, run this on it as root:\n\n  %s\n\n", out.Command)
	fmt.Fprintf(stdout, "hack/install-agent.sh takes the same flags, and also installs drover-agent as a systemd service.\n")
	return nil
}

// agentCommand is prog followed by the flags that register a host with the activation.
func agentCommand(prog string, a activationCreated) string {
	return strings.Join([]string{prog,
		"--server", shellQuote(a.Server), "--ca-cert-hash", shellQuote(a.CACertHash),
		"--activation-id", shellQuote(a.ActivationID), "--activation-code", shellQuote(a.ActivationCode),
	}, " ")
}

// shellQuote quotes s for a POSIX shell, unless it needs no quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// days is a duration flag that also takes whole days, such as 7d.
type days time.Duration

func (d *days) String() string {
	v := time.Duration(*d)
	if v > 0 && v%time.Hour == 0 {
		return strconv.FormatInt(int64(v/time.Hour), 10) + "h"
	}
	return v.String()
}

func (d *days) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		i, err := strconv.Atoi(n)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 24h or 7d", s)
		}
		*d = days(time.Duration(i) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 24h or 7d", s)
	}
	*d = days(v)
	return nil
}

func (d *days) Type() string { return "duration" }
