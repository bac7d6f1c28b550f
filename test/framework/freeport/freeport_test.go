package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPickedPortsAreDistinctBindableAndBelowTheEphemeralRange(t *testing.T) {
	lo, hi, err := candidates()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for range 50 {
		ports, err := Pick(4)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
			if p < lo || p >= hi {
				t.Fatalf("port %d outside [%d, %d)", p, lo, hi)
			}
		}
	}
	ports, err := Pick(1)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])))
	if err != nil {
		t.Fatalf("picked port %d cannot be bound: %v", ports[0], err)
	}
	l.Close()
}

func TestAPortListenedOnIsNotFree(t *testing.T) {
	lo, _, err := candidates()
	if err != nil {
		t.Fatal(err)
	}
	if free(lo) {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(lo)))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
	}
	if free(lo) {
		t.Fatalf("port %d reported free while it is listened on", lo)
	}
}
