package registration

import (
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiter limits failures per key with a token bucket each. A key is refused while its bucket
// holds less than one token; only failures take tokens, so successes are never held back by it.
// At most max keys are kept: when full, buckets that have refilled (and so hold no memory of
// failures) are forgotten first.
type keyedLimiter struct {
	limit rate.Limit
	burst int
	max   int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newKeyedLimiter(perSecond float64, burst, max int) *keyedLimiter {
	return &keyedLimiter{limit: rate.Limit(perSecond), burst: burst, max: max, buckets: map[string]*rate.Limiter{}}
}

// blocked returns how long key must wait before its next attempt, zero if it may go ahead now.
func (l *keyedLimiter) blocked(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		return 0
	}
	tokens := b.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(l.limit) * float64(time.Second))
}

// fail records a failure of key.
func (l *keyedLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[key] = b
	}
	b.AllowN(now, 1)
}

// evict forgets every refilled bucket, and, if none had refilled, one bucket at random.
func (l *keyedLimiter) evict(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < l.max {
			return
		}
		delete(l.buckets, k)
	}
}

// sourceKey is the failure key of a client address (host:port): its IP, or for IPv6 its /64,
// which one host usually holds whole.
func sourceKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return "source:" + host
	case ip.To4() != nil:
		return "source:" + ip.To4().String()
	default:
		return "source:" + ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
}

// activationKey is the failure key of an activation id.
func activationKey(id string) string { return "activation:" + id }
