package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/pki"
)

// testIdentity returns an identity with a client certificate from a new CA.
func testIdentity(t *testing.T) (*Identity, *pki.CA) {
	t.Helper()
	ca, _, err := pki.NewCA("test-ca")
	require.NoError(t, err)
	kp, err := ca.IssueClient(instance.User(), instance.Groups(), time.Hour)
	require.NoError(t, err)
	return &Identity{
		Config: Config{Server: "https://127.0.0.1:6443", Namespace: instance.Namespace, ContainerInstance: instance.Name, Cluster: "prod"},
		CAPEM:  ca.CertPEM, CertPEM: kp.CertPEM, KeyPEM: kp.KeyPEM,
	}, ca
}

func TestStateDirRoundTrip(t *testing.T) {
	dir := stateDir(filepath.Join(t.TempDir(), "a", "b"))
	ok, err := Registered(string(dir))
	require.NoError(t, err)
	assert.False(t, ok)
	_, err = dir.load()
	require.ErrorIs(t, err, ErrNotRegistered)

	id, _ := testIdentity(t)
	require.NoError(t, dir.save(id))
	got, err := dir.load()
	require.NoError(t, err)
	assert.Equal(t, id, got)
	ok, err = Registered(string(dir))
	require.NoError(t, err)
	assert.True(t, ok)
}

func TestStateDirSaveTightensAnExistingDirectory(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	id, _ := testIdentity(t)
	require.NoError(t, stateDir(dir).save(id))
	assertMode(t, dir, 0o700|os.ModeDir)
	assertMode(t, filepath.Join(dir, keyFile), 0o600)
}

// A registration replaced halfway (a crash after the key was written) is not taken for a
// complete one: config.json goes first and comes back last.
func TestStateDirReplacingARegistrationIsNotHalfDone(t *testing.T) {
	dir := stateDir(t.TempDir())
	id, _ := testIdentity(t)
	require.NoError(t, dir.save(id))
	require.NoError(t, os.Remove(dir.path(configFile))) // what save does first
	require.NoError(t, pki.WriteFileAtomic(dir.path(keyFile), []byte("new key"), 0o600))
	_, err := dir.load()
	require.ErrorIs(t, err, ErrNotRegistered)
}

func TestStateDirKeyPairRenewal(t *testing.T) {
	t.Run("both files replaced", func(t *testing.T) {
		dir := stateDir(t.TempDir())
		id, ca := testIdentity(t)
		require.NoError(t, dir.save(id))
		kp, err := ca.IssueClient(instance.User(), instance.Groups(), 2*time.Hour)
		require.NoError(t, err)
		require.NoError(t, dir.saveKeyPair(kp.CertPEM, kp.KeyPEM))
		got, err := dir.load()
		require.NoError(t, err)
		assert.Equal(t, kp.CertPEM, got.CertPEM)
		assert.Equal(t, kp.KeyPEM, got.KeyPEM)
		assert.NoFileExists(t, dir.path(nextKeyFile))
		assertMode(t, dir.path(keyFile), 0o600)
	})
	t.Run("crash after the certificate was written", func(t *testing.T) {
		dir := stateDir(t.TempDir())
		id, ca := testIdentity(t)
		require.NoError(t, dir.save(id))
		kp, err := ca.IssueClient(instance.User(), instance.Groups(), 2*time.Hour)
		require.NoError(t, err)
		require.NoError(t, pki.WriteFileAtomic(dir.path(nextKeyFile), kp.KeyPEM, 0o600))
		require.NoError(t, pki.WriteFileAtomic(dir.path(certFile), kp.CertPEM, 0o644))

		got, err := dir.load()
		require.NoError(t, err)
		assert.Equal(t, kp.KeyPEM, got.KeyPEM, "the next key completes the new certificate")
		onDisk, err := os.ReadFile(dir.path(keyFile))
		require.NoError(t, err)
		assert.Equal(t, kp.KeyPEM, onDisk)
		assert.NoFileExists(t, dir.path(nextKeyFile))
	})
	t.Run("crash before the certificate was written", func(t *testing.T) {
		dir := stateDir(t.TempDir())
		id, ca := testIdentity(t)
		require.NoError(t, dir.save(id))
		kp, err := ca.IssueClient(instance.User(), instance.Groups(), 2*time.Hour)
		require.NoError(t, err)
		require.NoError(t, pki.WriteFileAtomic(dir.path(nextKeyFile), kp.KeyPEM, 0o600))

		got, err := dir.load()
		require.NoError(t, err)
		assert.Equal(t, id.KeyPEM, got.KeyPEM, "the old pair still matches")
	})
	t.Run("mismatched pair", func(t *testing.T) {
		dir := stateDir(t.TempDir())
		id, ca := testIdentity(t)
		require.NoError(t, dir.save(id))
		kp, err := ca.IssueClient(instance.User(), instance.Groups(), 2*time.Hour)
		require.NoError(t, err)
		require.NoError(t, pki.WriteFileAtomic(dir.path(certFile), kp.CertPEM, 0o644))
		_, err = dir.load()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "--force")
	})
}
