package registration

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
)

func TestKeyedMutex(t *testing.T) {
	var k keyedMutex
	a, b := types.NamespacedName{Namespace: "default", Name: "a"}, types.NamespacedName{Namespace: "default", Name: "b"}

	// Another key is not held up by a held one.
	unlockA := k.lock(a)
	done := make(chan struct{})
	go func() { k.lock(b)(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("locking another key waited for a held one")
	}

	// The same key is held by one at a time: 50 increments without their own synchronization
	// all count.
	n := 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			defer k.lock(a)()
			v := n
			time.Sleep(time.Microsecond)
			n = v + 1
		})
	}
	unlockA()
	wg.Wait()
	require.Equal(t, 50, n)
	require.Empty(t, k.locks, "no lock is kept once nobody holds or waits for it")
}
