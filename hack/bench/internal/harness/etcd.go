package harness

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// EtcdMetrics reads the embedded etcd's Prometheus metrics with droverd's etcd client certificate:
// the counters of writes, deletes, reads, proposals, WAL fsyncs and backend commits.
type EtcdMetrics struct {
	url string
	hc  *http.Client
}

var etcdCounters = []string{
	"etcd_mvcc_put_total",
	"etcd_mvcc_delete_total",
	"etcd_mvcc_range_total",
	"etcd_server_proposals_committed_total",
	"etcd_disk_wal_fsync_duration_seconds_count",
	"etcd_disk_backend_commit_duration_seconds_count",
}

// NewEtcdMetrics reads the metrics of the embedded etcd of droverd's data dir, on its HTTP port.
func NewEtcdMetrics(dir string, port int) (*EtcdMetrics, error) {
	pkiDir := filepath.Join(dir, "pki")
	cert, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, "etcd-client.crt"), filepath.Join(pkiDir, "etcd-client.key"))
	if err != nil {
		return nil, fmt.Errorf("loading etcd's client certificate: %w", err)
	}
	ca, err := os.ReadFile(filepath.Join(pkiDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &EtcdMetrics{
		url: fmt.Sprintf("https://127.0.0.1:%d/metrics", port),
		hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
		}},
	}, nil
}

// EtcdSample is one reading of the counters, each summed over its labels.
type EtcdSample map[string]float64

// Read reads the counters now.
func (e *EtcdMetrics) Read() (EtcdSample, error) {
	resp, err := e.hc.Get(e.url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", e.url, resp.Status)
	}
	s := EtcdSample{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		for _, name := range etcdCounters {
			rest, ok := strings.CutPrefix(line, name)
			if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
				continue
			}
			fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
			if len(fields) == 0 {
				continue
			}
			if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
				s[name] += v // summed over labels
			}
		}
	}
	return s, sc.Err()
}

// EtcdDelta is what etcd did in a window: Total of each counter, and PerSec.
type EtcdDelta struct {
	Total  map[string]float64
	Window time.Duration
}

// Sub is what happened between before and s, over window.
func (s EtcdSample) Sub(before EtcdSample, window time.Duration) EtcdDelta {
	d := EtcdDelta{Total: map[string]float64{}, Window: window}
	for k, v := range s {
		d.Total[k] = v - before[k]
	}
	return d
}

// PerSec is the counter's increase per second of the window.
func (d EtcdDelta) PerSec(name string) float64 {
	if d.Window <= 0 {
		return 0
	}
	return d.Total[name] / d.Window.Seconds()
}

// Settle waits until etcd takes fewer than two writes in two seconds, at most limit: controllers
// and Events trail what a benchmark did.
func Settle(etcd *EtcdMetrics, limit time.Duration) {
	deadline := time.Now().Add(limit)
	prev, err := etcd.Read()
	for err == nil && time.Now().Before(deadline) {
		time.Sleep(2 * time.Second)
		var cur EtcdSample
		if cur, err = etcd.Read(); err == nil {
			if cur["etcd_mvcc_put_total"]-prev["etcd_mvcc_put_total"] < 2 {
				return
			}
			prev = cur
		}
	}
}
