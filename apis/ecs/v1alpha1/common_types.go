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

// Well-known labels. Controllers set them on the objects they create so that users and other controllers can
// select them; they are never required on objects that users create.
const (
	// LabelCluster names the Cluster a Task or TaskDefinitionRevision belongs to.
	LabelCluster = "ecs.drover.dev/cluster"

	// LabelService names the Service that started a Task. Service.status.selector selects on it.
	LabelService = "ecs.drover.dev/service"

	// LabelTaskDefinitionFamily names the task definition family of a TaskDefinitionRevision or Task.
	LabelTaskDefinitionFamily = "ecs.drover.dev/family"

	// LabelTaskDefinitionRevision holds the revision number of a TaskDefinitionRevision or Task.
	LabelTaskDefinitionRevision = "ecs.drover.dev/revision"
)

// Attribute is a name/value pair that describes a container instance. Placement constraints select instances by
// attribute (memberOf "attribute:NAME == VALUE"), and the spread strategy spreads tasks over attribute values.
// Built-in attributes are named ecs.*; custom attributes are any other name.
type Attribute struct {
	// name of the attribute, 1-128 characters: letters, digits, and . - _ / : (for example store, ecs.os-type).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9][a-zA-Z0-9._/:-]*$`
	Name string `json:"name"`

	// value of the attribute, at most 128 characters. Empty or absent for attributes that only mark a capability
	// (for example ecs.capability.external), which memberOf tests with "exists".
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Value string `json:"value,omitempty"`
}

// KeyValuePair is a name/value pair, as ECS uses for container environment variables.
type KeyValuePair struct {
	// name of the variable, 1-255 characters, without "=".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[^=]+$`
	Name string `json:"name"`

	// value of the variable, at most 32768 characters. Absent means the empty string.
	// +optional
	// +kubebuilder:validation:MaxLength=32768
	Value string `json:"value,omitempty"`
}

// PlacementConstraintType is the kind of a placement constraint.
// +kubebuilder:validation:Enum=distinctInstance;memberOf
type PlacementConstraintType string

const (
	// PlacementConstraintDistinctInstance places each task of the group on a different container instance.
	PlacementConstraintDistinctInstance PlacementConstraintType = "distinctInstance"
	// PlacementConstraintMemberOf places tasks only on container instances that satisfy an expression.
	PlacementConstraintMemberOf PlacementConstraintType = "memberOf"
)

// PlacementConstraint is a rule that a container instance must satisfy to receive a task.
// +kubebuilder:validation:XValidation:rule="self.type != 'memberOf' || has(self.expression)",message="expression is required when type is memberOf",fieldPath=".expression",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="self.type != 'distinctInstance' || !has(self.expression)",message="expression must not be set when type is distinctInstance",fieldPath=".expression",reason="FieldValueForbidden"
type PlacementConstraint struct {
	// type of the constraint: distinctInstance (no two tasks of the same group on one instance) or memberOf
	// (only instances that satisfy expression).
	// +required
	Type PlacementConstraintType `json:"type"`

	// expression is a cluster query language expression, required for memberOf and forbidden for
	// distinctInstance, at most 2000 characters. Example: "attribute:ecs.os-type == linux and
	// attribute:store exists".
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2000
	Expression string `json:"expression,omitempty"`
}

// PlacementStrategyType is the kind of a placement strategy.
// +kubebuilder:validation:Enum=binpack;spread;random
type PlacementStrategyType string

const (
	// PlacementStrategyBinpack fills the instance with the least remaining cpu or memory first.
	PlacementStrategyBinpack PlacementStrategyType = "binpack"
	// PlacementStrategySpread evens tasks out over the values of field.
	PlacementStrategySpread PlacementStrategyType = "spread"
	// PlacementStrategyRandom places tasks on a random eligible instance.
	PlacementStrategyRandom PlacementStrategyType = "random"
)

// PlacementStrategy orders the container instances that satisfy the constraints. Strategies apply in order; a
// later one breaks the ties of the earlier ones.
// +kubebuilder:validation:XValidation:rule="self.type != 'binpack' || (has(self.field) && self.field in ['cpu', 'memory'])",message="field must be cpu or memory when type is binpack",fieldPath=".field"
// +kubebuilder:validation:XValidation:rule="self.type != 'spread' || (has(self.field) && (self.field in ['instanceId', 'host'] || (self.field.startsWith('attribute:') && self.field.size() > 10)))",message="field must be instanceId, host or attribute:NAME when type is spread",fieldPath=".field"
// +kubebuilder:validation:XValidation:rule="self.type != 'random' || !has(self.field)",message="field must not be set when type is random",fieldPath=".field",reason="FieldValueForbidden"
type PlacementStrategy struct {
	// type of the strategy: binpack, spread or random.
	// +required
	Type PlacementStrategyType `json:"type"`

	// field the strategy applies to: cpu or memory for binpack; instanceId, host or attribute:NAME (for example
	// attribute:store) for spread; absent for random.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Field string `json:"field,omitempty"`
}
