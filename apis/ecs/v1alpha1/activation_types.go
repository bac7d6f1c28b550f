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

// ActivationSpec is the desired state of an Activation.
type ActivationSpec struct {
	// cluster is the name of the Cluster, in the same namespace, that instances registered with this activation
	// join. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cluster is immutable; create a new activation for another cluster"
	Cluster string `json:"cluster"`

	// codeHash is the SHA-256 of the activation code, sha256:<64 lowercase hex digits>. The code itself is shown
	// once, when the activation is created, and never stored. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=71
	// +kubebuilder:validation:MaxLength=71
	// +kubebuilder:validation:Pattern=`^sha256:[0-9a-f]{64}$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="codeHash is immutable; create a new activation for a new code"
	CodeHash string `json:"codeHash"`

	// expiresAt is when the activation stops accepting registrations (RFC 3339). drover activation create sets
	// it 24 hours ahead by default and at most 30 days ahead, as ECS does. Instances already registered are not
	// affected.
	// +required
	ExpiresAt metav1.Time `json:"expiresAt"`

	// registrationLimit is the number of instances that can register with this activation, 1-1000. Defaults
	// to 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	RegistrationLimit int32 `json:"registrationLimit,omitempty"`

	// attributes are custom attributes given to every instance that registers with this activation, at most
	// 100, unique by name. Names starting with ecs. are reserved.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:XValidation:rule="self.all(a, !a.name.startsWith('ecs.'))",message="attribute names starting with ecs. are reserved for built-in attributes"
	Attributes []Attribute `json:"attributes,omitempty"`

	// description of the activation, for people, at most 256 characters.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Description string `json:"description,omitempty"`
}

// Activation condition types and reasons.
const (
	// ActivationConditionReady is True while instances can register with the activation: not expired and
	// below its registration limit.
	ActivationConditionReady = "Ready"

	// ActivationReasonUsable means instances can register.
	ActivationReasonUsable = "Usable"
	// ActivationReasonExpired means expiresAt has passed.
	ActivationReasonExpired = "Expired"
	// ActivationReasonLimitReached means registrationLimit instances have registered.
	ActivationReasonLimitReached = "RegistrationLimitReached"
)

// ActivationStatus is the observed state of an Activation.
type ActivationStatus struct {
	// observedGeneration is the metadata.generation the activation controller last acted on.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// registrationsCount is the number of instances that have registered with the activation.
	// +optional
	// +kubebuilder:validation:Minimum=0
	RegistrationsCount int32 `json:"registrationsCount,omitempty"`

	// expired is true once expiresAt has passed.
	// +optional
	Expired bool `json:"expired,omitempty"`

	// conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// The Expires column has type string, not date: kubectl prints a date in the future as <invalid>.

// Activation lets hosts register as container instances of a cluster: drover-agent presents the activation's
// name (the activation id) and its code, and the registration endpoint checks the code against codeHash, the
// expiry and the registration limit.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=ecs,shortName=act
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`,description="Cluster the instances join"
// +kubebuilder:printcolumn:name="Registered",type=integer,JSONPath=`.status.registrationsCount`,description="Instances registered"
// +kubebuilder:printcolumn:name="Limit",type=integer,JSONPath=`.spec.registrationLimit`,description="Registration limit"
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.spec.expiresAt`,description="Expiry time (RFC 3339)"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Activation struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the activation.
	// +required
	Spec ActivationSpec `json:"spec"`

	// status is the observed state: registrations used, expiry.
	// +optional
	Status ActivationStatus `json:"status,omitempty"`
}

// ActivationList is a list of Activations.
// +kubebuilder:object:root=true
type ActivationList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the Activations.
	Items []Activation `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Activation{}, &ActivationList{})
}
