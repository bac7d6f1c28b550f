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

// TaskDesiredStatus is the state a task should be in.
// +kubebuilder:validation:Enum=RUNNING;STOPPED
type TaskDesiredStatus string

const (
	// TaskDesiredRunning asks for the task to run.
	TaskDesiredRunning TaskDesiredStatus = "RUNNING"
	// TaskDesiredStopped asks for the task to stop. It is final.
	TaskDesiredStopped TaskDesiredStatus = "STOPPED"
)

// TaskState is the lifecycle state of a task, reported in status.lastStatus. It only moves forward, and a
// runtime may skip the states it does not need:
//
//	PROVISIONING -> PENDING -> ACTIVATING -> RUNNING -> DEACTIVATING -> STOPPING -> DEPROVISIONING -> STOPPED
//
// A task can stop from any state; STOPPED is final.
//
// +kubebuilder:validation:Enum=PROVISIONING;PENDING;ACTIVATING;RUNNING;DEACTIVATING;STOPPING;DEPROVISIONING;STOPPED
type TaskState string

const (
	// TaskStateProvisioning means the task is accepted and resources are being set up.
	TaskStateProvisioning TaskState = "PROVISIONING"
	// TaskStatePending means the agent is pulling images and creating containers.
	TaskStatePending TaskState = "PENDING"
	// TaskStateActivating means the containers are starting.
	TaskStateActivating TaskState = "ACTIVATING"
	// TaskStateRunning means the essential containers run.
	TaskStateRunning TaskState = "RUNNING"
	// TaskStateDeactivating means the task is being taken out of service.
	TaskStateDeactivating TaskState = "DEACTIVATING"
	// TaskStateStopping means the containers are being stopped (SIGTERM, then SIGKILL after stopTimeout).
	TaskStateStopping TaskState = "STOPPING"
	// TaskStateDeprovisioning means the task's resources are being released.
	TaskStateDeprovisioning TaskState = "DEPROVISIONING"
	// TaskStateStopped means the task has stopped. It is final.
	TaskStateStopped TaskState = "STOPPED"
)

var taskStateOrder = map[TaskState]int{
	TaskStateProvisioning:   1,
	TaskStatePending:        2,
	TaskStateActivating:     3,
	TaskStateRunning:        4,
	TaskStateDeactivating:   5,
	TaskStateStopping:       6,
	TaskStateDeprovisioning: 7,
	TaskStateStopped:        8,
}

// Before reports whether s comes before other in the task lifecycle. The empty status comes before every state.
func (s TaskState) Before(other TaskState) bool {
	return taskStateOrder[s] < taskStateOrder[other]
}

// Terminal reports whether s is STOPPED, after which a task never changes state again.
func (s TaskState) Terminal() bool {
	return s == TaskStateStopped
}

// HealthStatus is the health of a container or task. A task's health is derived from its essential
// containers: UNHEALTHY if any is UNHEALTHY, HEALTHY if all that have a health check are HEALTHY, else UNKNOWN.
// +kubebuilder:validation:Enum=HEALTHY;UNHEALTHY;UNKNOWN
type HealthStatus string

const (
	// HealthStatusHealthy means the health checks pass.
	HealthStatusHealthy HealthStatus = "HEALTHY"
	// HealthStatusUnhealthy means a health check failed retries times in a row.
	HealthStatusUnhealthy HealthStatus = "UNHEALTHY"
	// HealthStatusUnknown means there is no health check or no result yet.
	HealthStatusUnknown HealthStatus = "UNKNOWN"
)

// TaskStopCode says why a task stopped.
// +kubebuilder:validation:Enum=TaskFailedToStart;EssentialContainerExited;UserInitiated;ServiceSchedulerInitiated;TerminationNotice
type TaskStopCode string

const (
	// StopCodeTaskFailedToStart means the task could not start (image pull, container create or start failed).
	StopCodeTaskFailedToStart TaskStopCode = "TaskFailedToStart"
	// StopCodeEssentialContainerExited means an essential container exited.
	StopCodeEssentialContainerExited TaskStopCode = "EssentialContainerExited"
	// StopCodeUserInitiated means a user set desiredStatus STOPPED.
	StopCodeUserInitiated TaskStopCode = "UserInitiated"
	// StopCodeServiceSchedulerInitiated means the service stopped the task (scale-in, deployment, unhealthy, drain).
	StopCodeServiceSchedulerInitiated TaskStopCode = "ServiceSchedulerInitiated"
	// StopCodeTerminationNotice means the host is shutting down.
	StopCodeTerminationNotice TaskStopCode = "TerminationNotice"
)

// ContainerState is the lifecycle state of one container of a task.
// +kubebuilder:validation:Enum=PENDING;RUNNING;STOPPED
type ContainerState string

const (
	// ContainerStatePending means the container is not started yet (image pull, create, waiting on dependsOn).
	ContainerStatePending ContainerState = "PENDING"
	// ContainerStateRunning means the container runs.
	ContainerStateRunning ContainerState = "RUNNING"
	// ContainerStateStopped means the container exited, or never started, and will not be restarted.
	ContainerStateStopped ContainerState = "STOPPED"
)

// TaskSpec is the desired state of a task. A user who runs a standalone task (ECS RunTask) sets cluster and
// taskDefinition, and containerInstance to choose the host (ECS StartTask); the task controller resolves the
// revision into taskDefinitionRevision, containers, networkMode, volumes, cpu and memory, and the placement
// controller sets containerInstance. Each of those is set once and then immutable, so the agent never sees a
// task change under it.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.taskDefinitionRevision) || (has(self.taskDefinitionRevision) && self.taskDefinitionRevision == oldSelf.taskDefinitionRevision)",message="taskDefinitionRevision cannot be changed once set",fieldPath=".taskDefinitionRevision"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.containers) || (has(self.containers) && self.containers == oldSelf.containers)",message="containers cannot be changed once resolved; run a new task instead",fieldPath=".containers"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.networkMode) || (has(self.networkMode) && self.networkMode == oldSelf.networkMode)",message="networkMode cannot be changed once resolved",fieldPath=".networkMode"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.volumes) || (has(self.volumes) && self.volumes == oldSelf.volumes)",message="volumes cannot be changed once resolved",fieldPath=".volumes"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.cpu) || (has(self.cpu) && self.cpu == oldSelf.cpu)",message="cpu cannot be changed once resolved",fieldPath=".cpu"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.memory) || (has(self.memory) && self.memory == oldSelf.memory)",message="memory cannot be changed once resolved",fieldPath=".memory"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.containerInstance) || (has(self.containerInstance) && self.containerInstance == oldSelf.containerInstance)",message="spec.containerInstance cannot be changed once the task is placed",fieldPath=".containerInstance"
type TaskSpec struct {
	// cluster is the name of the Cluster, in the same namespace, the task runs in. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cluster is immutable"
	Cluster string `json:"cluster"`

	// taskDefinition is the task definition as referenced: a family name (web) means its latest revision when
	// the task is resolved; family:n (web:3) means revision n. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[1-9][0-9]{0,9})?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="taskDefinition is immutable"
	TaskDefinition string `json:"taskDefinition"`

	// taskDefinitionRevision is the name of the TaskDefinitionRevision the task runs, <family>-<n>. Set once,
	// by the task controller or by the service that creates the task, then immutable.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	TaskDefinitionRevision string `json:"taskDefinitionRevision,omitempty"`

	// containers are the container definitions copied from the revision, 1-10, unique by name: what the agent
	// runs. Set once, then immutable.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	Containers []ContainerDefinition `json:"containers,omitempty"`

	// networkMode is the revision's networkMode: bridge, host or none. Set once, then immutable.
	// +optional
	NetworkMode NetworkMode `json:"networkMode,omitempty"`

	// volumes are the revision's volumes, at most 20, unique by name. Set once, then immutable.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=20
	Volumes []Volume `json:"volumes,omitempty"`

	// cpu is the revision's task-level cpu in CPU units, 1024 per vCPU. Set once, then immutable.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65536
	CPU *int32 `json:"cpu,omitempty"`

	// memory is the revision's task-level memory in MiB. Set once, then immutable.
	// +optional
	// +kubebuilder:validation:Minimum=6
	Memory *int32 `json:"memory,omitempty"`

	// placementConstraints of this run of the task, at most 10, in addition to those of the task definition. A
	// service copies its own here. Read when the task is placed.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	PlacementConstraints []PlacementConstraint `json:"placementConstraints,omitempty"`

	// placementStrategy of this run of the task, at most 5. Absent means random. Read when the task is placed.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	PlacementStrategy []PlacementStrategy `json:"placementStrategy,omitempty"`

	// containerInstance is the name of the ContainerInstance the task runs on. Empty until the task is placed;
	// set it at creation to choose the instance (ECS StartTask). Once set it cannot be changed.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ContainerInstance string `json:"containerInstance,omitempty"`

	// desiredStatus is RUNNING or STOPPED. Defaults to RUNNING. Setting STOPPED stops the task; it cannot go
	// back to RUNNING.
	// +optional
	// +kubebuilder:default=RUNNING
	// +kubebuilder:validation:XValidation:rule="oldSelf != 'STOPPED' || self == 'STOPPED'",message="desiredStatus cannot go from STOPPED back to RUNNING; run a new task instead"
	DesiredStatus TaskDesiredStatus `json:"desiredStatus,omitempty"`

	// startedBy says who started the task, at most 128 characters: the service's deployment id for service
	// tasks, anything the user likes for standalone tasks.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	StartedBy string `json:"startedBy,omitempty"`

	// group is the task group, at most 255 characters: service:<name> for service tasks, family:<family> by
	// default for standalone tasks. distinctInstance and task:group expressions use it.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	Group string `json:"group,omitempty"`
}

// NetworkBinding is a container port published on the host.
type NetworkBinding struct {
	// bindIP is the host address the port is bound to, for example 0.0.0.0.
	// +optional
	// +kubebuilder:validation:MaxLength=45
	BindIP string `json:"bindIP,omitempty"`

	// containerPort is the port inside the container.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	ContainerPort int32 `json:"containerPort"`

	// hostPort is the port on the host, chosen by Docker when the mapping asked for a dynamic port.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	HostPort int32 `json:"hostPort"`

	// protocol is tcp or udp.
	// +optional
	Protocol TransportProtocol `json:"protocol,omitempty"`
}

// ContainerStatus is the observed state of one container of a task.
type ContainerStatus struct {
	// name of the container, as in spec.containers.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Name string `json:"name"`

	// runtimeId is the Docker container id.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	RuntimeID string `json:"runtimeId,omitempty"`

	// image is the image reference the container runs.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Image string `json:"image,omitempty"`

	// imageDigest is the digest of the image pulled, sha256:<hex>.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	ImageDigest string `json:"imageDigest,omitempty"`

	// lastStatus is PENDING, RUNNING or STOPPED.
	// +optional
	LastStatus ContainerState `json:"lastStatus,omitempty"`

	// exitCode of the container once it has exited.
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`

	// reason explains lastStatus or exitCode, for people, for example "OutOfMemoryError: container killed".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`

	// healthStatus is the result of the container's health check: HEALTHY, UNHEALTHY or UNKNOWN.
	// +optional
	HealthStatus HealthStatus `json:"healthStatus,omitempty"`

	// restartCount is the number of times the agent restarted the container under its restartPolicy.
	// +optional
	// +kubebuilder:validation:Minimum=0
	RestartCount int32 `json:"restartCount,omitempty"`

	// networkBindings are the container's published ports, at most 100.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	NetworkBindings []NetworkBinding `json:"networkBindings,omitempty"`
}

// Task condition types and reasons.
const (
	// TaskConditionResolved is True once spec carries the revision's containers.
	TaskConditionResolved = "Resolved"
	// TaskConditionPlaced is True once spec.containerInstance is set.
	TaskConditionPlaced = "Placed"

	// TaskReasonResolved means the revision was copied into spec.
	TaskReasonResolved = "Resolved"
	// TaskReasonTaskDefinitionNotFound means spec.taskDefinition names no existing revision.
	TaskReasonTaskDefinitionNotFound = "TaskDefinitionNotFound"
	// TaskReasonPlaced means the task is bound to a container instance.
	TaskReasonPlaced = "Placed"
	// TaskReasonNoInstanceAvailable means no container instance met all the task's requirements.
	TaskReasonNoInstanceAvailable = "NoContainerInstanceAvailable"
	// TaskReasonClusterNotFound means spec.cluster names no existing Cluster.
	TaskReasonClusterNotFound = "ClusterNotFound"
)

// TaskStatus is the observed state of a task, reported by its agent.
type TaskStatus struct {
	// observedGeneration is the metadata.generation the agent last acted on.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// lastStatus is where the task is in its lifecycle; it only moves forward, and STOPPED is final.
	// +optional
	// +kubebuilder:validation:XValidation:rule="oldSelf != 'STOPPED' || self == 'STOPPED'",message="lastStatus cannot change once STOPPED"
	LastStatus TaskState `json:"lastStatus,omitempty"`

	// healthStatus is the task's health, derived from its essential containers: HEALTHY, UNHEALTHY or UNKNOWN.
	// +optional
	HealthStatus HealthStatus `json:"healthStatus,omitempty"`

	// stopCode says why the task stopped.
	// +optional
	StopCode TaskStopCode `json:"stopCode,omitempty"`

	// stoppedReason explains why the task stopped, for people, for example "Essential container in task
	// exited".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	StoppedReason string `json:"stoppedReason,omitempty"`

	// containers are the observed states of the task's containers, at most 10, unique by name.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=10
	Containers []ContainerStatus `json:"containers,omitempty"`

	// pullStartedAt is when the agent started pulling the first image.
	// +optional
	PullStartedAt *metav1.Time `json:"pullStartedAt,omitempty"`

	// pullStoppedAt is when the agent finished pulling the last image.
	// +optional
	PullStoppedAt *metav1.Time `json:"pullStoppedAt,omitempty"`

	// startedAt is when the task reached RUNNING.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`

	// stoppingAt is when the task started stopping.
	// +optional
	StoppingAt *metav1.Time `json:"stoppingAt,omitempty"`

	// executionStoppedAt is when the task's essential containers stopped.
	// +optional
	ExecutionStoppedAt *metav1.Time `json:"executionStoppedAt,omitempty"`

	// stoppedAt is when the task reached STOPPED.
	// +optional
	StoppedAt *metav1.Time `json:"stoppedAt,omitempty"`

	// conditions: Resolved, Placed.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Task is one run of a task definition revision on a container instance: started by a service, or by a user
// as a standalone task. The agent of the instance in spec.containerInstance runs it and reports status.
// Stopped tasks are deleted by the task controller after a while.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=ecs,shortName=ecstask
// +kubebuilder:selectablefield:JSONPath=`.spec.containerInstance`
// +kubebuilder:selectablefield:JSONPath=`.spec.cluster`
// +kubebuilder:printcolumn:name="Group",type=string,JSONPath=`.spec.group`,description="Task group: service:<name> for service tasks"
// +kubebuilder:printcolumn:name="Instance",type=string,JSONPath=`.spec.containerInstance`,description="Container instance the task is placed on"
// +kubebuilder:printcolumn:name="Last Status",type=string,JSONPath=`.status.lastStatus`,description="Lifecycle state"
// +kubebuilder:printcolumn:name="Desired",type=string,JSONPath=`.spec.desiredStatus`,description="RUNNING or STOPPED"
// +kubebuilder:printcolumn:name="Health",type=string,JSONPath=`.status.healthStatus`,description="HEALTHY, UNHEALTHY or UNKNOWN"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.spec.taskDefinitionRevision`,priority=1,description="Task definition revision"
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`,priority=1,description="Cluster"
type Task struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the task.
	// +required
	Spec TaskSpec `json:"spec"`

	// status is the observed state, reported by the agent.
	// +optional
	Status TaskStatus `json:"status,omitempty"`
}

// TaskList is a list of Tasks.
// +kubebuilder:object:root=true
type TaskList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the Tasks.
	Items []Task `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Task{}, &TaskList{})
}
