package droverd

import (
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

func TestInFlightLimitsReachTheServerAndMustBePositive(t *testing.T) {
	parse := func(args ...string) *Options {
		o := NewOptions()
		fs := pflag.NewFlagSet("droverd", pflag.ContinueOnError)
		o.AddFlags(fs)
		require.NoError(t, fs.Parse(args))
		return o
	}
	o := parse("--max-requests-inflight", "120", "--max-mutating-requests-inflight", "60")
	require.NoError(t, o.Validate())
	cfg := o.ServerConfig()
	require.Equal(t, [2]int{120, 60}, [2]int{cfg.MaxRequestsInFlight, cfg.MaxMutatingRequestsInFlight})

	defaults := parse().ServerConfig()
	require.Equal(t, [2]int{400, 200}, [2]int{defaults.MaxRequestsInFlight, defaults.MaxMutatingRequestsInFlight},
		"the defaults are kube-apiserver's")

	err := parse("--max-mutating-requests-inflight", "0").Validate()
	require.ErrorContains(t, err, "--max-mutating-requests-inflight 0")
	require.ErrorContains(t, err, "must be at least 1")
	require.NotContains(t, err.Error(), "--max-requests-inflight", "only the flag that is wrong is named")
}
