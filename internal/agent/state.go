package agent

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/drover-dev/drover/internal/pki"
)

// DefaultStateDir is where drover-agent keeps its identity unless told otherwise.
const DefaultStateDir = "/var/lib/drover"

// Files in the state directory. config.json is written last at registration: its presence
// means the registration is complete.
const (
	configFile  = "config.json"
	keyFile     = "key.pem"
	certFile    = "cert.pem"
	caFile      = "ca.pem"
	nextKeyFile = "key.next.pem" // a renewed key whose certificate may not be in cert.pem yet
)

// ErrNotRegistered is returned when the state directory holds no registration.
var ErrNotRegistered = errors.New("this host is not registered")

// Config is what the agent learnt at registration, kept in config.json.
type Config struct {
	// Server is the control plane's https URL.
	Server string `json:"server"`
	// Namespace holds the instance's ContainerInstance, Lease and Tasks.
	Namespace string `json:"namespace"`
	// ContainerInstance is the name of the host's ContainerInstance.
	ContainerInstance string `json:"containerInstance"`
	// Cluster is the Cluster the instance is registered in.
	Cluster string `json:"cluster"`
}

// Identity is a registration as stored in the state directory: where the control plane is, how to
// trust it, and the client certificate and key the host authenticates with.
type Identity struct {
	Config
	CAPEM   []byte
	CertPEM []byte
	KeyPEM  []byte
}

// stateDir reads and writes the agent's state directory. Every file is replaced atomically
// (written beside its final name, synced, renamed).
type stateDir string

func (d stateDir) path(name string) string { return filepath.Join(string(d), name) }

// registered tells whether a complete registration exists, returning its config.
func (d stateDir) registered() (*Config, error) {
	data, err := os.ReadFile(d.path(configFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("reading %s: %w", d.path(configFile), err)
	}
	return &c, nil
}

// Registered reports whether stateDir holds a complete registration.
func Registered(stateDir string) (bool, error) {
	c, err := stateDirOf(stateDir).registered()
	return c != nil, err
}

func stateDirOf(dir string) stateDir {
	if dir == "" {
		dir = DefaultStateDir
	}
	return stateDir(dir)
}

// load reads the registration, finishing a certificate renewal that a crash interrupted.
func (d stateDir) load() (*Identity, error) {
	c, err := d.registered()
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("%w (no %s): run `drover-agent register` first", ErrNotRegistered, d.path(configFile))
	}
	if c.Server == "" || c.Namespace == "" || c.ContainerInstance == "" {
		return nil, fmt.Errorf("%s lacks the server, namespace or container instance: register again with --force", d.path(configFile))
	}
	id := &Identity{Config: *c}
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{caFile, &id.CAPEM}, {certFile, &id.CertPEM}, {keyFile, &id.KeyPEM}} {
		if *f.dst, err = os.ReadFile(d.path(f.name)); err != nil {
			return nil, fmt.Errorf("reading the registration: %w", err)
		}
	}
	if _, err := tls.X509KeyPair(id.CertPEM, id.KeyPEM); err != nil {
		// A renewal writes the new key to key.next.pem, then cert.pem, then renames the key into
		// place; a crash between the last two leaves the new certificate with the next key.
		next, nerr := os.ReadFile(d.path(nextKeyFile))
		if nerr != nil {
			return nil, fmt.Errorf("%s and %s do not form a key pair (%v): register again with --force", d.path(certFile), d.path(keyFile), err)
		}
		if _, err := tls.X509KeyPair(id.CertPEM, next); err != nil {
			return nil, fmt.Errorf("%s matches neither %s nor %s: register again with --force", d.path(certFile), d.path(keyFile), d.path(nextKeyFile))
		}
		if err := os.Rename(d.path(nextKeyFile), d.path(keyFile)); err != nil {
			return nil, err
		}
		id.KeyPEM = next
	}
	if pool := x509.NewCertPool(); !pool.AppendCertsFromPEM(id.CAPEM) {
		return nil, fmt.Errorf("%s holds no PEM certificate: register again with --force", d.path(caFile))
	}
	return id, nil
}

// save writes a new registration. A registration already there stops counting as one (its
// config.json goes first) until the new one is complete.
func (d stateDir) save(id *Identity) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return err
	}
	if err := os.Chmod(string(d), 0o700); err != nil {
		return err
	}
	if err := os.Remove(d.path(configFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Remove(d.path(nextKeyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	cfg, err := json.MarshalIndent(id.Config, "", "  ")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		perm fs.FileMode
	}{
		{keyFile, id.KeyPEM, 0o600},
		{certFile, id.CertPEM, 0o644},
		{caFile, id.CAPEM, 0o644},
		{configFile, append(cfg, '\n'), 0o644},
	} {
		if err := pki.WriteFileAtomic(d.path(f.name), f.data, f.perm); err != nil {
			return fmt.Errorf("writing %s: %w", d.path(f.name), err)
		}
	}
	return nil
}

// saveKeyPair replaces the client certificate and key after a renewal, so that a crash at any
// point leaves a matching pair for load: the old one, or the new one.
func (d stateDir) saveKeyPair(certPEM, keyPEM []byte) error {
	if old, err := os.ReadFile(d.path(keyFile)); err == nil && bytes.Equal(old, keyPEM) {
		return pki.WriteFileAtomic(d.path(certFile), certPEM, 0o644)
	}
	if err := pki.WriteFileAtomic(d.path(nextKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(d.path(certFile), certPEM, 0o644); err != nil {
		return err
	}
	return os.Rename(d.path(nextKeyFile), d.path(keyFile))
}
