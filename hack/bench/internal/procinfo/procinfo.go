// Package procinfo reads what the benchmarks report about processes and the machine: CPU time and
// resident memory from /proc, free loopback ports, and a description of the machine.
package procinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// CPUTime reads a process's user and system time from /proc/<pid>/stat (in USER_HZ, 100 a second on Linux).
func CPUTime(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name may contain spaces; the fields after it are space separated.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 13 { // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name
		return 0, false
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

// RSS is a process's resident and peak resident memory, in KiB.
type RSS struct{ RSSKB, HWMKB int }

func (r RSS) String() string { return fmt.Sprintf("%s (peak %s)", MiB(r.RSSKB), MiB(r.HWMKB)) }

// ReadRSS reads VmRSS and VmHWM of a process from /proc.
func ReadRSS(pid int) (RSS, error) {
	st, err := Status(pid)
	if err != nil {
		return RSS{}, err
	}
	return RSS{RSSKB: st["VmRSS"], HWMKB: st["VmHWM"]}, nil
}

// Status reads the numeric fields of /proc/<pid>/status (memory in KiB); it is an error when there is
// no VmRSS.
func Status(pid int) (map[string]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	st := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB")); err == nil {
			st[k] = n
		}
	}
	if st["VmRSS"] == 0 {
		return st, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return st, nil
}

// MiB formats KiB as MiB.
func MiB(kb int) string { return fmt.Sprintf("%.0f MiB", float64(kb)/1024) }

// Machine describes the machine: CPUs and model, memory, kernel and Go version.
func Machine() []string {
	var m []string
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	m = append(m, fmt.Sprintf("%d CPUs (%s)", runtime.NumCPU(), model))
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				m = append(m, fmt.Sprintf("%.1f GiB memory", float64(kb)/(1<<20)))
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m = append(m, "Linux "+strings.TrimSpace(string(b)))
	}
	m = append(m, runtime.Version())
	return m
}

// LoadAvg is the 1, 5 and 15 minute load averages, to tell whether something else used the machine.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
