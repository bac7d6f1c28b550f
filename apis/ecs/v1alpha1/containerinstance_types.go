/*
Copyright 2026 The Drover Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ContainerInstanceState is the user-set state of a container instance.
// +kubebuilder:validation:Enum=ACTIVE;DRAINING
type ContainerInstanceState string

const (
	// ContainerInstanceActive accepts new tasks.
	ContainerInstanceActive ContainerInstanceState = "ACTIVE"
	// ContainerInstanceDraining accepts no new tasks; service tasks are replaced on other instances within the
	// deployment limits, then stopped. Standalone tasks are left alone.
	ContainerInstanceDraining ContainerInstanceState = "DRAINING"
)

// ContainerInstanceSpec is the desired state of a container instance.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.activation) || (has(self.activation) && self.activation == oldSelf.activation)",message="activation cannot be changed once set",fieldPath=".activation"
type ContainerInstanceSpec struct {
	// cluster is the name of the Cluster, in the same namespace, the instance is registered in. Immutable:
	// deregister the instance and register it again to move it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cluster is immutable; deregister the instance and register it again to move it"
	Cluster string `json:"cluster"`

	// state is ACTIVE (accepts tasks) or DRAINING (service tasks move elsewhere, no new tasks). Defaults to
	// ACTIVE.
	// +optional
	// +kubebuilder:default=ACTIVE
	State ContainerInstanceState `json:"state,omitempty"`

	// attributes are custom attributes of the instance, at most 100, unique by name, used by memberOf
	// constraints and the spread strategy. Names starting with ecs. are reserved for the built-in attributes the
	// agent reports in status.attributes.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:XValidation:rule="self.all(a, !a.name.startsWith('ecs.'))",message="attribute names starting with ecs. are reserved for built-in attributes"
	Attributes []Attribute `json:"attributes,omitempty"`

	// activation is the name of the Activation the instance registered with, in the same namespace. Set at
	// registration; cannot be changed once set.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Activation string `json:"activation,omitempty"`
}

// InstanceResources is an amount of the resources placement accounts for.
type InstanceResources struct {
	// cpu in CPU units, 1024 per vCPU.
	// +optional
	// +kubebuilder:validation:Minimum=0
	CPU int32 `json:"cpu,omitempty"`

	// memory in MiB.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Memory int32 `json:"memory,omitempty"`

	// ports are host ports not available to tasks, at most 1000: in registeredResources those the agent
	// reserves (its configuration's reserved ports); in remainingResources those plus the host ports bound by
	// running tasks.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:Minimum=0
	// +kubebuilder:validation:items:Maximum=65535
	Ports []int32 `json:"ports,omitempty"`
}

// ContainerInstance condition types and reasons.
const (
	// ContainerInstanceConditionConnected is True while the agent renews its heartbeat Lease.
	ContainerInstanceConditionConnected = "Connected"
	// ContainerInstanceConditionDrained is True when a DRAINING instance runs no service tasks any more.
	ContainerInstanceConditionDrained = "Drained"

	// ContainerInstanceReasonHeartbeat means the agent's heartbeat is current.
	ContainerInstanceReasonHeartbeat = "AgentHeartbeat"
	// ContainerInstanceReasonHeartbeatExpired means the agent's heartbeat Lease expired.
	ContainerInstanceReasonHeartbeatExpired = "HeartbeatExpired"
	// ContainerInstanceReasonNeverConnected means the agent has not connected since registration.
	ContainerInstanceReasonNeverConnected = "AgentNeverConnected"
	// ContainerInstanceReasonDrainingTasks means service tasks still run on a DRAINING instance.
	ContainerInstanceReasonDrainingTasks = "ServiceTasksRemaining"
	// ContainerInstanceReasonDrained means no service tasks remain on a DRAINING instance.
	ContainerInstanceReasonDrained = "NoServiceTasks"
	// ContainerInstanceReasonActive means the instance is ACTIVE, so draining does not apply.
	ContainerInstanceReasonActive = "InstanceActive"
)

// ContainerInstanceStatus is the observed state of a container instance, reported by its agent and the
// containerinstance controller.
type ContainerInstanceStatus struct {
	// observedGeneration is the metadata.generation the containerinstance controller last acted on.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// agentConnected is true while the agent renews its heartbeat Lease. Tasks on a disconnected instance are
	// handled by their services' disconnectPolicy.
	// +optional
	AgentConnected bool `json:"agentConnected,omitempty"`

	// agentVersion is the version of drover-agent, for example 0.1.0.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	AgentVersion string `json:"agentVersion,omitempty"`

	// dockerVersion is the version of the Docker Engine, for example 27.3.1.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	DockerVersion string `json:"dockerVersion,omitempty"`

	// osType is the operating system of the host, for example linux.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	OSType string `json:"osType,omitempty"`

	// cpuArchitecture is the CPU architecture of the host, for example x86_64 or arm64.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	CPUArchitecture string `json:"cpuArchitecture,omitempty"`

	// hostname of the host.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Hostname string `json:"hostname,omitempty"`

	// registeredAt is when the instance registered.
	// +optional
	RegisteredAt *metav1.Time `json:"registeredAt,omitempty"`

	// lastHeartbeatTime is when the agent's heartbeat was last seen. Heartbeats renew a Lease; this field is
	// updated only when the connection state changes or periodically, so it may lag by up to five minutes.
	// +optional
	LastHeartbeatTime *metav1.Time `json:"lastHeartbeatTime,omitempty"`

	// registeredResources are the cpu, memory and reserved ports the instance offers to tasks.
	// +optional
	RegisteredResources *InstanceResources `json:"registeredResources,omitempty"`

	// remainingResources are registeredResources minus what the tasks placed on the instance reserve.
	// +optional
	RemainingResources *InstanceResources `json:"remainingResources,omitempty"`

	// attributes are the built-in attributes the agent reports (ecs.os-type, ecs.os-family,
	// ecs.cpu-architecture, ecs.capability.external, ...), at most 100, unique by name.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=100
	Attributes []Attribute `json:"attributes,omitempty"`

	// runningTasksCount is the number of tasks on the instance that are RUNNING.
	// +optional
	// +kubebuilder:validation:Minimum=0
	RunningTasksCount int32 `json:"runningTasksCount,omitempty"`

	// pendingTasksCount is the number of tasks placed on the instance that are not yet RUNNING.
	// +optional
	// +kubebuilder:validation:Minimum=0
	PendingTasksCount int32 `json:"pendingTasksCount,omitempty"`

	// conditions: Connected, Drained.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ContainerInstance is a host that runs tasks: a server, PC, edge box or VM whose drover-agent registered with
// an Activation. Registration creates it; the agent reports its status; users drain it (spec.state DRAINING)
// and give it custom attributes. Deleting it deregisters the host: its tasks keep running there, but the
// control plane forgets them and services start replacements elsewhere.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=ecs,shortName=ci
// +kubebuilder:selectablefield:JSONPath=`.spec.cluster`
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`,description="Cluster the instance is registered in"
// +kubebuilder:printcolumn:name="Connected",type=boolean,JSONPath=`.status.agentConnected`,description="Whether the agent is connected"
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.spec.state`,description="ACTIVE or DRAINING"
// +kubebuilder:printcolumn:name="Running",type=integer,JSONPath=`.status.runningTasksCount`,description="RUNNING tasks"
// +kubebuilder:printcolumn:name="CPU-Remaining",type=integer,JSONPath=`.status.remainingResources.cpu`,description="Unreserved CPU units"
// +kubebuilder:printcolumn:name="Mem-Remaining",type=integer,JSONPath=`.status.remainingResources.memory`,description="Unreserved memory in MiB"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Agent",type=string,JSONPath=`.status.agentVersion`,priority=1,description="drover-agent version"
// +kubebuilder:printcolumn:name="Arch",type=string,JSONPath=`.status.cpuArchitecture`,priority=1,description="CPU architecture"
type ContainerInstance struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state: cluster, state and custom attributes.
	// +required
	Spec ContainerInstanceSpec `json:"spec"`

	// status is the observed state, reported by the agent and the containerinstance controller.
	// +optional
	Status ContainerInstanceStatus `json:"status,omitempty"`
}

// ContainerInstanceList is a list of ContainerInstances.
// +kubebuilder:object:root=true
type ContainerInstanceList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the ContainerInstances.
	Items []ContainerInstance `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ContainerInstance{}, &ContainerInstanceList{})
}
