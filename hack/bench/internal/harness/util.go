package harness

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drover-dev/drover/hack/bench/internal/procinfo"
)

// Parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func Parallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err })
					next.Store(int64(n)) // stop handing out work
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// Poll calls cond every 100 ms until it is true or fails, or timeout passes.
func Poll(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Quantile is the q-quantile (nearest rank) of xs.
func Quantile[T int | time.Duration](xs []T, q float64) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[max(0, min(len(s)-1, int(math.Ceil(q*float64(len(s))))-1))]
}

// Ms prints a duration in milliseconds, or in seconds with one decimal from 10 s.
func Ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

// Msf prints a duration in milliseconds with one decimal.
func Msf(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// ReadRSS is a process's resident and peak resident memory, or "unknown".
func ReadRSS(pid int) string {
	r, err := procinfo.ReadRSS(pid)
	if err != nil {
		return "unknown"
	}
	return r.String()
}

// Machine describes the machine on one line.
func Machine() string { return strings.Join(procinfo.Machine(), ", ") }

// Dur prints a duration in seconds with one decimal from 10 s, two from 1 s, in milliseconds from
// 10 ms, and in milliseconds with one decimal below.
func Dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
}

// CPUSample is the CPU time used so far by a server process and by this process.
type CPUSample struct {
	pid            int
	at             time.Time
	server, client time.Duration
	ok             bool
}

// StartCPU samples the CPU time of the server pid and of this process.
func StartCPU(pid int) CPUSample {
	s := CPUSample{pid: pid, at: time.Now()}
	s.server, s.ok = procinfo.CPUTime(pid)
	s.client, _ = procinfo.CPUTime(os.Getpid())
	return s
}

// Cores returns the average number of cores the server and this process used since the sample.
func (s CPUSample) Cores() [2]float64 {
	wall := time.Since(s.at).Seconds()
	server, ok := procinfo.CPUTime(s.pid)
	client, _ := procinfo.CPUTime(os.Getpid())
	if !ok || !s.ok || wall <= 0 {
		return [2]float64{}
	}
	return [2]float64{(server - s.server).Seconds() / wall, (client - s.client).Seconds() / wall}
}
