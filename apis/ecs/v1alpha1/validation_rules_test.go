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
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

const baseTaskDefinition = `
apiVersion: ecs.drover.dev/v1alpha1
kind: TaskDefinition
metadata: {name: web}
spec:
  containerDefinitions:
  - name: web
    image: nginx:1.27
    memory: 256
    memoryReservation: 128
    portMappings: [{containerPort: 80, hostPort: 8080}]
    mountPoints: [{sourceVolume: data, containerPath: /data}]
    healthCheck: {command: [CMD-SHELL, "curl -f http://localhost/"]}
  - name: sidecar
    image: busybox:1.36
    memoryReservation: 32
    essential: false
    portMappings: [{containerPort: 9000}]
    dependsOn: [{containerName: web, condition: HEALTHY}]
  volumes: [{name: data, host: {sourcePath: /srv/data}}]
`

const baseRevision = `
apiVersion: ecs.drover.dev/v1alpha1
kind: TaskDefinitionRevision
metadata: {name: web-3}
spec:
  family: web
  revision: 3
  taskDefinition:
    containerDefinitions: [{name: web, image: "nginx:1.27", memory: 256}]
`

const baseService = `
apiVersion: ecs.drover.dev/v1alpha1
kind: Service
metadata: {name: web}
spec:
  cluster: stores
  taskDefinition: web
  placementStrategy: [{type: spread, field: "attribute:store"}, {type: binpack, field: memory}]
  placementConstraints: [{type: distinctInstance}, {type: memberOf, expression: "attribute:ecs.os-type == linux"}]
`

const baseInstance = `
apiVersion: ecs.drover.dev/v1alpha1
kind: ContainerInstance
metadata: {name: host-1}
spec:
  cluster: stores
  activation: stores
  attributes: [{name: store, value: "0001"}]
`

const baseTask = `
apiVersion: ecs.drover.dev/v1alpha1
kind: Task
metadata: {name: web-abc12}
spec:
  cluster: stores
  taskDefinition: web
  group: "service:web"
`

const placedTask = `
apiVersion: ecs.drover.dev/v1alpha1
kind: Task
metadata: {name: web-abc12}
spec:
  cluster: stores
  taskDefinition: web
  taskDefinitionRevision: web-3
  containers: [{name: web, image: "nginx:1.27", memory: 256}]
  networkMode: bridge
  volumes: [{name: data}]
  cpu: 512
  memory: 512
  containerInstance: host-1
  desiredStatus: STOPPED
status:
  lastStatus: STOPPED
`

var baseActivation = `
apiVersion: ecs.drover.dev/v1alpha1
kind: Activation
metadata: {name: stores}
spec:
  cluster: stores
  codeHash: "sha256:` + strings.Repeat("ab", 32) + `"
  expiresAt: "2030-01-01T00:00:00Z"
`

// op sets the value at a dotted path, numbers indexing lists; a value of deleted removes the field.
type op struct {
	path  string
	value any
}

type deletedValue struct{}

var deleted = deletedValue{}

func apply(t *testing.T, obj map[string]any, ops []op) {
	t.Helper()
	for _, o := range ops {
		keys := strings.Split(o.path, ".")
		var parent any = obj
		for i, key := range keys {
			last := i == len(keys)-1
			value := o.value
			if n, ok := value.(int); ok {
				value = int64(n)
			}
			switch p := parent.(type) {
			case map[string]any:
				if last {
					if value == deleted {
						delete(p, key)
					} else {
						p[key] = value
					}
					continue
				}
				if _, ok := p[key]; !ok {
					p[key] = map[string]any{}
				}
				parent = p[key]
			case []any:
				index, err := strconv.Atoi(key)
				require.NoError(t, err, o.path)
				require.Less(t, index, len(p), o.path)
				if last {
					p[index] = value
					continue
				}
				parent = p[index]
			default:
				require.Fail(t, "path goes through a scalar", o.path)
			}
		}
	}
}

type ruleCase struct {
	name   string
	base   string
	update bool // validate ops as an update of base, so that transition rules run
	ops    []op
	field  string // the path of the expected error
	detail string // a part of the expected message
}

func kindOf(t *testing.T, doc string) string {
	t.Helper()
	for _, line := range strings.Split(doc, "\n") {
		if kind, ok := strings.CutPrefix(line, "kind: "); ok {
			return strings.TrimSpace(kind)
		}
	}
	require.Fail(t, "no kind in document")
	return ""
}

func runCase(t *testing.T, tc ruleCase) field.ErrorList {
	t.Helper()
	s := schemaFor(t, kindOf(t, tc.base))
	obj := decode(t, s, tc.base)
	var old map[string]any
	if tc.update {
		old = obj
		obj = runtime.DeepCopyJSON(obj)
	}
	apply(t, obj, tc.ops)
	unknown := structuralpruning.PruneWithOptions(obj, s.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	require.Empty(t, unknown, "the test sets fields the schema does not have")
	structuraldefaulting.Default(obj, s.structural)
	return validate(t, s, obj, old)
}

func TestRulesReject(t *testing.T) {
	pm := func(containerPort, hostPort int, protocol string) map[string]any {
		return map[string]any{"containerPort": int64(containerPort), "hostPort": int64(hostPort), "protocol": protocol}
	}
	cases := []ruleCase{
		// TaskDefinition: containers.
		{name: "memoryReservation above memory", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.memoryReservation", 512}},
			field: "spec.containerDefinitions[0].memoryReservation", detail: "memoryReservation must not exceed memory"},
		{name: "memory below docker's minimum", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.memory", 4}},
			field: "spec.containerDefinitions[0].memory", detail: "greater than or equal to 6"},
		{name: "container without memory", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.1.memoryReservation", deleted}},
			field: "spec.containerDefinitions", detail: "container sidecar sets neither memory nor memoryReservation"},
		{name: "no essential container", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.essential", false}},
			field: "spec.containerDefinitions", detail: "at least one container must be essential"},
		{name: "container name", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.name", "web app"}},
			field: "spec.containerDefinitions[0].name", detail: "should match"},
		{name: "duplicate container name", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.1.name", "web"}},
			field: "spec.containerDefinitions[1]", detail: "Duplicate value"},
		{name: "eleven containers", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions", containers(11)}},
			field: "spec.containerDefinitions", detail: "must have at most 10 items"},
		{name: "cpu above the maximum", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.cpu", 65537}},
			field: "spec.containerDefinitions[0].cpu", detail: "less than or equal to 65536"},
		{name: "dependsOn an unknown container", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.1.dependsOn.0.containerName", "db"}},
			field: "spec.containerDefinitions", detail: "container sidecar: dependsOn refers to a container that is not in containerDefinitions"},
		{name: "dependsOn itself", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.1.dependsOn.0.containerName", "sidecar"}},
			field: "spec.containerDefinitions[1].dependsOn", detail: "a container cannot depend on itself"},
		{name: "HEALTHY dependency without healthCheck", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.healthCheck", deleted}},
			field: "spec.containerDefinitions", detail: "dependsOn condition HEALTHY needs a healthCheck"},
		{name: "dependsOn condition", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.1.dependsOn.0.condition", "READY"}},
			field: "spec.containerDefinitions[1].dependsOn[0].condition", detail: "Unsupported value"},
		{name: "mountPoint of an unknown volume", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.mountPoints.0.sourceVolume", "logs"}},
			field: "spec.containerDefinitions", detail: "container web: mountPoints refer to a sourceVolume that is not in volumes"},
		{name: "mountPoint without volumes", base: baseTaskDefinition, ops: []op{{"spec.volumes", deleted}},
			field: "spec.containerDefinitions", detail: "container web: mountPoints refer to a sourceVolume that is not in volumes"},
		{name: "relative containerPath", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.mountPoints.0.containerPath", "data"}},
			field: "spec.containerDefinitions[0].mountPoints[0].containerPath", detail: "should match"},
		{name: "healthCheck command", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.healthCheck.command", []any{"curl", "-f", "http://localhost/"}}},
			field: "spec.containerDefinitions[0].healthCheck.command", detail: "command must start with CMD"},
		{name: "healthCheck interval", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.healthCheck.interval", 3}},
			field: "spec.containerDefinitions[0].healthCheck.interval", detail: "greater than or equal to 5"},
		{name: "healthCheck retries", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.healthCheck.retries", 11}},
			field: "spec.containerDefinitions[0].healthCheck.retries", detail: "less than or equal to 10"},
		{name: "restartAttemptPeriod", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.restartPolicy", map[string]any{"enabled": true, "restartAttemptPeriod": int64(30)}}},
			field: "spec.containerDefinitions[0].restartPolicy.restartAttemptPeriod", detail: "greater than or equal to 60"},
		{name: "stopTimeout", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.stopTimeout", 121}},
			field: "spec.containerDefinitions[0].stopTimeout", detail: "less than or equal to 120"},

		// TaskDefinition: ports.
		{name: "hostPort shared by two containers", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.1.portMappings.0.hostPort", 8080}},
			field: "spec.containerDefinitions", detail: "hostPort 8080/tcp is used by more than one port mapping; host ports must be unique within a task"},
		{name: "hostPort shared within a container", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.portMappings", []any{pm(80, 8080, "udp"), pm(81, 8080, "udp")}}},
			field: "spec.containerDefinitions[0].portMappings", detail: "hostPort 8080/udp is used by more than one port mapping"},
		{name: "containerPort twice in a container", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.portMappings", []any{pm(80, 8080, "tcp"), pm(80, 8081, "tcp")}}},
			field: "spec.containerDefinitions[0].portMappings[1]", detail: "Duplicate value"},
		{name: "containerPort shared in host mode", base: baseTaskDefinition, ops: []op{
			{"spec.networkMode", "host"}, {"spec.containerDefinitions.0.portMappings.0.hostPort", deleted},
			{"spec.containerDefinitions.1.portMappings.0.containerPort", 80}},
			field: "spec.containerDefinitions", detail: "hostPort 80/tcp is used by more than one port mapping"},
		{name: "hostPort differs from containerPort in host mode", base: baseTaskDefinition, ops: []op{{"spec.networkMode", "host"}},
			field: "spec.containerDefinitions", detail: "in networkMode host, hostPort must equal containerPort or be absent"},
		{name: "portMappings in mode none", base: baseTaskDefinition, ops: []op{{"spec.networkMode", "none"}},
			field: "spec.containerDefinitions", detail: "networkMode none has no network to publish ports on"},
		{name: "network mode", base: baseTaskDefinition, ops: []op{{"spec.networkMode", "awsvpc"}},
			field: "spec.networkMode", detail: "Unsupported value"},
		{name: "hostPort out of range", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.portMappings.0.hostPort", 65536}},
			field: "spec.containerDefinitions[0].portMappings[0].hostPort", detail: "less than or equal to 65535"},
		{name: "protocol", base: baseTaskDefinition, ops: []op{{"spec.containerDefinitions.0.portMappings.0.protocol", "sctp"}},
			field: "spec.containerDefinitions[0].portMappings[0].protocol", detail: "Unsupported value"},

		// TaskDefinition: task level.
		{name: "distinctInstance in a task definition", base: baseTaskDefinition, ops: []op{{"spec.placementConstraints", []any{map[string]any{"type": "distinctInstance"}}}},
			field: "spec.placementConstraints", detail: "only memberOf constraints are allowed in a task definition"},
		{name: "memberOf without expression", base: baseTaskDefinition, ops: []op{{"spec.placementConstraints", []any{map[string]any{"type": "memberOf"}}}},
			field: "spec.placementConstraints[0].expression", detail: "expression is required when type is memberOf"},
		{name: "volume sourcePath", base: baseTaskDefinition, ops: []op{{"spec.volumes.0.host.sourcePath", "srv/data"}},
			field: "spec.volumes[0].host.sourcePath", detail: "should match"},
		{name: "family longer than 242", base: baseTaskDefinition, ops: []op{{"metadata.name", strings.Repeat("w", 243)}},
			field: "<nil>", detail: "metadata.name, the task definition family, must be at most 242 characters"},

		// TaskDefinitionRevision.
		{name: "revision name", base: baseRevision, ops: []op{{"metadata.name", "web-4"}},
			field: "<nil>", detail: "metadata.name must be <spec.family>-<spec.revision>"},
		{name: "revision spec changed", base: baseRevision, update: true, ops: []op{{"spec.taskDefinition.containerDefinitions.0.image", "nginx:1.28"}},
			field: "spec", detail: "TaskDefinitionRevision is immutable; change the TaskDefinition to create a new revision"},
		{name: "revision number", base: baseRevision, ops: []op{{"spec.revision", 0}, {"metadata.name", "web-0"}},
			field: "spec.revision", detail: "greater than or equal to 1"},

		// Service.
		{name: "binpack field", base: baseService, ops: []op{{"spec.placementStrategy.1.field", "instanceId"}},
			field: "spec.placementStrategy[1].field", detail: "field must be cpu or memory when type is binpack"},
		{name: "spread field", base: baseService, ops: []op{{"spec.placementStrategy.0.field", "store"}},
			field: "spec.placementStrategy[0].field", detail: "field must be instanceId, host or attribute:NAME when type is spread"},
		{name: "spread on an empty attribute name", base: baseService, ops: []op{{"spec.placementStrategy.0.field", "attribute:"}},
			field: "spec.placementStrategy[0].field", detail: "field must be instanceId, host or attribute:NAME when type is spread"},
		{name: "random with field", base: baseService, ops: []op{{"spec.placementStrategy.0", map[string]any{"type": "random", "field": "cpu"}}},
			field: "spec.placementStrategy[0].field", detail: "field must not be set when type is random"},
		{name: "distinctInstance with expression", base: baseService, ops: []op{{"spec.placementConstraints.0.expression", "attribute:a == b"}},
			field: "spec.placementConstraints[0].expression", detail: "expression must not be set when type is distinctInstance"},
		{name: "placementStrategy with DAEMON", base: baseService, ops: []op{{"spec.schedulingStrategy", "DAEMON"}},
			field: "spec.placementStrategy", detail: "placementStrategy is not supported with schedulingStrategy DAEMON"},
		{name: "canary with DAEMON", base: baseService, ops: []op{{"spec.placementStrategy", []any{}}, {"spec.schedulingStrategy", "DAEMON"},
			{"spec.deploymentConfiguration.canary", map[string]any{"count": 1}}},
			field: "spec.deploymentConfiguration.canary", detail: "deploymentConfiguration.canary is not supported with schedulingStrategy DAEMON"},
		{name: "canary of 0", base: baseService, ops: []op{{"spec.deploymentConfiguration.canary", map[string]any{"count": 0}}},
			field: "spec.deploymentConfiguration.canary.count", detail: "greater than or equal to 1"},
		{name: "six placement strategies", base: baseService, ops: []op{{"spec.placementStrategy", repeat(map[string]any{"type": "random"}, 6)}},
			field: "spec.placementStrategy", detail: "must have at most 5 items"},
		{name: "taskDefinition revision 0", base: baseService, ops: []op{{"spec.taskDefinition", "web:0"}},
			field: "spec.taskDefinition", detail: "should match"},
		{name: "negative desiredCount", base: baseService, ops: []op{{"spec.desiredCount", -1}},
			field: "spec.desiredCount", detail: "greater than or equal to 0"},
		{name: "maximumPercent below 100", base: baseService, ops: []op{{"spec.deploymentConfiguration", map[string]any{"maximumPercent": int64(50)}}},
			field: "spec.deploymentConfiguration.maximumPercent", detail: "greater than or equal to 100"},
		{name: "minimumHealthyPercent above 100", base: baseService, ops: []op{{"spec.deploymentConfiguration", map[string]any{"minimumHealthyPercent": int64(101)}}},
			field: "spec.deploymentConfiguration.minimumHealthyPercent", detail: "less than or equal to 100"},
		{name: "circuit breaker without rollback", base: baseService, ops: []op{{"spec.deploymentConfiguration", map[string]any{"deploymentCircuitBreaker": map[string]any{"enable": true}}}},
			field: "spec.deploymentConfiguration.deploymentCircuitBreaker.rollback", detail: "Required value"},
		{name: "disconnect action", base: baseService, ops: []op{{"spec.disconnectPolicy", map[string]any{"action": "Stop"}}},
			field: "spec.disconnectPolicy.action", detail: "Unsupported value"},
		{name: "service cluster changed", base: baseService, update: true, ops: []op{{"spec.cluster", "factories"}},
			field: "spec.cluster", detail: "cluster is immutable"},
		{name: "schedulingStrategy changed", base: baseService, update: true, ops: []op{{"spec.schedulingStrategy", "DAEMON"}, {"spec.placementStrategy", deleted}},
			field: "spec.schedulingStrategy", detail: "schedulingStrategy is immutable"},

		// ContainerInstance.
		{name: "instance cluster changed", base: baseInstance, update: true, ops: []op{{"spec.cluster", "factories"}},
			field: "spec.cluster", detail: "cluster is immutable"},
		{name: "activation changed", base: baseInstance, update: true, ops: []op{{"spec.activation", "other"}},
			field: "spec.activation", detail: "activation cannot be changed once set"},
		{name: "activation removed", base: baseInstance, update: true, ops: []op{{"spec.activation", deleted}},
			field: "spec.activation", detail: "activation cannot be changed once set"},
		{name: "reserved attribute", base: baseInstance, ops: []op{{"spec.attributes.0.name", "ecs.os-type"}},
			field: "spec.attributes", detail: "attribute names starting with ecs. are reserved"},
		{name: "attribute value too long", base: baseInstance, ops: []op{{"spec.attributes.0.value", strings.Repeat("v", 129)}},
			field: "spec.attributes[0].value", detail: "may not be more than 128"},
		{name: "duplicate attribute", base: baseInstance, ops: []op{{"spec.attributes", repeat(map[string]any{"name": "store"}, 2)}},
			field: "spec.attributes[1]", detail: "Duplicate value"},
		{name: "instance state", base: baseInstance, ops: []op{{"spec.state", "INACTIVE"}},
			field: "spec.state", detail: "Unsupported value"},

		// Task.
		{name: "task moved to another instance", base: placedTask, update: true, ops: []op{{"spec.containerInstance", "host-2"}},
			field: "spec.containerInstance", detail: "spec.containerInstance cannot be changed once the task is placed"},
		{name: "task unplaced", base: placedTask, update: true, ops: []op{{"spec.containerInstance", deleted}},
			field: "spec.containerInstance", detail: "spec.containerInstance cannot be changed once the task is placed"},
		{name: "task containers changed", base: placedTask, update: true, ops: []op{{"spec.containers.0.image", "nginx:1.28"}},
			field: "spec.containers", detail: "containers cannot be changed once resolved"},
		{name: "task containers removed", base: placedTask, update: true, ops: []op{{"spec.containers", deleted}},
			field: "spec.containers", detail: "containers cannot be changed once resolved"},
		{name: "task revision changed", base: placedTask, update: true, ops: []op{{"spec.taskDefinitionRevision", "web-4"}},
			field: "spec.taskDefinitionRevision", detail: "taskDefinitionRevision cannot be changed once set"},
		{name: "task networkMode changed", base: placedTask, update: true, ops: []op{{"spec.networkMode", "host"}},
			field: "spec.networkMode", detail: "networkMode cannot be changed once resolved"},
		{name: "task volumes changed", base: placedTask, update: true, ops: []op{{"spec.volumes.0.name", "logs"}},
			field: "spec.volumes", detail: "volumes cannot be changed once resolved"},
		{name: "task cpu changed", base: placedTask, update: true, ops: []op{{"spec.cpu", 1024}},
			field: "spec.cpu", detail: "cpu cannot be changed once resolved"},
		{name: "task memory changed", base: placedTask, update: true, ops: []op{{"spec.memory", 1024}},
			field: "spec.memory", detail: "memory cannot be changed once resolved"},
		{name: "task cluster changed", base: placedTask, update: true, ops: []op{{"spec.cluster", "factories"}},
			field: "spec.cluster", detail: "cluster is immutable"},
		{name: "task definition changed", base: placedTask, update: true, ops: []op{{"spec.taskDefinition", "web:4"}},
			field: "spec.taskDefinition", detail: "taskDefinition is immutable"},
		{name: "stopped task restarted", base: placedTask, update: true, ops: []op{{"spec.desiredStatus", "RUNNING"}},
			field: "spec.desiredStatus", detail: "desiredStatus cannot go from STOPPED back to RUNNING"},
		{name: "lastStatus leaves STOPPED", base: placedTask, update: true, ops: []op{{"status.lastStatus", "RUNNING"}},
			field: "status.lastStatus", detail: "lastStatus cannot change once STOPPED"},
		{name: "task startedBy too long", base: baseTask, ops: []op{{"spec.startedBy", strings.Repeat("s", 129)}},
			field: "spec.startedBy", detail: "may not be more than 128"},

		// Activation.
		{name: "codeHash format", base: baseActivation, ops: []op{{"spec.codeHash", "sha256:" + strings.Repeat("AB", 32)}},
			field: "spec.codeHash", detail: "should match"},
		{name: "codeHash changed", base: baseActivation, update: true, ops: []op{{"spec.codeHash", "sha256:" + strings.Repeat("cd", 32)}},
			field: "spec.codeHash", detail: "codeHash is immutable"},
		{name: "activation cluster changed", base: baseActivation, update: true, ops: []op{{"spec.cluster", "factories"}},
			field: "spec.cluster", detail: "cluster is immutable"},
		{name: "registrationLimit above 1000", base: baseActivation, ops: []op{{"spec.registrationLimit", 1001}},
			field: "spec.registrationLimit", detail: "less than or equal to 1000"},
		{name: "registrationLimit 0", base: baseActivation, ops: []op{{"spec.registrationLimit", 0}},
			field: "spec.registrationLimit", detail: "greater than or equal to 1"},
		{name: "activation without expiry", base: baseActivation, ops: []op{{"spec.expiresAt", deleted}},
			field: "spec.expiresAt", detail: "Required value"},
		{name: "reserved activation attribute", base: baseActivation, ops: []op{{"spec.attributes", []any{map[string]any{"name": "ecs.cpu-architecture"}}}},
			field: "spec.attributes", detail: "attribute names starting with ecs. are reserved"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Empty(t, runCase(t, ruleCase{base: tc.base}), "the base object is valid")
			errs := runCase(t, tc)
			require.NotEmpty(t, errs, "accepted")
			var found bool
			for _, err := range errs {
				if err.Field == tc.field && strings.Contains(err.Error(), tc.detail) {
					found = true
				}
			}
			assert.True(t, found, "want an error at %s containing %q, got:\n%v", tc.field, tc.detail, errs.ToAggregate())
		})
	}
}

func TestRulesAccept(t *testing.T) {
	cases := []ruleCase{
		{name: "task-level memory instead of container memory", base: baseTaskDefinition, ops: []op{
			{"spec.memory", 512}, {"spec.containerDefinitions.1.memoryReservation", deleted}}},
		{name: "tcp and udp on one host port", base: baseTaskDefinition, ops: []op{
			{"spec.containerDefinitions.1.portMappings.0", map[string]any{"containerPort": int64(53), "hostPort": int64(8080), "protocol": "udp"}}}},
		{name: "dynamic host ports repeat", base: baseTaskDefinition, ops: []op{
			{"spec.containerDefinitions.0.portMappings.0.hostPort", 0}, {"spec.containerDefinitions.1.portMappings.0.containerPort", 80}}},
		{name: "host mode with hostPort equal to containerPort", base: baseTaskDefinition, ops: []op{
			{"spec.networkMode", "host"}, {"spec.containerDefinitions.0.portMappings.0.hostPort", 80}}},
		{name: "mode none without ports", base: baseTaskDefinition, ops: []op{
			{"spec.networkMode", "none"}, {"spec.containerDefinitions.0.portMappings", deleted}, {"spec.containerDefinitions.1.portMappings", deleted}}},
		{name: "revision status update", base: baseRevision, update: true, ops: []op{
			{"status.conditions", []any{map[string]any{"type": "InUse", "status": "True", "reason": "Referenced", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}}}}},
		{name: "DAEMON without placementStrategy", base: baseService, ops: []op{{"spec.placementStrategy", deleted}, {"spec.schedulingStrategy", "DAEMON"}}},
		{name: "random without field", base: baseService, ops: []op{{"spec.placementStrategy", []any{map[string]any{"type": "random"}}}}},
		{name: "scale to zero and change the task definition", base: baseService, update: true, ops: []op{{"spec.desiredCount", 0}, {"spec.taskDefinition", "web:7"}}},
		{name: "drain and relabel an instance", base: baseInstance, update: true, ops: []op{{"spec.state", "DRAINING"}, {"spec.attributes.0.value", "0002"}}},
		{name: "resolve and place a task", base: baseTask, update: true, ops: []op{
			{"spec.taskDefinitionRevision", "web-3"}, {"spec.networkMode", "host"}, {"spec.cpu", 256},
			{"spec.containers", []any{map[string]any{"name": "web", "image": "nginx:1.27", "memory": int64(128)}}},
			{"spec.containerInstance", "host-1"}, {"status.lastStatus", "PENDING"}}},
		{name: "stop a task", base: baseTask, update: true, ops: []op{{"spec.desiredStatus", "STOPPED"}, {"status.lastStatus", "STOPPED"}}},
		{name: "extend an activation", base: baseActivation, update: true, ops: []op{{"spec.expiresAt", "2030-02-01T00:00:00Z"}, {"spec.registrationLimit", 1000}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Empty(t, runCase(t, tc))
		})
	}
	t.Run("set the activation of an instance", func(t *testing.T) {
		s := schemaFor(t, "ContainerInstance")
		withActivation := decode(t, s, baseInstance)
		without := runtime.DeepCopyJSON(withActivation)
		apply(t, without, []op{{"spec.activation", deleted}})
		assert.Empty(t, validate(t, s, withActivation, without))
	})
}

func containers(n int) []any {
	list := make([]any, n)
	for i := range list {
		list[i] = map[string]any{"name": fmt.Sprintf("c%d", i), "image": "busybox:1.36", "memory": int64(16)}
	}
	return list
}

func repeat(v map[string]any, n int) []any {
	list := make([]any, n)
	for i := range list {
		list[i] = runtime.DeepCopyJSONValue(v)
	}
	return list
}

// worstCaseTaskDefinition fills every list the CEL rules iterate to its maxItems, with the longest names.
func worstCaseTaskDefinition() ecsv1alpha1.TaskDefinitionSpec {
	name := func(i int) string { return fmt.Sprintf("%03d", i) + strings.Repeat("n", 252) }
	spec := ecsv1alpha1.TaskDefinitionSpec{NetworkMode: ecsv1alpha1.NetworkModeBridge}
	for v := range 20 {
		spec.Volumes = append(spec.Volumes, ecsv1alpha1.Volume{Name: name(v)})
	}
	for c := range 10 {
		memory := int32(64)
		cd := ecsv1alpha1.ContainerDefinition{Name: name(c), Image: "busybox:1.36", Memory: &memory}
		for p := range 50 {
			cd.PortMappings = append(cd.PortMappings, ecsv1alpha1.PortMapping{
				ContainerPort: int32(p + 1), HostPort: int32(10000 + 100*c + p), Protocol: ecsv1alpha1.ProtocolTCP,
			})
		}
		for m := range 50 {
			cd.MountPoints = append(cd.MountPoints, ecsv1alpha1.MountPoint{SourceVolume: name(m % 20), ContainerPath: fmt.Sprintf("/m/%d", m)})
		}
		for d := range 10 {
			if d != c {
				cd.DependsOn = append(cd.DependsOn, ecsv1alpha1.ContainerDependency{ContainerName: name(d), Condition: ecsv1alpha1.ContainerConditionStart})
			}
		}
		for e := range 500 {
			cd.Environment = append(cd.Environment, ecsv1alpha1.KeyValuePair{Name: fmt.Sprintf("VAR_%d", e), Value: strings.Repeat("v", 64)})
		}
		spec.ContainerDefinitions = append(spec.ContainerDefinitions, cd)
	}
	return spec
}

func toUnstructured(t *testing.T, obj runtime.Object) map[string]any {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	require.NoError(t, err)
	return u
}

// TestRulesWorstCase evaluates the rules on the largest objects the schemas allow, so that the CEL runtime
// cost limits (per rule and per object) are proven, not only estimated.
func TestRulesWorstCase(t *testing.T) {
	td := &ecsv1alpha1.TaskDefinition{Spec: worstCaseTaskDefinition()}
	td.APIVersion, td.Kind, td.Name = ecsv1alpha1.GroupVersion.String(), "TaskDefinition", "web"
	s := schemaFor(t, "TaskDefinition")
	assert.Empty(t, validate(t, s, toUnstructured(t, td), nil))

	// The last two containers share a host port: the rule and its message must still fit the budget.
	td.Spec.ContainerDefinitions[9].PortMappings[49].HostPort = td.Spec.ContainerDefinitions[8].PortMappings[49].HostPort
	errs := validate(t, s, toUnstructured(t, td), nil)
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "hostPort 10849/tcp is used by more than one port mapping")

	// A placed task carries the same containers: the transition rules compare them on every update.
	task := &ecsv1alpha1.Task{Spec: ecsv1alpha1.TaskSpec{
		Cluster: "stores", TaskDefinition: "web", TaskDefinitionRevision: "web-1", DesiredStatus: ecsv1alpha1.TaskDesiredRunning,
		Containers: worstCaseTaskDefinition().ContainerDefinitions, Volumes: worstCaseTaskDefinition().Volumes,
	}}
	task.APIVersion, task.Kind, task.Name = ecsv1alpha1.GroupVersion.String(), "Task", "web-abc12"
	old := toUnstructured(t, task)
	task.Spec.ContainerInstance = "host-1"
	assert.Empty(t, validate(t, schemaFor(t, "Task"), toUnstructured(t, task), old))
}
