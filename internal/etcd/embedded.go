// Package etcd runs an embedded, single-member etcd server for droverd, listening on loopback
// with mutual TLS on both its client and peer ports.
package etcd

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
)

// Config configures the embedded etcd.
type Config struct {
	// Dir holds etcd's data (member/ wal and snap).
	Dir string
	// Host is the address the client and peer ports listen on; loopback by default.
	Host string
	// ClientPort and PeerPort are the ports etcd listens on.
	ClientPort, PeerPort int
	// HTTPPort, when set, serves etcd's HTTP endpoints (/metrics, /health, /version) on a port of
	// their own, so that the client port serves only gRPC, over gRPC's own transport. On one
	// port, etcd serves gRPC through net/http's HTTP/2 server, which is much slower: with
	// thousands of agents connecting, droverd's requests waited a minute for etcd.
	HTTPPort int
	// CertFile and KeyFile are used for serving and, on the peer port, as the client identity.
	CertFile, KeyFile string
	// TrustedCAFile verifies clients (client-cert authentication is required).
	TrustedCAFile string
	// StartTimeout bounds how long Start waits for the member to become ready.
	StartTimeout time.Duration
}

// Server is a running embedded etcd.
type Server struct {
	etcd *embed.Etcd
	// ClientURL is the https URL clients connect to.
	ClientURL string
}

// Start starts etcd and waits until it serves or ctx ends.
func Start(ctx context.Context, c Config) (*Server, error) {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 60 * time.Second
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating etcd data dir: %w", err)
	}
	clientURL := url.URL{Scheme: "https", Host: fmt.Sprintf("%s:%d", c.Host, c.ClientPort)}
	peerURL := url.URL{Scheme: "https", Host: fmt.Sprintf("%s:%d", c.Host, c.PeerPort)}

	cfg := embed.NewConfig()
	cfg.Name = "drover"
	cfg.Dir = c.Dir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	if c.HTTPPort != 0 {
		cfg.ListenClientHttpUrls = []url.URL{{Scheme: "https", Host: fmt.Sprintf("%s:%d", c.Host, c.HTTPPort)}}
	}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	tls := transport.TLSInfo{
		CertFile:       c.CertFile,
		KeyFile:        c.KeyFile,
		TrustedCAFile:  c.TrustedCAFile,
		ClientCertAuth: true,
	}
	cfg.ClientTLSInfo = tls
	cfg.PeerTLSInfo = tls
	cfg.LogLevel = "error"
	cfg.Logger = "zap"
	cfg.LogOutputs = []string{"stderr"}
	// Compaction keeps the revision history bounded; the API server also compacts every 5 minutes.
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "1h"
	cfg.QuotaBackendBytes = 8 << 30
	// An existing member directory means a restart of the same member.
	if _, err := os.Stat(filepath.Join(c.Dir, "member")); err == nil {
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd (client port %d, peer port %d): %w", c.ClientPort, c.PeerPort, err)
	}
	timer := time.NewTimer(c.StartTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
		return &Server{etcd: e, ClientURL: clientURL.String()}, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd failed: %w", err)
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("embedded etcd did not become ready within %s", c.StartTimeout)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
}

// Err reports a fatal error of the running server.
func (s *Server) Err() <-chan error { return s.etcd.Err() }

// Close stops etcd, flushing its state.
func (s *Server) Close() { s.etcd.Close() }
