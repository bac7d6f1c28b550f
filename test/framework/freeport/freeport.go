// Package freeport picks TCP ports on 127.0.0.1 for servers that tests and benchmarks start.
//
// Ports come from below the kernel's ephemeral range (net.ipv4.ip_local_port_range). Asking the
// kernel for port 0 would return a port from inside that range, where every outgoing connection on
// the machine (clients of other test binaries running in parallel, Docker, gRPC) also takes its
// source port, so a port that was free when picked is often taken by the time the server binds it.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the first port considered: above the well-known and most registered service ports.
const lowest = 15000

var (
	mu     sync.Mutex
	handed = map[int]bool{} // ports this process already handed out
)

// Pick returns n distinct ports on 127.0.0.1 that were free a moment ago, that this process has not
// returned before, and that lie outside the ephemeral range.
func Pick(n int) ([]int, error) {
	lo, hi, err := candidates()
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	var ports []int
	for attempts := 0; len(ports) < n; attempts++ {
		if attempts > 10000 {
			return nil, errors.New("no free port found on 127.0.0.1 after 10000 attempts")
		}
		p := lo + rand.IntN(hi-lo)
		if handed[p] || !free(p) {
			continue
		}
		handed[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// free reports whether p can be bound on 127.0.0.1 (which also fails when another process
// listens on p on every address).
func free(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// candidates returns [lo, hi): the ports below the ephemeral range, or, where that range starts too
// low to leave room, the ports above it.
func candidates() (int, int, error) {
	start, end := 32768, 60999 // Linux's default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if s, err1 := strconv.Atoi(f[0]); err1 == nil {
				if e, err2 := strconv.Atoi(f[1]); err2 == nil {
					start, end = s, e
				}
			}
		}
	}
	if start-lowest >= 2000 {
		return lowest, start, nil
	}
	if 65535-end >= 2000 {
		return end + 1, 65536, nil
	}
	return 0, 0, fmt.Errorf("the ephemeral port range %d-%d (net.ipv4.ip_local_port_range) leaves no room for "+
		"test servers' ports; narrow it to start at 20000 or above", start, end)
}
