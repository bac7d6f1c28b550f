package agent

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDockerVersionFromTheEngine(t *testing.T) {
	d, err := NewDocker()
	require.NoError(t, err)
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	v, err := d.Version(ctx)
	if err != nil {
		t.Skipf("no Docker Engine reachable: %v", err)
	}
	assert.Regexp(t, `^\d+\.\d+`, v)
}
