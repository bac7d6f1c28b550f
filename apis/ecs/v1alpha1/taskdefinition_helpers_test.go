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
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

func TestParseTaskDefinitionRef(t *testing.T) {
	tests := []struct {
		ref      string
		family   string
		revision int32
		err      string
	}{
		{ref: "web", family: "web"},
		{ref: "web:3", family: "web", revision: 3},
		{ref: "pos.v2:2147483647", family: "pos.v2", revision: 2147483647},
		{ref: "web-1:12", family: "web-1", revision: 12},
		{ref: "", err: "family name is empty"},
		{ref: ":3", err: "family name is empty"},
		{ref: "web:", err: `revision "" is not a number`},
		{ref: "web:0", err: `revision "0" is not a number`},
		{ref: "web:03", err: `revision "03" is not a number`},
		{ref: "web:-1", err: `revision "-1" is not a number`},
		{ref: "web:+1", err: `revision "+1" is not a number`},
		{ref: "web:2147483648", err: `revision "2147483648" is not a number`},
		{ref: "web:1:2", err: `revision "1:2" is not a number`},
		{ref: "Web:1", err: "family name"},
		{ref: "web_app", err: "family name"},
		{ref: strings.Repeat("a", 243), err: "longer than 242"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			family, revision, err := ecsv1alpha1.ParseTaskDefinitionRef(tt.ref)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.family, family)
			assert.Equal(t, tt.revision, revision)
			assert.Equal(t, tt.ref, ecsv1alpha1.TaskDefinitionRef(family, revision))
		})
	}
}

func TestRevisionName(t *testing.T) {
	tests := []struct {
		family   string
		revision int32
		name     string
	}{
		{family: "web", revision: 1, name: "web-1"},
		{family: "web-3", revision: 1, name: "web-3-1"},
		{family: "pos.v2", revision: 42, name: "pos.v2-42"},
		{family: strings.Repeat("a", 242), revision: 2147483647, name: strings.Repeat("a", 242) + "-2147483647"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := ecsv1alpha1.RevisionName(tt.family, tt.revision)
			assert.Equal(t, tt.name, name)
			assert.LessOrEqual(t, len(name), 253)

			family, revision, err := ecsv1alpha1.ParseRevisionName(name)
			require.NoError(t, err)
			assert.Equal(t, tt.family, family)
			assert.Equal(t, tt.revision, revision)
		})
	}
}

func TestParseRevisionNameRejects(t *testing.T) {
	for _, name := range []string{"web", "web-", "-3", "web-0", "web-x", "Web-1", "web:3"} {
		t.Run(name, func(t *testing.T) {
			_, _, err := ecsv1alpha1.ParseRevisionName(name)
			require.Error(t, err)
			assert.Contains(t, err.Error(), name)
		})
	}
}
