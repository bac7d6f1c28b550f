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

// Package v1alpha1 holds the ecs.drover.dev/v1alpha1 API: Cluster, TaskDefinition, TaskDefinitionRevision,
// Service, ContainerInstance, Task and Activation.
//
// Field names follow the JSON names of the Amazon ECS API wherever ECS has the concept, so that an ECS task
// definition translates almost line by line; shapes follow Kubernetes conventions (spec is desired state,
// status is observed state, conditions, observedGeneration). Validation lives in the generated CRDs
// (OpenAPI bounds and CEL rules) so that every client, kubectl included, gets the same answer.
package v1alpha1
