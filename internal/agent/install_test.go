package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const installScript = "../../hack/install-agent.sh"

// buildAgent builds cmd/drover-agent into a temporary directory.
func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "drover-agent")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../../cmd/drover-agent").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

func TestInstallScriptInstallsAndRegisters(t *testing.T) {
	if testing.Short() {
		t.Skip("builds drover-agent")
	}
	bin := buildAgent(t)
	f := newFakeServer(t)
	prefix := t.TempDir()
	install := func() string {
		cmd := exec.CommandContext(t.Context(), "bash", installScript, "--server", f.URL, "--ca-cert-hash", f.hash(),
			"--activation-id", "team-a/edge", "--binary", bin, "--prefix", prefix, "--hostname", "edge-box-1")
		cmd.Env = append(os.Environ(), ActivationCodeEnv+"="+testCode)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.NotContains(t, string(out), testCode)
		return string(out)
	}

	out := install()
	assert.Contains(t, out, "registered as container instance team-a/host-1 in cluster prod")
	assertMode(t, filepath.Join(prefix, "usr/local/bin/drover-agent"), 0o755)
	unit, err := os.ReadFile(filepath.Join(prefix, "etc/systemd/system/drover-agent.service"))
	require.NoError(t, err)
	assert.Contains(t, string(unit), "\nExecStart=/usr/local/bin/drover-agent run --state-dir /var/lib/drover\n")
	assertMode(t, filepath.Join(prefix, "var/lib/drover"), 0o700|os.ModeDir)
	assertMode(t, filepath.Join(prefix, "var/lib/drover", keyFile), 0o600)
	_, err = stateDir(filepath.Join(prefix, "var/lib/drover")).load()
	require.NoError(t, err)

	out = install()
	assert.Contains(t, out, "already registered")
	assert.Equal(t, int32(1), f.registrations.Load(), "installing again does not register again")
}

func TestInstallScriptDryRunChangesNothing(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "drover-agent")
	// A stand-in binary: the dry run only asks it for the unit.
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho '[Unit]'\n"), 0o755))
	prefix := t.TempDir()
	out, err := exec.CommandContext(t.Context(), "bash", installScript, "--dry-run", "--server", "https://drover.example.com:6443",
		"--ca-cert-hash", "sha256:"+strings.Repeat("a", 64), "--activation-id", "team-a/edge", "--activation-code", testCode,
		"--binary", bin, "--prefix", prefix).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), testCode)
	assert.Contains(t, string(out), "DROVER_ACTIVATION_CODE=<hidden>")
	assert.Contains(t, string(out), "register --server https://drover.example.com:6443")
	entries, err := os.ReadDir(prefix)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestInstallScriptValidatesArguments(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "bash", installScript, "--server", "http://drover.example.com",
		"--ca-cert-hash", "sha256:abc", "--activation-id", "edge", "--activation-code", testCode, "--dry-run").CombinedOutput()
	require.Error(t, err)
	assert.NotContains(t, string(out), testCode)
	for _, want := range []string{"--server must be an https URL", "--ca-cert-hash must be", "--activation-id must be"} {
		assert.Contains(t, string(out), want)
	}
}
