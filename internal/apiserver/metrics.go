package apiserver

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	handlersmetrics "k8s.io/apiserver/pkg/endpoints/handlers/metrics"
	apimetrics "k8s.io/apiserver/pkg/endpoints/metrics"
	cachermetrics "k8s.io/apiserver/pkg/storage/cacher/metrics"
	etcd3metrics "k8s.io/apiserver/pkg/storage/etcd3/metrics"
	storagemetrics "k8s.io/apiserver/pkg/storage/metrics"
)

// registerAPIMetrics registers the API server's own metrics (requests by verb and resource with
// their latency, the watch cache, storage and etcd calls) in the registry /metrics serves. The
// generic API server registers them only when it serves /metrics itself, which droverd does
// instead, together with the controllers' metrics. Registering twice is harmless.
func registerAPIMetrics() {
	apimetrics.Register()
	handlersmetrics.Register()
	storagemetrics.Register()
	cachermetrics.Register()
	etcd3metrics.Register()
}

// firstWins gathers from each gatherer in turn and keeps only the first metric family of each
// name: the API server's and the controllers' registries both carry the Go runtime and process
// collectors, which must appear once on /metrics.
type firstWins []prometheus.Gatherer

// Gather implements prometheus.Gatherer.
func (g firstWins) Gather() ([]*dto.MetricFamily, error) {
	seen := map[string]bool{}
	var out []*dto.MetricFamily
	for _, gatherer := range g {
		families, err := gatherer.Gather()
		if err != nil {
			return nil, err
		}
		for _, f := range families {
			if !seen[f.GetName()] {
				seen[f.GetName()] = true
				out = append(out, f)
			}
		}
	}
	return out, nil
}
