package placement

import (
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// NewCandidate describes a container instance with nothing placed on it yet: its registered
// resources and reserved ports, its state and connection, and its attributes (spec.attributes set
// by users win over the agent's status.attributes). Assign the instance's tasks to it next.
func NewCandidate(ci *ecsv1alpha1.ContainerInstance) Candidate {
	c := Candidate{
		Active:        ci.Spec.State != ecsv1alpha1.ContainerInstanceDraining,
		UsedHostPorts: map[PortKey]bool{},
	}
	c.ID = ci.Name
	c.AgentConnected = ci.Status.AgentConnected
	c.AgentVersion = ci.Status.AgentVersion
	if ci.Status.RegisteredAt != nil {
		c.RegisteredAt = ci.Status.RegisteredAt.Time
	}
	c.Attributes = make(map[string]string, len(ci.Status.Attributes)+len(ci.Spec.Attributes))
	for _, a := range ci.Status.Attributes {
		c.Attributes[a.Name] = a.Value
	}
	for _, a := range ci.Spec.Attributes {
		c.Attributes[a.Name] = a.Value
	}
	c.TaskGroups = map[string]int{}
	if res := ci.Status.RegisteredResources; res != nil {
		c.RemainingCPU, c.RemainingMemory = int64(res.CPU), int64(res.Memory)
		for _, p := range res.Ports {
			c.UsedHostPorts[PortKey{Port: p, Protocol: "tcp"}] = true
			c.UsedHostPorts[PortKey{Port: p, Protocol: "udp"}] = true
		}
	}
	return c
}

// CandidateChanged reports whether an instance changed in what NewCandidate reads of it: its spec
// (state, attributes), deletion, connection, agent version, registration time, agent attributes or
// registered resources. An agent's periodic status report changes none of these.
func CandidateChanged(old, cur *ecsv1alpha1.ContainerInstance) bool {
	return old.Generation != cur.Generation || !old.DeletionTimestamp.Equal(cur.DeletionTimestamp) ||
		old.Status.AgentConnected != cur.Status.AgentConnected || old.Status.AgentVersion != cur.Status.AgentVersion ||
		!old.Status.RegisteredAt.Equal(cur.Status.RegisteredAt) ||
		!apiequality.Semantic.DeepEqual(old.Status.Attributes, cur.Status.Attributes) ||
		!apiequality.Semantic.DeepEqual(old.Status.RegisteredResources, cur.Status.RegisteredResources)
}
