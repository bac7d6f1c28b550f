package runtime

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func docker(t *testing.T) *Docker {
	t.Helper()
	d, err := NewDocker()
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := d.Version(ctx); err != nil {
		t.Skipf("no Docker Engine reachable: %v", err)
	}
	return d
}

func TestDockerVersionFromTheEngine(t *testing.T) {
	d := docker(t)
	v, err := d.Version(t.Context())
	require.NoError(t, err)
	assert.Regexp(t, `^\d+\.\d+`, v)
}

func TestDockerNotFoundIsErrNotFound(t *testing.T) {
	d := docker(t)
	_, err := d.InspectContainer(t.Context(), "drover-no-such-container")
	assert.True(t, errors.Is(err, ErrNotFound), "%v", err)
	_, err = d.InspectImage(t.Context(), "drover-no-such-image:1")
	assert.True(t, errors.Is(err, ErrNotFound), "%v", err)
	assert.NoError(t, d.RemoveVolume(t.Context(), "drover-no-such-volume"), "removing a volume that is not there is not an error")
}
