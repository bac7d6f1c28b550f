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

// ContainerDefinition describes one container of a task, with the field names of the ECS API. TaskDefinitions
// hold them as written; Tasks hold the copy resolved from the revision they run, which is what the agent starts.
// +kubebuilder:validation:XValidation:rule="!has(self.memory) || !has(self.memoryReservation) || self.memoryReservation <= self.memory",message="memoryReservation must not exceed memory; lower memoryReservation or raise memory",fieldPath=".memoryReservation"
// +kubebuilder:validation:XValidation:rule="!has(self.dependsOn) || self.dependsOn.all(d, d.containerName != self.name)",message="a container cannot depend on itself",fieldPath=".dependsOn"
// +kubebuilder:validation:XValidation:rule="!has(self.portMappings) || [self.portMappings.map(p, has(p.hostPort) && p.hostPort != 0 ? p.hostPort * 2 + (p.protocol == 'udp' ? 1 : 0) : 0)].all(ks, ks.all(k, k == 0 || ks.exists_one(l, l == k)))",messageExpression="[[self.portMappings.map(p, has(p.hostPort) && p.hostPort != 0 ? p.hostPort * 2 + (p.protocol == 'udp' ? 1 : 0) : 0)].map(ks, ks.filter(k, k != 0 && !ks.exists_one(l, l == k))[0])[0]].map(k, 'hostPort %s/%s is used by more than one port mapping; host ports must be unique within a task'.format([string(k / 2), k % 2 == 1 ? 'udp' : 'tcp']))[0]",fieldPath=".portMappings"
type ContainerDefinition struct {
	// name of the container, unique within the task: 1-255 letters, digits, hyphens and underscores. Other
	// containers refer to it in dependsOn.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_-]+$`
	Name string `json:"name"`

	// image to run, as Docker references it: repository[:tag][@digest], for example nginx:1.27 or
	// registry.example.com/pos@sha256:... At most 1024 characters.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Image string `json:"image"`

	// cpu is the number of CPU units reserved for the container, 1024 per vCPU (0-65536). Placement subtracts it
	// from the instance's remaining cpu; Docker receives it as the relative CPU share. Absent or 0 means no
	// reservation.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65536
	CPU int32 `json:"cpu,omitempty"`

	// memory is the hard memory limit in MiB (at least 6); the container is killed when it exceeds it. Placement
	// reserves it unless memoryReservation is set. A container must set memory or memoryReservation unless the
	// task-level memory is set.
	// +optional
	// +kubebuilder:validation:Minimum=6
	Memory *int32 `json:"memory,omitempty"`

	// memoryReservation is the soft memory limit in MiB (at least 6, at most memory): what placement reserves on
	// the instance. The container may use more, up to memory, when the host has it free.
	// +optional
	// +kubebuilder:validation:Minimum=6
	MemoryReservation *int32 `json:"memoryReservation,omitempty"`

	// essential marks a container whose exit stops the whole task (stopCode EssentialContainerExited). Defaults
	// to true; a task needs at least one essential container.
	// +optional
	// +kubebuilder:default=true
	Essential *bool `json:"essential,omitempty"`

	// portMappings publish container ports on the host, at most 50, unique by containerPort and protocol.
	// +optional
	// +listType=map
	// +listMapKey=containerPort
	// +listMapKey=protocol
	// +kubebuilder:validation:MaxItems=50
	PortMappings []PortMapping `json:"portMappings,omitempty"`

	// environment variables of the container, at most 500, unique by name.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=500
	Environment []KeyValuePair `json:"environment,omitempty"`

	// command replaces the image's CMD, at most 256 arguments. Absent means the image's CMD.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=32768
	Command []string `json:"command,omitempty"`

	// entryPoint replaces the image's ENTRYPOINT, at most 256 arguments. Absent means the image's ENTRYPOINT.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=32768
	EntryPoint []string `json:"entryPoint,omitempty"`

	// workingDirectory inside the container in which command runs. Absent means the image's WORKDIR.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	WorkingDirectory string `json:"workingDirectory,omitempty"`

	// user the container runs as: user, user:group, uid, uid:gid, user:gid or uid:group. Absent means the image's
	// USER.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	User string `json:"user,omitempty"`

	// mountPoints mount the task's volumes into the container, at most 50, unique by containerPath.
	// +optional
	// +listType=map
	// +listMapKey=containerPath
	// +kubebuilder:validation:MaxItems=50
	MountPoints []MountPoint `json:"mountPoints,omitempty"`

	// healthCheck is the Docker health check of the container. Task health is derived from the essential
	// containers' health checks. Absent means no health check (health UNKNOWN).
	// +optional
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`

	// dependsOn lists containers of the same task that must reach a condition before this one starts, at most 10,
	// unique by containerName.
	// +optional
	// +listType=map
	// +listMapKey=containerName
	// +kubebuilder:validation:MaxItems=10
	DependsOn []ContainerDependency `json:"dependsOn,omitempty"`

	// restartPolicy lets the agent restart the container in place when it exits, without replacing the task.
	// Absent means no restarts.
	// +optional
	RestartPolicy *RestartPolicy `json:"restartPolicy,omitempty"`

	// stopTimeout is the time in seconds (2-120) between SIGTERM and SIGKILL when the task stops. Absent means the
	// agent's default, 30 seconds as in ECS.
	// +optional
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=120
	StopTimeout *int32 `json:"stopTimeout,omitempty"`

	// dockerLabels are added to the container's Docker labels, at most 100.
	// +optional
	// +kubebuilder:validation:MaxProperties=100
	DockerLabels map[string]string `json:"dockerLabels,omitempty"`

	// privileged gives the container elevated privileges on the host (docker run --privileged). Defaults to false.
	// +optional
	Privileged *bool `json:"privileged,omitempty"`

	// readonlyRootFilesystem mounts the container's root filesystem read-only. Defaults to false.
	// +optional
	ReadonlyRootFilesystem *bool `json:"readonlyRootFilesystem,omitempty"`
}

// TransportProtocol is the protocol of a port mapping.
// +kubebuilder:validation:Enum=tcp;udp
type TransportProtocol string

const (
	// ProtocolTCP is TCP.
	ProtocolTCP TransportProtocol = "tcp"
	// ProtocolUDP is UDP.
	ProtocolUDP TransportProtocol = "udp"
)

// PortMapping publishes a container port on the host.
type PortMapping struct {
	// containerPort is the port the container listens on, 1-65535.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	ContainerPort int32 `json:"containerPort"`

	// hostPort is the port on the host, 0-65535. In bridge mode 0 or absent means a dynamic host port, reported
	// back in the task's network bindings. In host mode it must equal containerPort or be absent. Non-zero host
	// ports must be unique within a task per protocol.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	HostPort int32 `json:"hostPort,omitempty"`

	// protocol of the mapping, tcp or udp. Defaults to tcp.
	// +optional
	// +kubebuilder:default=tcp
	Protocol TransportProtocol `json:"protocol,omitempty"`

	// name of the mapping, 1-64 lowercase letters, digits, hyphens and underscores, for people and tools.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9_-]*$`
	Name string `json:"name,omitempty"`
}

// MountPoint mounts a volume of the task into a container.
type MountPoint struct {
	// sourceVolume is the name of a volume in the task definition's volumes.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	SourceVolume string `json:"sourceVolume"`

	// containerPath is the absolute path inside the container where the volume is mounted.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:Pattern=`^/`
	ContainerPath string `json:"containerPath"`

	// readOnly mounts the volume read-only. Defaults to false.
	// +optional
	ReadOnly *bool `json:"readOnly,omitempty"`
}

// HealthCheck is a Docker health check, with the ECS ranges and defaults.
// +kubebuilder:validation:XValidation:rule="self.command.size() == 0 || self.command[0] in ['CMD', 'CMD-SHELL']",message="command must start with CMD (exec the rest) or CMD-SHELL (run the rest with /bin/sh -c)",fieldPath=".command"
type HealthCheck struct {
	// command runs in the container; exit status 0 means healthy. The first element is CMD (run the remaining
	// elements as an argument list) or CMD-SHELL (run the second element with the container's shell), for
	// example ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]. 2-256 elements.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=2
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=32768
	Command []string `json:"command"`

	// interval is the time in seconds between checks, 5-300. Defaults to 30.
	// +optional
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=5
	// +kubebuilder:validation:Maximum=300
	Interval int32 `json:"interval,omitempty"`

	// timeout is the time in seconds a check may take before it counts as failed, 2-60. Defaults to 5.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=60
	Timeout int32 `json:"timeout,omitempty"`

	// retries is the number of consecutive failed checks that make the container UNHEALTHY, 1-10. Defaults to 3.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	Retries int32 `json:"retries,omitempty"`

	// startPeriod is the grace time in seconds, 0-300, after the container starts during which failed checks do
	// not count towards retries. Defaults to 0.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=300
	StartPeriod int32 `json:"startPeriod,omitempty"`
}

// ContainerCondition is the state a dependency must reach before the dependent container starts.
// +kubebuilder:validation:Enum=START;COMPLETE;SUCCESS;HEALTHY
type ContainerCondition string

const (
	// ContainerConditionStart waits until the dependency has started.
	ContainerConditionStart ContainerCondition = "START"
	// ContainerConditionComplete waits until the dependency has exited, with any exit code.
	ContainerConditionComplete ContainerCondition = "COMPLETE"
	// ContainerConditionSuccess waits until the dependency has exited with code 0.
	ContainerConditionSuccess ContainerCondition = "SUCCESS"
	// ContainerConditionHealthy waits until the dependency's health check passes.
	ContainerConditionHealthy ContainerCondition = "HEALTHY"
)

// ContainerDependency makes a container wait for another container of the same task.
type ContainerDependency struct {
	// containerName is the name of another container of the task.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	ContainerName string `json:"containerName"`

	// condition the other container must reach: START, COMPLETE, SUCCESS or HEALTHY (which needs a healthCheck
	// on the other container).
	// +required
	Condition ContainerCondition `json:"condition"`
}

// RestartPolicy lets the agent restart an exited container in place, on the same host, without replacing the
// task.
type RestartPolicy struct {
	// enabled turns restarts on.
	// +required
	Enabled bool `json:"enabled"`

	// ignoredExitCodes are exit codes that do not trigger a restart, at most 50.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=50
	IgnoredExitCodes []int32 `json:"ignoredExitCodes,omitempty"`

	// restartAttemptPeriod is the time in seconds, 60-1800, a container must run before a restart can be
	// attempted: the agent restarts a container at most once per period, and does not restart one that exits
	// before the period has passed, which stops crash loops. Defaults to 300.
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=1800
	RestartAttemptPeriod int32 `json:"restartAttemptPeriod,omitempty"`
}
