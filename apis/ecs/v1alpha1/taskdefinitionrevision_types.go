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

// TaskDefinitionRevisionSpec is an immutable snapshot of a TaskDefinition's spec.
type TaskDefinitionRevisionSpec struct {
	// family is the name of the TaskDefinition this revision belongs to.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=242
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Family string `json:"family"`

	// revision is the number of this revision within the family, counting from 1.
	// +required
	// +kubebuilder:validation:Minimum=1
	Revision int32 `json:"revision"`

	// taskDefinition is the TaskDefinition spec as it was when this revision was created.
	// +required
	TaskDefinition TaskDefinitionSpec `json:"taskDefinition"`
}

// TaskDefinitionRevision condition types.
const (
	// TaskDefinitionRevisionConditionInUse is True while a Service or a Task that is not STOPPED references
	// the revision.
	TaskDefinitionRevisionConditionInUse = "InUse"

	// TaskDefinitionRevisionReasonReferenced means a Service or an active Task references the revision.
	TaskDefinitionRevisionReasonReferenced = "Referenced"
	// TaskDefinitionRevisionReasonUnreferenced means nothing references the revision any more.
	TaskDefinitionRevisionReasonUnreferenced = "Unreferenced"
)

// TaskDefinitionRevisionStatus is the observed state of a TaskDefinitionRevision.
type TaskDefinitionRevisionStatus struct {
	// conditions: InUse.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// TaskDefinitionRevision is the immutable revision n of a task definition family, ECS's family:n. The
// taskdefinition controller creates one, named <family>-<n>, for every change to a TaskDefinition's spec;
// Services and Tasks run revisions, never the TaskDefinition itself, so a change rolls out only through a new
// deployment.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=ecs,shortName=tdr
// +kubebuilder:validation:XValidation:rule="self.metadata.name == '%s-%d'.format([self.spec.family, self.spec.revision])",message="metadata.name must be <spec.family>-<spec.revision>"
// +kubebuilder:printcolumn:name="Family",type=string,JSONPath=`.spec.family`,description="Task definition family"
// +kubebuilder:printcolumn:name="Revision",type=integer,JSONPath=`.spec.revision`,description="Revision number within the family"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TaskDefinitionRevision struct {
	metav1.TypeMeta `json:",inline"`
	// metadata.name is <family>-<revision>, for example web-3.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the snapshot. It is immutable: change the TaskDefinition to create a new revision.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="TaskDefinitionRevision is immutable; change the TaskDefinition to create a new revision"
	Spec TaskDefinitionRevisionSpec `json:"spec"`

	// status is the observed state: whether the revision is in use.
	// +optional
	Status TaskDefinitionRevisionStatus `json:"status,omitempty"`
}

// TaskDefinitionRevisionList is a list of TaskDefinitionRevisions.
// +kubebuilder:object:root=true
type TaskDefinitionRevisionList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the TaskDefinitionRevisions.
	Items []TaskDefinitionRevision `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TaskDefinitionRevision{}, &TaskDefinitionRevisionList{})
}
