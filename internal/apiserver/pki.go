package apiserver

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/drover-dev/drover/internal/apiserver/auth"
	"github.com/drover-dev/drover/internal/kubeconfig"
	"github.com/drover-dev/drover/internal/pki"
)

// Files droverd keeps in <data-dir>/pki. Another droverd sharing the same external etcd must be
// given a copy of this directory, so that both serve with certificates of the same CA.
const (
	caCommonName      = "drover-ca"
	servingCertFile   = "apiserver.crt"
	servingKeyFile    = "apiserver.key"
	etcdServerCert    = "etcd-server.crt"
	etcdServerKey     = "etcd-server.key"
	etcdClientCert    = "etcd-client.crt"
	etcdClientKey     = "etcd-client.key"
	adminKubeconfig   = "admin.kubeconfig"
	adminUser         = "drover:admin"
	clientCertLife    = 365 * 24 * time.Hour
	kubeconfigCluster = "drover"
)

// certs are the paths of the certificates a server uses.
type certs struct {
	ca                       *pki.CA
	caFile                   string
	servingCert, servingKey  string
	etcdServerCert, etcdKey  string
	etcdClientCert, etcdCKey string
}

// ensureCerts loads or creates the CA and every certificate droverd serves or dials with.
func ensureCerts(dataDir string, sans []string, ips []net.IP) (*certs, error) {
	dir := filepath.Join(dataDir, "pki")
	ca, err := pki.LoadOrCreateCA(dir, caCommonName)
	if err != nil {
		return nil, fmt.Errorf("certificate authority in %s: %w", dir, err)
	}
	c := &certs{
		ca: ca, caFile: filepath.Join(dir, "ca.crt"),
		servingCert: filepath.Join(dir, servingCertFile), servingKey: filepath.Join(dir, servingKeyFile),
		etcdServerCert: filepath.Join(dir, etcdServerCert), etcdKey: filepath.Join(dir, etcdServerKey),
		etcdClientCert: filepath.Join(dir, etcdClientCert), etcdCKey: filepath.Join(dir, etcdClientKey),
	}
	if err := ensureServing(ca, c.servingCert, c.servingKey, "drover-apiserver", sans, ips); err != nil {
		return nil, err
	}
	loopback := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if err := ensureServing(ca, c.etcdServerCert, c.etcdKey, "drover-etcd", []string{"localhost"}, loopback); err != nil {
		return nil, err
	}
	if _, err := os.Stat(c.etcdClientCert); err != nil {
		kp, err := ca.IssueClient("drover-apiserver-etcd-client", nil, pki.ServingValidity)
		if err != nil {
			return nil, err
		}
		if err := kp.Write(c.etcdClientCert, c.etcdCKey); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func ensureServing(ca *pki.CA, certPath, keyPath, cn string, sans []string, ips []net.IP) error {
	if pki.ServingCertValid(ca, certPath, sans, ips) {
		if _, err := os.Stat(keyPath); err == nil {
			return nil
		}
	}
	kp, err := ca.IssueServing(cn, sans, ips, pki.ServingValidity)
	if err != nil {
		return fmt.Errorf("issuing %s: %w", certPath, err)
	}
	return kp.Write(certPath, keyPath)
}

// WriteKubeconfig writes a kubeconfig for a user in the given groups, signed by the data dir's CA.
func WriteKubeconfig(dataDir, server, path, user string, groups []string) error {
	ca, err := pki.LoadOrCreateCA(filepath.Join(dataDir, "pki"), caCommonName)
	if err != nil {
		return err
	}
	kp, err := ca.IssueClient(user, groups, clientCertLife)
	if err != nil {
		return err
	}
	return kubeconfig.Write(kubeconfig.Build(server, kubeconfigCluster, user, ca.CertPEM, kp.CertPEM, kp.KeyPEM), path)
}

// writeAdminKubeconfig writes <data-dir>/admin.kubeconfig unless a valid one for this CA exists.
func writeAdminKubeconfig(dataDir, server string) (string, error) {
	path := filepath.Join(dataDir, adminKubeconfig)
	return path, WriteKubeconfig(dataDir, server, path, adminUser, []string{auth.GroupAdmins})
}
