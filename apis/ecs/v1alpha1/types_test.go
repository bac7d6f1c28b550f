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

package v1alpha1_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

func TestEffectiveDeploymentPercents(t *testing.T) {
	ptr := func(v int32) *int32 { return &v }
	tests := []struct {
		name     string
		spec     ecsv1alpha1.ServiceSpec
		min, max int32
	}{
		{name: "replica defaults", spec: ecsv1alpha1.ServiceSpec{SchedulingStrategy: ecsv1alpha1.SchedulingStrategyReplica}, min: 100, max: 200},
		{name: "unset strategy is replica", spec: ecsv1alpha1.ServiceSpec{}, min: 100, max: 200},
		{name: "daemon defaults", spec: ecsv1alpha1.ServiceSpec{SchedulingStrategy: ecsv1alpha1.SchedulingStrategyDaemon}, min: 0, max: 100},
		{name: "empty configuration", spec: ecsv1alpha1.ServiceSpec{DeploymentConfiguration: &ecsv1alpha1.DeploymentConfiguration{}}, min: 100, max: 200},
		{name: "set values win", spec: ecsv1alpha1.ServiceSpec{
			SchedulingStrategy:      ecsv1alpha1.SchedulingStrategyDaemon,
			DeploymentConfiguration: &ecsv1alpha1.DeploymentConfiguration{MinimumHealthyPercent: ptr(50), MaximumPercent: ptr(150)},
		}, min: 50, max: 150},
		{name: "zero is a value", spec: ecsv1alpha1.ServiceSpec{
			DeploymentConfiguration: &ecsv1alpha1.DeploymentConfiguration{MinimumHealthyPercent: ptr(0)},
		}, min: 0, max: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.min, tt.spec.MinimumHealthyPercent())
			assert.Equal(t, tt.max, tt.spec.MaximumPercent())
		})
	}
}

func TestTaskStateOrder(t *testing.T) {
	order := []ecsv1alpha1.TaskState{
		"",
		ecsv1alpha1.TaskStateProvisioning,
		ecsv1alpha1.TaskStatePending,
		ecsv1alpha1.TaskStateActivating,
		ecsv1alpha1.TaskStateRunning,
		ecsv1alpha1.TaskStateDeactivating,
		ecsv1alpha1.TaskStateStopping,
		ecsv1alpha1.TaskStateDeprovisioning,
		ecsv1alpha1.TaskStateStopped,
	}
	for i, a := range order {
		for j, b := range order {
			assert.Equal(t, i < j, a.Before(b), "%q before %q", a, b)
		}
		assert.Equal(t, a == ecsv1alpha1.TaskStateStopped, a.Terminal(), "%q terminal", a)
	}
}
