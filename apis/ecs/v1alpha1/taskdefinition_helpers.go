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
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// MaxFamilyLength is the longest task definition family name: a revision name, <family>-<n> with n up to ten
// digits, must still fit the 253 characters of a Kubernetes object name.
const MaxFamilyLength = 242

// RevisionName returns the name of revision n of a task definition family: <family>-<n>, for example web-3.
func RevisionName(family string, revision int32) string {
	return family + "-" + strconv.FormatInt(int64(revision), 10)
}

// TaskDefinitionRef returns the reference that pins revision n of a family, <family>:<n> as ECS writes it, or
// the bare family, which follows the latest revision, when revision is 0.
func TaskDefinitionRef(family string, revision int32) string {
	if revision == 0 {
		return family
	}
	return family + ":" + strconv.FormatInt(int64(revision), 10)
}

// ParseTaskDefinitionRef parses a Service's or Task's spec.taskDefinition: "web" gives family web and revision
// 0 (the latest revision), "web:3" gives family web and revision 3.
func ParseTaskDefinitionRef(ref string) (family string, revision int32, err error) {
	family, rev, pinned := strings.Cut(ref, ":")
	if err := validateFamily(family); err != nil {
		return "", 0, fmt.Errorf("invalid task definition %q: %w", ref, err)
	}
	if !pinned {
		return family, 0, nil
	}
	revision, err = parseRevision(rev)
	if err != nil {
		return "", 0, fmt.Errorf("invalid task definition %q: %w; write <family> or <family>:<revision>", ref, err)
	}
	return family, revision, nil
}

// ParseRevisionName splits the name of a TaskDefinitionRevision, <family>-<n>, into family and revision.
func ParseRevisionName(name string) (family string, revision int32, err error) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return "", 0, fmt.Errorf("invalid revision name %q: want <family>-<revision>", name)
	}
	family = name[:i]
	if err := validateFamily(family); err != nil {
		return "", 0, fmt.Errorf("invalid revision name %q: %w", name, err)
	}
	revision, err = parseRevision(name[i+1:])
	if err != nil {
		return "", 0, fmt.Errorf("invalid revision name %q: %w", name, err)
	}
	return family, revision, nil
}

func validateFamily(family string) error {
	if family == "" {
		return fmt.Errorf("the family name is empty")
	}
	if len(family) > MaxFamilyLength {
		return fmt.Errorf("the family name is longer than %d characters", MaxFamilyLength)
	}
	if errs := validation.IsDNS1123Subdomain(family); len(errs) > 0 {
		return fmt.Errorf("the family name %s", strings.Join(errs, "; "))
	}
	return nil
}

func parseRevision(s string) (int32, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 1 || strings.HasPrefix(s, "+") || strings.HasPrefix(s, "0") {
		return 0, fmt.Errorf("the revision %q is not a number from 1 to %d", s, int32(^uint32(0)>>1))
	}
	return int32(n), nil
}
