package placement

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// TestCandidateChanged: what an agent's periodic status report changes is not a change of the
// candidate; what placement reads of an instance is.
func TestCandidateChanged(t *testing.T) {
	now := metav1.NewTime(time.Unix(1_800_000_000, 0))
	base := &ecsv1alpha1.ContainerInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Generation: 1},
		Spec:       ecsv1alpha1.ContainerInstanceSpec{Cluster: "stores"},
		Status: ecsv1alpha1.ContainerInstanceStatus{
			AgentConnected: true, AgentVersion: "1.0.0", RegisteredAt: &now, LastHeartbeatTime: &now,
			RegisteredResources: &ecsv1alpha1.InstanceResources{CPU: 2048, Memory: 4096},
			RemainingResources:  &ecsv1alpha1.InstanceResources{CPU: 2048, Memory: 4096},
			Attributes:          []ecsv1alpha1.Attribute{{Name: "ecs.os-type", Value: "linux"}},
		},
	}
	for name, tc := range map[string]struct {
		change func(ci *ecsv1alpha1.ContainerInstance)
		want   bool
	}{
		"a status report": {func(ci *ecsv1alpha1.ContainerInstance) {
			later := metav1.NewTime(now.Add(time.Minute))
			ci.Status.LastHeartbeatTime = &later
			ci.Status.RemainingResources = &ecsv1alpha1.InstanceResources{CPU: 1024, Memory: 2048}
		}, false},
		"disconnected":                         {func(ci *ecsv1alpha1.ContainerInstance) { ci.Status.AgentConnected = false }, true},
		"a new agent":                          {func(ci *ecsv1alpha1.ContainerInstance) { ci.Status.AgentVersion = "1.1.0" }, true},
		"more memory":                          {func(ci *ecsv1alpha1.ContainerInstance) { ci.Status.RegisteredResources.Memory = 8192 }, true},
		"an agent attribute":                   {func(ci *ecsv1alpha1.ContainerInstance) { ci.Status.Attributes[0].Value = "windows" }, true},
		"a spec change (draining, attributes)": {func(ci *ecsv1alpha1.ContainerInstance) { ci.Generation++ }, true},
		"deleted": {func(ci *ecsv1alpha1.ContainerInstance) {
			ci.DeletionTimestamp = &now
		}, true},
	} {
		t.Run(name, func(t *testing.T) {
			cur := base.DeepCopy()
			tc.change(cur)
			require.Equal(t, tc.want, CandidateChanged(base, cur))
		})
	}
}
