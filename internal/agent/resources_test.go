package agent

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

func TestMemTotalFromMeminfo(t *testing.T) {
	mib, err := memTotalMiB("testdata/meminfo")
	require.NoError(t, err)
	assert.Equal(t, int64(16318780/1024), mib) // 15936 MiB

	for _, bad := range []string{"", "MemFree: 12 kB\n", "MemTotal: 12 MB\n", "MemTotal: lots kB\n", "MemTotal:\n"} {
		_, err := parseMemTotalMiB(strings.NewReader(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestRegisteredResources(t *testing.T) {
	tests := []struct {
		name          string
		cpus          int
		memMiB        int64
		resCPU, resMB int32
		want          ecsv1alpha1.InstanceResources
	}{
		{"default memory reservation", 4, 15936, 0, 256, ecsv1alpha1.InstanceResources{CPU: 4096, Memory: 15680}},
		{"cpu reservation", 2, 1024, 512, 0, ecsv1alpha1.InstanceResources{CPU: 1536, Memory: 1024}},
		{"reservations larger than the host", 1, 200, 2048, 256, ecsv1alpha1.InstanceResources{CPU: 0, Memory: 0}},
		{"memory beyond int32", 4096, 1 << 40, 0, 0, ecsv1alpha1.InstanceResources{CPU: 4096 * 1024, Memory: 1<<31 - 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, registeredResources(tt.cpus, tt.memMiB, tt.resCPU, tt.resMB))
		})
	}
}

func TestBuiltinAttributes(t *testing.T) {
	assert.Equal(t, []ecsv1alpha1.Attribute{
		{Name: "ecs.capability.external"},
		{Name: "ecs.cpu-architecture", Value: "x86_64"},
		{Name: "ecs.os-family", Value: "LINUX"},
		{Name: "ecs.os-type", Value: "linux"},
	}, builtinAttributes("linux", "amd64"))
	assert.Equal(t, "arm64", ecsArchitecture("arm64"))
	assert.Equal(t, "i386", ecsArchitecture("386"))
}
