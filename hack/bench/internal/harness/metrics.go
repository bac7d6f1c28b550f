package harness

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// Metrics are droverd's /metrics samples: the series (name and labels, as printed) to its value.
type Metrics map[string]float64

// Scrape reads droverd's /metrics.
func Scrape(ctx context.Context, raw rest.Interface) (Metrics, error) {
	body, err := raw.Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading /metrics: %w", err)
	}
	m := Metrics{}
	for line := range strings.SplitSeq(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, nil
}

// Sum adds the series of metric name whose labels include label.
func (m Metrics) Sum(name, label string) float64 {
	total := 0.0
	for series, v := range m {
		if rest, ok := strings.CutPrefix(series, name+"{"); ok && strings.Contains(rest, label) {
			total += v
		}
	}
	return total
}

// ControllerLoad is what one controller did between two scrapes.
type ControllerLoad struct {
	Name   string
	Passes float64
	Busy   time.Duration // total reconcile time
}

// ControllerLoads compares two scrapes: each controller's passes and time inside Reconcile. (The
// workqueue metrics of the controllers are not served: the API server's workqueue series of the same
// names take their place.)
func ControllerLoads(before, after Metrics) []ControllerLoad {
	var out []ControllerLoad
	for _, name := range []string{"placement", "task", "cluster", "containerinstance", "service", "taskdefinition"} {
		ctl := fmt.Sprintf("controller=%q", name)
		delta := func(metric, label string) float64 { return after.Sum(metric, label) - before.Sum(metric, label) }
		l := ControllerLoad{
			Name:   name,
			Passes: delta("controller_runtime_reconcile_total", ctl),
			Busy:   time.Duration(delta("controller_runtime_reconcile_time_seconds_sum", ctl) * float64(time.Second)),
		}
		if l.Passes > 0 {
			out = append(out, l)
		}
	}
	return out
}

// Profile fetches a CPU profile from droverd's /debug/pprof in the background.
type Profile struct {
	done chan string
}

// Start begins a CPU profile of secs seconds, to be written to file.
func (p *Profile) Start(ctx context.Context, raw rest.Interface, file string, secs int, logf func(string, ...any)) {
	p.done = make(chan string, 1)
	go func() {
		body, err := raw.Get().AbsPath("/debug/pprof/profile").Param("seconds", strconv.Itoa(secs)).Timeout(time.Duration(secs+60) * time.Second).DoRaw(ctx)
		if err != nil {
			logf("fetching CPU profile: %v", err)
			p.done <- ""
			return
		}
		if err := os.WriteFile(file, body, 0o644); err != nil {
			logf("writing %s: %v", file, err)
			p.done <- ""
			return
		}
		p.done <- file
	}()
}

// SaveHeapProfile writes droverd's heap profile (in use after a collection) to file.
func SaveHeapProfile(ctx context.Context, raw rest.Interface, file string) error {
	body, err := raw.Get().AbsPath("/debug/pprof/heap").Param("gc", "1").Timeout(time.Minute).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("fetching heap profile: %w", err)
	}
	return os.WriteFile(file, body, 0o644)
}

// Wait returns the profile's file once written, or "" when it was not started or failed.
func (p *Profile) Wait() string {
	if p.done == nil {
		return ""
	}
	return <-p.done
}
