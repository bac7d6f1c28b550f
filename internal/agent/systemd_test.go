package agent

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSystemdUnit(t *testing.T) {
	unit, err := SystemdUnit(*NewSystemdUnitOptions())
	require.NoError(t, err)
	lines := strings.Split(unit, "\n")
	for _, want := range []string{
		"[Unit]",
		"Wants=network-online.target docker.service",
		"After=network-online.target docker.service",
		"[Service]",
		"ExecStart=/usr/local/bin/drover-agent run --state-dir /var/lib/drover",
		"Restart=always",
		"[Install]",
		"WantedBy=multi-user.target",
	} {
		assert.Contains(t, lines, want)
	}

	unit, err = SystemdUnit(SystemdUnitOptions{Binary: "/opt/drover agent/bin", StateDir: "/srv/100%/$HOME"})
	require.NoError(t, err)
	assert.Contains(t, unit, "\nExecStart=\"/opt/drover agent/bin\" run --state-dir /srv/100%%/$$HOME\n")

	_, err = SystemdUnit(SystemdUnitOptions{Binary: "drover-agent", StateDir: "state"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--binary")
	assert.Contains(t, err.Error(), "--state-dir")
}
