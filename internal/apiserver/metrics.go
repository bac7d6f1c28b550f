package apiserver

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

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
