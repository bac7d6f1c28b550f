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

package crd_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/drover-dev/drover/config/crd"
)

func TestCustomResourceDefinitions(t *testing.T) {
	crds, err := crd.CustomResourceDefinitions()
	require.NoError(t, err)

	var names []string
	for _, c := range crds {
		names = append(names, c.Name)
		assert.Equal(t, "ecs.drover.dev", c.Spec.Group)
		assert.Equal(t, c.Spec.Names.Plural+"."+c.Spec.Group, c.Name)
	}
	assert.Equal(t, []string{
		"activations.ecs.drover.dev",
		"clusters.ecs.drover.dev",
		"containerinstances.ecs.drover.dev",
		"services.ecs.drover.dev",
		"taskdefinitionrevisions.ecs.drover.dev",
		"taskdefinitions.ecs.drover.dev",
		"tasks.ecs.drover.dev",
	}, names)

	again, err := crd.CustomResourceDefinitions()
	require.NoError(t, err)
	again[0].Spec.Group = "changed"
	assert.Equal(t, "ecs.drover.dev", crds[0].Spec.Group, "every call returns new objects")
}

func TestKustomizationListsEveryCRD(t *testing.T) {
	data, err := os.ReadFile("kustomization.yaml")
	require.NoError(t, err)
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	require.NoError(t, yaml.Unmarshal(data, &kustomization))

	files, err := filepath.Glob(filepath.Join("bases", "*.yaml"))
	require.NoError(t, err)
	slices.Sort(kustomization.Resources)
	assert.Equal(t, files, kustomization.Resources)
}
