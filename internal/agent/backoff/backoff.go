// Package backoff holds the agent's waiting helpers: a doubling backoff with jitter and a sleep that
// ends with its context.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a delay that doubles, with jitter, from Min up to Max.
type Backoff struct {
	Min, Max, cur time.Duration
}

// Next returns the next delay: between half and all of Min, then of twice the previous, up to Max.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur = min(2*b.cur, b.Max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

// Reset starts the delays from Min again.
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d, or returns false as soon as ctx ends.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
