package agent

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// DefaultBinary is where hack/install-agent.sh installs drover-agent.
const DefaultBinary = "/usr/local/bin/drover-agent"

// UnitName is the name of the systemd unit that runs the agent.
const UnitName = "drover-agent.service"

// SystemdUnitOptions describe the systemd unit SystemdUnit writes.
type SystemdUnitOptions struct {
	// Binary is the absolute path of drover-agent.
	Binary string
	// StateDir is the absolute path of the state directory.
	StateDir string
}

// NewSystemdUnitOptions returns the defaults.
func NewSystemdUnitOptions() *SystemdUnitOptions {
	return &SystemdUnitOptions{Binary: DefaultBinary, StateDir: DefaultStateDir}
}

// AddFlags binds the options to fs.
func (o *SystemdUnitOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Binary, "binary", o.Binary, "Absolute path of the drover-agent binary the unit runs.")
	fs.StringVar(&o.StateDir, "state-dir", o.StateDir, "Absolute path of the state directory the agent runs with.")
}

// Validate checks both paths are absolute, as systemd needs.
func (o *SystemdUnitOptions) Validate() error {
	var errs []error
	if !filepath.IsAbs(o.Binary) {
		errs = append(errs, fmt.Errorf("--binary %q must be an absolute path", o.Binary))
	}
	if !filepath.IsAbs(o.StateDir) {
		errs = append(errs, fmt.Errorf("--state-dir %q must be an absolute path", o.StateDir))
	}
	return errors.Join(errs...)
}

// SystemdUnit returns a systemd unit that runs the agent and restarts it whenever it stops.
func SystemdUnit(o SystemdUnitOptions) (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	exec := strings.Join([]string{systemdQuote(o.Binary), "run", "--state-dir", systemdQuote(o.StateDir)}, " ")
	return `[Unit]
Description=Drover agent: reports this host to the Drover control plane and runs the tasks placed on it
Documentation=https://github.com/drover-dev/drover
Wants=network-online.target docker.service
After=network-online.target docker.service

[Service]
Type=simple
ExecStart=` + exec + `
Restart=always
RestartSec=5
TimeoutStopSec=30

[Install]
WantedBy=multi-user.target
`, nil
}

// systemdQuote quotes one word of a systemd command line: specifiers (%) and variables ($) are
// escaped, and the word is double-quoted when it holds spaces, quotes or backslashes.
func systemdQuote(s string) string {
	s = strings.NewReplacer("%", "%%", "$", "$$").Replace(s)
	if s != "" && !strings.ContainsAny(s, " \t\n\"'\\;") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`).Replace(s) + `"`
}
