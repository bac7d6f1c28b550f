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

// SchedulingStrategy is how a service decides how many tasks to run.
// +kubebuilder:validation:Enum=REPLICA;DAEMON
type SchedulingStrategy string

const (
	// SchedulingStrategyReplica keeps spec.desiredCount tasks running, placed by the placement strategies.
	SchedulingStrategyReplica SchedulingStrategy = "REPLICA"
	// SchedulingStrategyDaemon keeps one task on every ACTIVE container instance of the cluster that meets the
	// placement constraints; DRAINING instances are skipped.
	SchedulingStrategyDaemon SchedulingStrategy = "DAEMON"
)

// ServiceSpec is the desired state of a Service, with the field names of ECS CreateService.
// +kubebuilder:validation:XValidation:rule="!has(self.schedulingStrategy) || self.schedulingStrategy != 'DAEMON' || !has(self.deploymentConfiguration) || !has(self.deploymentConfiguration.waves)",message="deploymentConfiguration.waves is not supported with schedulingStrategy DAEMON",fieldPath=".deploymentConfiguration.waves"
// +kubebuilder:validation:XValidation:rule="!has(self.deploymentConfiguration) || !has(self.deploymentConfiguration.waves) || !has(self.placementConstraints) || self.placementConstraints.size() <= 9",message="with deploymentConfiguration.waves at most 9 placementConstraints: each wave adds one to its tasks",fieldPath=".placementConstraints"
// +kubebuilder:validation:XValidation:rule="!has(self.schedulingStrategy) || self.schedulingStrategy != 'DAEMON' || !has(self.deploymentConfiguration) || !has(self.deploymentConfiguration.canary)",message="deploymentConfiguration.canary is not supported with schedulingStrategy DAEMON",fieldPath=".deploymentConfiguration.canary"
// +kubebuilder:validation:XValidation:rule="!has(self.schedulingStrategy) || self.schedulingStrategy != 'DAEMON' || !has(self.placementStrategy) || self.placementStrategy.size() == 0",message="placementStrategy is not supported with schedulingStrategy DAEMON, which places one task on every instance",fieldPath=".placementStrategy"
type ServiceSpec struct {
	// cluster is the name of the Cluster, in the same namespace, whose container instances run the service's
	// tasks. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cluster is immutable; create a new service to run in another cluster"
	Cluster string `json:"cluster"`

	// taskDefinition is what the service runs: a family name (web) follows the family's latest revision, and
	// every new revision rolls out as a new deployment; family:n (web:3) pins revision n.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[1-9][0-9]{0,9})?$`
	TaskDefinition string `json:"taskDefinition"`

	// desiredCount is the number of tasks to keep running with schedulingStrategy REPLICA, at least 0.
	// Defaults to 1. The scale subresource (kubectl scale) sets it. DAEMON services ignore it: they run one task
	// per eligible instance.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	DesiredCount *int32 `json:"desiredCount,omitempty"`

	// schedulingStrategy is REPLICA (keep desiredCount tasks) or DAEMON (one task per eligible instance).
	// Defaults to REPLICA. Immutable.
	// +optional
	// +kubebuilder:default=REPLICA
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="schedulingStrategy is immutable; create a new service to change it"
	SchedulingStrategy SchedulingStrategy `json:"schedulingStrategy,omitempty"`

	// deploymentConfiguration bounds how many tasks run during a deployment and when a deployment fails.
	// +optional
	DeploymentConfiguration *DeploymentConfiguration `json:"deploymentConfiguration,omitempty"`

	// placementStrategy orders the eligible instances for the service's tasks, at most 5, applied in order.
	// Not supported with DAEMON. Absent means spread over instanceId.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	PlacementStrategy []PlacementStrategy `json:"placementStrategy,omitempty"`

	// placementConstraints restrict the instances the service's tasks can run on, at most 10. They apply in
	// addition to the task definition's constraints.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	PlacementConstraints []PlacementConstraint `json:"placementConstraints,omitempty"`

	// healthCheckGracePeriodSeconds is the time in seconds after a task starts during which the service ignores
	// its UNHEALTHY status. Absent means 0: an UNHEALTHY task is replaced at once.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	HealthCheckGracePeriodSeconds *int32 `json:"healthCheckGracePeriodSeconds,omitempty"`

	// disconnectPolicy says what happens to the service's tasks on a container instance whose agent stops
	// reporting. Absent means action Keep, which is what ECS does.
	// +optional
	DisconnectPolicy *DisconnectPolicy `json:"disconnectPolicy,omitempty"`
}

// DeploymentConfiguration bounds a deployment, as in ECS.
type DeploymentConfiguration struct {
	// minimumHealthyPercent is the lower limit, in percent of desiredCount rounded up, on the tasks that must
	// stay RUNNING (and healthy) during a deployment or while instances drain, 0-100. Defaults to 100 for
	// REPLICA and 0 for DAEMON.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MinimumHealthyPercent *int32 `json:"minimumHealthyPercent,omitempty"`

	// maximumPercent is the upper limit, in percent of desiredCount rounded down, on the tasks that may be
	// PENDING or RUNNING during a deployment, 100-1000. Defaults to 200 for REPLICA and 100 for DAEMON.
	// +optional
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=1000
	MaximumPercent *int32 `json:"maximumPercent,omitempty"`

	// deploymentCircuitBreaker fails a deployment whose tasks keep failing to start or to pass health checks,
	// and optionally rolls back. Absent means off.
	// +optional
	DeploymentCircuitBreaker *DeploymentCircuitBreaker `json:"deploymentCircuitBreaker,omitempty"`

	// canary starts a new deployment with a few tasks of the new revision beside the old ones, holds them for
	// a bake time, and only then replaces the rest. A canary task that fails to start, exits or turns
	// UNHEALTHY fails the deployment, which rolls back to the last COMPLETED revision without touching the
	// other tasks. Absent means no canary. Not with schedulingStrategy DAEMON.
	// +optional
	Canary *Canary `json:"canary,omitempty"`

	// waves rolls a deployment across the cluster's instances in groups: instances are grouped by the value of
	// an attribute (for example store or region), and the tasks on at most maxConcurrentGroups groups are
	// replaced at a time, with a bake time between waves; the tasks elsewhere keep running the old revision. A
	// task of the new revision that fails to start, exits or turns UNHEALTHY halts the whole rollout: the
	// deployment is FAILED and the later groups are left as they are (with the circuit breaker's rollback
	// on, the service then returns to the last COMPLETED revision). Absent means the whole service at once.
	// Not with schedulingStrategy DAEMON.
	// +optional
	Waves *Waves `json:"waves,omitempty"`
}

// Waves groups a deployment's instances into waves by an attribute.
type Waves struct {
	// attribute is the name of the instance attribute whose values group the instances, for example store.
	// Groups roll in the order of their values (numbers by value: 2 before 10); instances without the attribute
	// form the last group.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9][a-zA-Z0-9._/:-]*$`
	Attribute string `json:"attribute"`

	// maxConcurrentGroups is how many groups one wave replaces at a time, 1-10. Defaults to 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	MaxConcurrentGroups *int32 `json:"maxConcurrentGroups,omitempty"`

	// bakeTimeSeconds is how long a finished wave's tasks must run before the next wave starts, 0-86400.
	// Defaults to 60.
	// +optional
	// +kubebuilder:default=60
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	BakeTimeSeconds *int32 `json:"bakeTimeSeconds,omitempty"`
}

// Canary is the first step of a deployment: count tasks of the new revision, held for bakeTimeSeconds.
type Canary struct {
	// count is the number of canary tasks, 1-100, started in addition to the running tasks.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Count int32 `json:"count"`

	// bakeTimeSeconds is how long every canary task must stay RUNNING and healthy before the deployment
	// goes on, 0-86400. Defaults to 300.
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	BakeTimeSeconds *int32 `json:"bakeTimeSeconds,omitempty"`
}

// DeploymentCircuitBreaker stops a failing deployment. It counts the deployment's tasks that fail to reach
// RUNNING, then those that fail health checks, and trips at half of desiredCount, at least 10 and at most 200.
type DeploymentCircuitBreaker struct {
	// enable turns the circuit breaker on: when it trips, the deployment's rolloutState becomes FAILED.
	// +required
	Enable bool `json:"enable"`

	// rollback restores the last COMPLETED deployment when the circuit breaker trips.
	// +required
	Rollback bool `json:"rollback"`
}

// DisconnectAction is what happens to tasks on a disconnected container instance.
// +kubebuilder:validation:Enum=Keep;Replace
type DisconnectAction string

const (
	// DisconnectActionKeep leaves the tasks counted as running: they usually still run on the host, and the
	// service does not start replacements. This is the ECS behaviour.
	DisconnectActionKeep DisconnectAction = "Keep"
	// DisconnectActionReplace starts replacements elsewhere once the instance has been disconnected for
	// gracePeriodSeconds; the old tasks are stopped when the agent reconnects.
	DisconnectActionReplace DisconnectAction = "Replace"
)

// DisconnectPolicy says what happens to a service's tasks on a container instance whose agent stops reporting.
type DisconnectPolicy struct {
	// action is Keep (leave the tasks, as ECS does) or Replace (start replacements elsewhere after
	// gracePeriodSeconds). Defaults to Keep.
	// +optional
	// +kubebuilder:default=Keep
	Action DisconnectAction `json:"action,omitempty"`

	// gracePeriodSeconds is how long an instance must be disconnected before action Replace starts replacements,
	// 0-86400. Defaults to 300. Ignored for Keep.
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	GracePeriodSeconds *int32 `json:"gracePeriodSeconds,omitempty"`
}

// MinimumHealthyPercent returns the effective deploymentConfiguration.minimumHealthyPercent: the value set, or
// 100 for REPLICA and 0 for DAEMON.
func (s *ServiceSpec) MinimumHealthyPercent() int32 {
	if s.DeploymentConfiguration != nil && s.DeploymentConfiguration.MinimumHealthyPercent != nil {
		return *s.DeploymentConfiguration.MinimumHealthyPercent
	}
	if s.SchedulingStrategy == SchedulingStrategyDaemon {
		return 0
	}
	return 100
}

// MaximumPercent returns the effective deploymentConfiguration.maximumPercent: the value set, or 200 for
// REPLICA and 100 for DAEMON.
func (s *ServiceSpec) MaximumPercent() int32 {
	if s.DeploymentConfiguration != nil && s.DeploymentConfiguration.MaximumPercent != nil {
		return *s.DeploymentConfiguration.MaximumPercent
	}
	if s.SchedulingStrategy == SchedulingStrategyDaemon {
		return 100
	}
	return 200
}

// DeploymentStatus is the role of a deployment in its service.
// +kubebuilder:validation:Enum=PRIMARY;ACTIVE;INACTIVE
type DeploymentStatus string

const (
	// DeploymentStatusPrimary is the newest deployment, the one the service converges to.
	DeploymentStatusPrimary DeploymentStatus = "PRIMARY"
	// DeploymentStatusActive is an older deployment that still has tasks.
	DeploymentStatusActive DeploymentStatus = "ACTIVE"
	// DeploymentStatusInactive is an older deployment whose tasks have all stopped.
	DeploymentStatusInactive DeploymentStatus = "INACTIVE"
)

// RolloutState is the progress of a deployment.
// +kubebuilder:validation:Enum=IN_PROGRESS;COMPLETED;FAILED
type RolloutState string

const (
	// RolloutStateInProgress means the deployment is replacing tasks.
	RolloutStateInProgress RolloutState = "IN_PROGRESS"
	// RolloutStateCompleted means the deployment reached a steady state.
	RolloutStateCompleted RolloutState = "COMPLETED"
	// RolloutStateFailed means the circuit breaker tripped.
	RolloutStateFailed RolloutState = "FAILED"
)

// Deployment is one rollout of a task definition revision, as ECS DescribeServices reports it.
type Deployment struct {
	// id identifies the deployment within the service.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	ID string `json:"id"`

	// status is PRIMARY (the newest deployment), ACTIVE (older, still has tasks) or INACTIVE (older, no tasks).
	// +required
	Status DeploymentStatus `json:"status"`

	// taskDefinitionRevision is the name of the TaskDefinitionRevision the deployment runs.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	TaskDefinitionRevision string `json:"taskDefinitionRevision"`

	// desiredCount is the number of tasks the deployment aims for.
	// +optional
	// +kubebuilder:validation:Minimum=0
	DesiredCount int32 `json:"desiredCount,omitempty"`

	// pendingCount is the number of the deployment's tasks that are not yet RUNNING.
	// +optional
	// +kubebuilder:validation:Minimum=0
	PendingCount int32 `json:"pendingCount,omitempty"`

	// runningCount is the number of the deployment's tasks that are RUNNING.
	// +optional
	// +kubebuilder:validation:Minimum=0
	RunningCount int32 `json:"runningCount,omitempty"`

	// failedTasks is the number of the deployment's tasks that failed to start or failed health checks, as the
	// circuit breaker counts them.
	// +optional
	// +kubebuilder:validation:Minimum=0
	FailedTasks int32 `json:"failedTasks,omitempty"`

	// rolloutState is IN_PROGRESS, COMPLETED or FAILED.
	// +optional
	RolloutState RolloutState `json:"rolloutState,omitempty"`

	// rolloutStateReason explains rolloutState, for people.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	RolloutStateReason string `json:"rolloutStateReason,omitempty"`

	// canaryPromotedAt is when the deployment's canary passed its bake time and the rest of the tasks began
	// to be replaced. Absent while the canary bakes, and for deployments without a canary.
	// +optional
	CanaryPromotedAt *metav1.Time `json:"canaryPromotedAt,omitempty"`

	// createdAt is when the deployment started.
	// +optional
	CreatedAt *metav1.Time `json:"createdAt,omitempty"`

	// updatedAt is when the deployment last changed.
	// +optional
	UpdatedAt *metav1.Time `json:"updatedAt,omitempty"`
}

// Service condition types and reasons.
const (
	// ServiceConditionSteadyState is True when the primary deployment is COMPLETED and runs desiredCount
	// tasks, ECS's "has reached a steady state".
	ServiceConditionSteadyState = "SteadyState"
	// ServiceConditionReady is True when at least minimumHealthyPercent of desiredCount tasks are RUNNING and
	// healthy.
	ServiceConditionReady = "Ready"

	// ServiceReasonSteadyState means the service has reached a steady state.
	ServiceReasonSteadyState = "SteadyState"
	// ServiceReasonDeploymentInProgress means a deployment is replacing tasks.
	ServiceReasonDeploymentInProgress = "DeploymentInProgress"
	// ServiceReasonDeploymentFailed means the circuit breaker tripped.
	ServiceReasonDeploymentFailed = "DeploymentFailed"
	// ServiceReasonTasksPending means tasks are starting.
	ServiceReasonTasksPending = "TasksPending"
	// ServiceReasonTasksUnhealthy means fewer tasks than minimumHealthyPercent are RUNNING and healthy.
	ServiceReasonTasksUnhealthy = "TasksUnhealthy"
	// ServiceReasonUnableToPlace means no container instance met all the requirements of a task.
	ServiceReasonUnableToPlace = "UnableToPlaceTask"
	// ServiceReasonTaskDefinitionNotFound means spec.taskDefinition names no existing revision.
	ServiceReasonTaskDefinitionNotFound = "TaskDefinitionNotFound"
	// ServiceReasonClusterNotFound means spec.cluster names no existing Cluster.
	ServiceReasonClusterNotFound = "ClusterNotFound"
)

// ServiceStatus is the observed state of a Service.
type ServiceStatus struct {
	// observedGeneration is the metadata.generation the service controller last acted on.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// selector is the label selector of the service's tasks, ecs.drover.dev/service=<name>, for the scale
	// subresource.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Selector string `json:"selector,omitempty"`

	// desiredCount is the number of tasks the service aims for: spec.desiredCount for REPLICA, the number of
	// eligible instances for DAEMON.
	// +optional
	// +kubebuilder:validation:Minimum=0
	DesiredCount int32 `json:"desiredCount,omitempty"`

	// runningCount is the number of the service's tasks that are RUNNING.
	// +optional
	// +kubebuilder:validation:Minimum=0
	RunningCount int32 `json:"runningCount,omitempty"`

	// pendingCount is the number of the service's tasks that are not yet RUNNING.
	// +optional
	// +kubebuilder:validation:Minimum=0
	PendingCount int32 `json:"pendingCount,omitempty"`

	// taskDefinitionRevision is the name of the TaskDefinitionRevision spec.taskDefinition resolves to, which
	// the primary deployment runs.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	TaskDefinitionRevision string `json:"taskDefinitionRevision,omitempty"`

	// deployments of the service, the PRIMARY one first, at most 10, unique by id.
	// +optional
	// +listType=map
	// +listMapKey=id
	// +kubebuilder:validation:MaxItems=10
	Deployments []Deployment `json:"deployments,omitempty"`

	// conditions: SteadyState, Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Service keeps a number of tasks of a task definition running in a cluster, replaces those that stop or turn
// unhealthy, and rolls out new revisions as deployments, as an ECS service does.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.desiredCount,statuspath=.status.runningCount,selectorpath=.status.selector
// +kubebuilder:resource:categories=ecs,shortName=ecssvc
// +kubebuilder:selectablefield:JSONPath=`.spec.cluster`
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`,description="Cluster the tasks run in"
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.status.desiredCount`,description="Number of tasks the service aims for"
// +kubebuilder:printcolumn:name="Running",type=integer,JSONPath=`.status.runningCount`,description="RUNNING tasks"
// +kubebuilder:printcolumn:name="Pending",type=integer,JSONPath=`.status.pendingCount`,description="Tasks not yet RUNNING"
// +kubebuilder:printcolumn:name="Rollout",type=string,JSONPath=`.status.deployments[0].rolloutState`,description="Rollout state of the primary deployment"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Task Definition",type=string,JSONPath=`.spec.taskDefinition`,priority=1,description="Task definition family, or family:revision"
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.taskDefinitionRevision`,priority=1,description="Revision the primary deployment runs"
// +kubebuilder:printcolumn:name="Strategy",type=string,JSONPath=`.spec.schedulingStrategy`,priority=1,description="REPLICA or DAEMON"
type Service struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the service.
	// +required
	Spec ServiceSpec `json:"spec"`

	// status is the observed state: task counts and deployments.
	// +optional
	Status ServiceStatus `json:"status,omitempty"`
}

// ServiceList is a list of Services.
// +kubebuilder:object:root=true
type ServiceList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the Services.
	Items []Service `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Service{}, &ServiceList{})
}
