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

// ClusterSpec is the desired state of a Cluster. Everything is optional: a Cluster with an empty spec is valid.
type ClusterSpec struct {
	// description of the cluster, for people, at most 1024 characters.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`
}

// Cluster condition types and reasons.
const (
	// ClusterConditionInstancesConnected is True when every registered container instance is connected.
	ClusterConditionInstancesConnected = "InstancesConnected"

	// ClusterReasonAllConnected means every registered instance is connected.
	ClusterReasonAllConnected = "AllConnected"
	// ClusterReasonSomeDisconnected means at least one registered instance is disconnected.
	ClusterReasonSomeDisconnected = "SomeDisconnected"
	// ClusterReasonNoInstances means no instance is registered.
	ClusterReasonNoInstances = "NoInstances"
)

// ClusterStatus is the observed state of a Cluster, aggregated by the cluster controller.
type ClusterStatus struct {
	// observedGeneration is the metadata.generation the cluster controller last acted on.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// registeredContainerInstancesCount is the number of container instances registered in the cluster.
	// +optional
	// +kubebuilder:validation:Minimum=0
	RegisteredContainerInstancesCount int32 `json:"registeredContainerInstancesCount,omitempty"`

	// connectedContainerInstancesCount is the number of registered container instances whose agent is connected.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ConnectedContainerInstancesCount int32 `json:"connectedContainerInstancesCount,omitempty"`

	// runningTasksCount is the number of the cluster's tasks that are RUNNING.
	// +optional
	// +kubebuilder:validation:Minimum=0
	RunningTasksCount int32 `json:"runningTasksCount,omitempty"`

	// pendingTasksCount is the number of the cluster's tasks that are not yet RUNNING.
	// +optional
	// +kubebuilder:validation:Minimum=0
	PendingTasksCount int32 `json:"pendingTasksCount,omitempty"`

	// activeServicesCount is the number of services in the cluster.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ActiveServicesCount int32 `json:"activeServicesCount,omitempty"`

	// connectedInstanceSeconds is the total time, in seconds, that container instances of the cluster have been
	// connected, summed over instances since the cluster was created: the usage meter, as ECS Anywhere bills
	// per connected instance-hour. It only grows.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ConnectedInstanceSeconds int64 `json:"connectedInstanceSeconds,omitempty"`

	// lastMeteredAt is when connectedInstanceSeconds was last brought up to date; the next update adds the
	// connected time since then.
	// +optional
	LastMeteredAt *metav1.Time `json:"lastMeteredAt,omitempty"`

	// conditions: InstancesConnected.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Cluster is a logical group of container instances that services and tasks run on.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=ecs,shortName=ecscluster
// +kubebuilder:printcolumn:name="Instances",type=integer,JSONPath=`.status.registeredContainerInstancesCount`,description="Registered container instances"
// +kubebuilder:printcolumn:name="Connected",type=integer,JSONPath=`.status.connectedContainerInstancesCount`,description="Connected container instances"
// +kubebuilder:printcolumn:name="Running Tasks",type=integer,JSONPath=`.status.runningTasksCount`,description="RUNNING tasks"
// +kubebuilder:printcolumn:name="Services",type=integer,JSONPath=`.status.activeServicesCount`,description="Services"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Cluster struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the cluster; it may be empty.
	// +optional
	Spec ClusterSpec `json:"spec,omitempty"`

	// status is the observed state: instance, task and service counts and usage.
	// +optional
	Status ClusterStatus `json:"status,omitempty"`
}

// ClusterList is a list of Clusters.
// +kubebuilder:object:root=true
type ClusterList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the Clusters.
	Items []Cluster `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Cluster{}, &ClusterList{})
}
