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

// NetworkMode is the Docker networking mode of a task's containers.
// +kubebuilder:validation:Enum=bridge;host;none
type NetworkMode string

const (
	// NetworkModeBridge connects containers to Docker's bridge network; port mappings publish them on the host.
	NetworkModeBridge NetworkMode = "bridge"
	// NetworkModeHost shares the host's network stack; containers bind host ports directly.
	NetworkModeHost NetworkMode = "host"
	// NetworkModeNone gives containers only a loopback interface.
	NetworkModeNone NetworkMode = "none"
)

// The host port rule turns each container's port mappings into keys, 2*hostPort (+1 for udp), where the host
// port is the containerPort in host mode, and checks that no container's keys intersect another's. Its cost
// grows with the square of all mappings of a task; the bounds of 10 containers of 50 mappings keep the worst
// case near 40% of the CEL per-call limit (see TestRulesWorstCase). Duplicates inside one container are caught
// by the ContainerDefinition rule and the portMappings list keys.

// TaskDefinitionSpec describes the containers of a task and how they run, with the field names of the ECS API.
// +kubebuilder:validation:XValidation:rule="has(self.memory) || self.containerDefinitions.all(c, has(c.memory) || has(c.memoryReservation))",messageExpression=`'container %s sets neither memory nor memoryReservation; set one of them, or set the task-level memory'.format([self.containerDefinitions.map(c, has(c.memory) || has(c.memoryReservation) ? "" : c.name).filter(n, n != "")[0]])`,fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="self.containerDefinitions.exists(c, !has(c.essential) || c.essential)",message="at least one container must be essential (essential defaults to true)",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="self.containerDefinitions.all(c, !has(c.dependsOn) || c.dependsOn.all(d, self.containerDefinitions.exists(o, o.name == d.containerName)))",messageExpression=`'container %s: dependsOn refers to a container that is not in containerDefinitions'.format([self.containerDefinitions.map(c, !has(c.dependsOn) || c.dependsOn.all(d, self.containerDefinitions.exists(o, o.name == d.containerName)) ? "" : c.name).filter(n, n != "")[0]])`,fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="self.containerDefinitions.all(c, !has(c.dependsOn) || c.dependsOn.all(d, d.condition != 'HEALTHY' || !self.containerDefinitions.exists(o, o.name == d.containerName && !has(o.healthCheck))))",message="dependsOn condition HEALTHY needs a healthCheck on the container it waits for",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="[has(self.volumes) ? self.volumes.map(v, v.name) : []].all(vs, self.containerDefinitions.all(c, !has(c.mountPoints) || c.mountPoints.all(m, m.sourceVolume in vs)))",messageExpression=`'container %s: mountPoints refer to a sourceVolume that is not in volumes'.format([[has(self.volumes) ? self.volumes.map(v, v.name) : []].map(vs, self.containerDefinitions.map(c, !has(c.mountPoints) || c.mountPoints.all(m, m.sourceVolume in vs) ? "" : c.name).filter(n, n != "")[0])[0]])`,fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="!has(self.networkMode) || self.networkMode != 'host' || self.containerDefinitions.all(c, !has(c.portMappings) || c.portMappings.all(p, !has(p.hostPort) || p.hostPort == 0 || p.hostPort == p.containerPort))",message="in networkMode host, hostPort must equal containerPort or be absent",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="!has(self.networkMode) || self.networkMode != 'none' || self.containerDefinitions.all(c, !has(c.portMappings) || c.portMappings.size() == 0)",message="networkMode none has no network to publish ports on; remove portMappings or use networkMode bridge or host",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="[self.containerDefinitions.map(c, has(c.portMappings) ? c.portMappings.map(p, ((has(self.networkMode) && self.networkMode == 'host') ? p.containerPort : (has(p.hostPort) ? p.hostPort : 0)) * 2 + (p.protocol == 'udp' ? 1 : 0)).filter(k, k > 1) : [])].all(ks, ks.all(a, ks.filter(b, sets.intersects(a, b)).size() <= 1))",messageExpression="[[self.containerDefinitions.map(c, has(c.portMappings) ? c.portMappings.map(p, ((has(self.networkMode) && self.networkMode == 'host') ? p.containerPort : (has(p.hostPort) ? p.hostPort : 0)) * 2 + (p.protocol == 'udp' ? 1 : 0)).filter(k, k > 1) : [])].map(ks, ks.filter(a, ks.filter(b, sets.intersects(a, b)).size() > 1).map(a, a.filter(k, ks.filter(b, k in b).size() > 1)[0])[0])[0]].map(k, 'hostPort %s/%s is used by more than one port mapping; host ports must be unique within a task'.format([string(k / 2), k % 2 == 1 ? 'udp' : 'tcp']))[0]",fieldPath=".containerDefinitions"
type TaskDefinitionSpec struct {
	// containerDefinitions are the containers of the task, 1-10, unique by name.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	ContainerDefinitions []ContainerDefinition `json:"containerDefinitions"`

	// cpu is the number of CPU units reserved for the whole task, 1024 per vCPU (1-65536). Absent means the sum of
	// the containers' cpu.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65536
	CPU *int32 `json:"cpu,omitempty"`

	// memory is the hard memory limit of the whole task in MiB (at least 6), and what placement reserves for it.
	// Absent means the sum of the containers' memoryReservation, or memory where no reservation is set; every
	// container must then set one of them.
	// +optional
	// +kubebuilder:validation:Minimum=6
	Memory *int32 `json:"memory,omitempty"`

	// networkMode is the Docker networking mode of the containers: bridge, host or none. Defaults to bridge.
	// +optional
	// +kubebuilder:default=bridge
	NetworkMode NetworkMode `json:"networkMode,omitempty"`

	// volumes the containers can mount through mountPoints, at most 20, unique by name.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=20
	Volumes []Volume `json:"volumes,omitempty"`

	// placementConstraints restrict the container instances the task can be placed on, at most 10. Only
	// memberOf constraints are allowed here; they apply to every task of this definition, in addition to those
	// of the service or of the run.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:XValidation:rule="self.all(c, c.type == 'memberOf')",message="only memberOf constraints are allowed in a task definition; set distinctInstance on the service"
	PlacementConstraints []PlacementConstraint `json:"placementConstraints,omitempty"`
}

// Volume is storage that containers of a task can mount.
type Volume struct {
	// name of the volume, referred to by mountPoints.sourceVolume: 1-255 letters, digits, hyphens and underscores.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_-]+$`
	Name string `json:"name"`

	// host is a bind mount of a path on the container instance. Absent means a Docker volume that the agent
	// creates for the task and removes with it.
	// +optional
	Host *HostVolumeProperties `json:"host,omitempty"`
}

// HostVolumeProperties is a bind mount of a path on the container instance.
type HostVolumeProperties struct {
	// sourcePath is the absolute path on the host. It is created when it does not exist.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:Pattern=`^/`
	SourcePath string `json:"sourcePath"`
}

// TaskDefinition condition types and reasons.
const (
	// TaskDefinitionConditionRevisionCurrent is True when status.latestRevisionName holds the current spec.
	TaskDefinitionConditionRevisionCurrent = "RevisionCurrent"

	// TaskDefinitionReasonRevisionCreated means the revision of the current spec exists.
	TaskDefinitionReasonRevisionCreated = "RevisionCreated"
	// TaskDefinitionReasonRevisionPending means the spec changed and its revision is not created yet.
	TaskDefinitionReasonRevisionPending = "RevisionPending"
	// TaskDefinitionReasonRevisionFailed means creating the revision failed; the message says why.
	TaskDefinitionReasonRevisionFailed = "RevisionFailed"
)

// TaskDefinitionStatus is the observed state of a TaskDefinition.
type TaskDefinitionStatus struct {
	// observedGeneration is the metadata.generation whose spec latestRevision holds.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// latestRevision is the number of the newest revision, counting from 1. Absent until the first revision
	// exists.
	// +optional
	// +kubebuilder:validation:Minimum=1
	LatestRevision int32 `json:"latestRevision,omitempty"`

	// latestRevisionName is the name of the newest TaskDefinitionRevision, <family>-<latestRevision>.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	LatestRevisionName string `json:"latestRevisionName,omitempty"`

	// conditions: RevisionCurrent.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// TaskDefinition is a task definition family, as ECS calls it: the metadata.name is the family, and every change
// to spec is snapshot into an immutable TaskDefinitionRevision named <family>-<n>, which services and tasks
// run. A Service that names the family follows its latest revision; <family>:<n> pins revision n.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=ecs,shortName=td
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 242",message="metadata.name, the task definition family, must be at most 242 characters so that revision names <family>-<n> fit in 253"
// +kubebuilder:printcolumn:name="Latest",type=integer,JSONPath=`.status.latestRevision`,description="Number of the newest revision"
// +kubebuilder:printcolumn:name="Network",type=string,JSONPath=`.spec.networkMode`,description="Docker networking mode"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="CPU",type=integer,JSONPath=`.spec.cpu`,priority=1,description="Task CPU units (1024 per vCPU)"
// +kubebuilder:printcolumn:name="Memory",type=integer,JSONPath=`.spec.memory`,priority=1,description="Task memory in MiB"
type TaskDefinition struct {
	metav1.TypeMeta `json:",inline"`
	// metadata.name is the task definition family: a DNS subdomain of at most 242 characters, so that revision
	// names fit in 253.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the task definition as the user writes it.
	// +required
	Spec TaskDefinitionSpec `json:"spec"`

	// status is the observed state: the latest revision.
	// +optional
	Status TaskDefinitionStatus `json:"status,omitempty"`
}

// TaskDefinitionList is a list of TaskDefinitions.
// +kubebuilder:object:root=true
type TaskDefinitionList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the TaskDefinitions.
	Items []TaskDefinition `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TaskDefinition{}, &TaskDefinitionList{})
}
