package registration

import (
	"fmt"
	"testing"
	"time"
)

func TestKeyedLimiter(t *testing.T) {
	l := newKeyedLimiter(1, 3, 100) // one failure a second, three at once
	now := time.Unix(1000, 0)
	if d := l.blocked("k", now); d != 0 {
		t.Fatalf("a key without failures is blocked for %s", d)
	}
	for i := range 3 {
		if d := l.blocked("k", now); d != 0 {
			t.Fatalf("blocked after %d failures, burst is 3", i)
		}
		l.fail("k", now)
	}
	if d := l.blocked("k", now); d != time.Second {
		t.Fatalf("after the burst: blocked for %s, want 1s", d)
	}
	if d := l.blocked("other", now); d != 0 {
		t.Fatalf("another key is blocked for %s", d)
	}
	if d := l.blocked("k", now.Add(time.Second)); d != 0 {
		t.Fatalf("one second later still blocked for %s", d)
	}
}

func TestKeyedLimiterIsBounded(t *testing.T) {
	l := newKeyedLimiter(1, 2, 10)
	now := time.Unix(1000, 0)
	for i := range 100 {
		l.fail(fmt.Sprint(i), now)
		if len(l.buckets) > 10 {
			t.Fatalf("%d buckets, at most 10 allowed", len(l.buckets))
		}
	}
	// Refilled buckets go first: a key with recent failures survives a sweep.
	l = newKeyedLimiter(1, 2, 3)
	l.fail("a", now)
	l.fail("b", now)
	l.fail("busy", now.Add(10*time.Second))
	l.fail("busy", now.Add(10*time.Second))
	l.fail("new", now.Add(10*time.Second))
	if _, ok := l.buckets["busy"]; !ok {
		t.Fatal("the bucket with recent failures was evicted before refilled ones")
	}
}

func TestSourceKey(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"10.1.2.3:4567", "source:10.1.2.3"},
		{"[2001:db8:1:2:3:4:5:6]:443", "source:2001:db8:1:2::/64"},
		{"[::ffff:10.1.2.3]:1", "source:10.1.2.3"},
		{"pipe", "source:pipe"},
	} {
		if got := sourceKey(tc.addr); got != tc.want {
			t.Errorf("sourceKey(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
