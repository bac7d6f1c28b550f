// Package runtime is the agent's view of a container runtime: the few operations the task engine
// needs, in the engine's own terms, so that the engine does not depend on one runtime's API.
// Docker is the one implementation, over the Docker Engine API with the moby client.
package runtime

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) when a container or image does not exist.
var ErrNotFound = errors.New("not found")

// Runtime runs containers on this host. Every call is bounded by its context.
type Runtime interface {
	// Version returns the runtime's version, for example 27.3.1.
	Version(ctx context.Context) (string, error)

	// PullImage pulls ref, with auth when it is not nil, and returns the image's repository digest
	// (sha256:...) when the registry gave one.
	PullImage(ctx context.Context, ref string, auth *RegistryAuth) (string, error)
	// InspectImage returns the local image ref names, or ErrNotFound.
	InspectImage(ctx context.Context, ref string) (Image, error)
	// ListImages returns the local images.
	ListImages(ctx context.Context) ([]Image, error)
	// RemoveImage removes a local image by id; it fails when a container uses it.
	RemoveImage(ctx context.Context, id string) error

	// CreateContainer creates a container and returns its id. A container with the same name that
	// already exists is an error wrapping ErrExists.
	CreateContainer(ctx context.Context, spec ContainerSpec) (string, error)
	// StartContainer starts a created or exited container.
	StartContainer(ctx context.Context, id string) error
	// StopContainer sends SIGTERM, then SIGKILL after timeout if the container is still running.
	StopContainer(ctx context.Context, id string, timeout time.Duration) error
	// RemoveContainer removes a container, killing it if it runs, with its anonymous volumes.
	RemoveContainer(ctx context.Context, id string) error
	// InspectContainer returns a container's state, or ErrNotFound.
	InspectContainer(ctx context.Context, id string) (Container, error)
	// ListContainers returns the containers, running or not, that carry all the labels.
	ListContainers(ctx context.Context, labels map[string]string) ([]Container, error)
	// ContainerLogs streams a container's output, stdout and stderr in Docker's multiplexed
	// format when the container has no TTY.
	ContainerLogs(ctx context.Context, id string, opts LogOptions) (io.ReadCloser, error)
	// Events sends the container events of containers that carry all the labels until ctx ends or
	// the stream fails; the error channel then receives why.
	Events(ctx context.Context, labels map[string]string) (<-chan Event, <-chan error)

	// RemoveVolume removes a named volume; a volume that does not exist is not an error.
	RemoveVolume(ctx context.Context, name string) error

	// Close releases the connection to the runtime.
	Close() error
}

// ErrExists is returned (wrapped) when a container with the same name already exists.
var ErrExists = errors.New("already exists")

// RegistryAuth is the credentials for one registry.
type RegistryAuth struct {
	Username, Password string
	// ServerAddress is the registry, host[:port].
	ServerAddress string
}

// Image is a local image.
type Image struct {
	ID string
	// RepoTags are the names the image is known by, for example web:1.
	RepoTags []string
	// RepoDigests are the names by digest, for example registry.example.com/web@sha256:...
	RepoDigests []string
	Created     time.Time
}

// ContainerSpec is everything needed to create a container.
type ContainerSpec struct {
	// Name is the container's unique name on the host.
	Name  string
	Image string
	// Labels tie the container to its task and instance.
	Labels     map[string]string
	Env        []string
	Entrypoint []string
	Cmd        []string
	WorkingDir string
	User       string
	// CPUShares is the relative CPU weight; 0 leaves the runtime's default.
	CPUShares int64
	// MemoryBytes is the hard limit; 0 means none.
	MemoryBytes int64
	// MemoryReservationBytes is the soft limit; 0 means none.
	MemoryReservationBytes int64
	// NetworkMode is bridge, host or none.
	NetworkMode string
	Ports       []PortSpec
	// Binds are host path bind mounts.
	Binds []Bind
	// HealthCheck, when set, replaces the image's health check.
	HealthCheck    *HealthCheck
	Privileged     bool
	ReadonlyRootfs bool
	// StopTimeout is the time between SIGTERM and SIGKILL when the runtime stops the container.
	StopTimeout time.Duration
}

// PortSpec publishes a container port on the host. HostPort 0 asks the runtime for a free port.
type PortSpec struct {
	ContainerPort, HostPort uint16
	// Protocol is tcp or udp.
	Protocol string
}

// Bind mounts a host path, or a named volume that the runtime creates on first use, into the
// container.
type Bind struct {
	// HostPath is an absolute host path or a volume name.
	HostPath, ContainerPath string
	ReadOnly                bool
}

// HealthCheck is a container health check: Test is ["CMD", ...] or ["CMD-SHELL", "..."].
type HealthCheck struct {
	Test                           []string
	Interval, Timeout, StartPeriod time.Duration
	Retries                        int
}

// State is where a container is in its life.
type State string

// Container states.
const (
	StateCreated State = "created"
	StateRunning State = "running"
	StateExited  State = "exited"
	// StateUnknown covers paused, restarting, removing and dead: states the agent does not cause.
	StateUnknown State = "unknown"
)

// Health is a container's health check result.
type Health string

// Health results. HealthNone means the container has no health check.
const (
	HealthNone      Health = ""
	HealthStarting  Health = "starting"
	HealthHealthy   Health = "healthy"
	HealthUnhealthy Health = "unhealthy"
)

// Container is a container's observed state.
type Container struct {
	ID     string
	Name   string
	Labels map[string]string
	// Image is the reference the container was created from; ImageID the image's id.
	Image, ImageID string
	State          State
	ExitCode       int
	OOMKilled      bool
	// Error is the runtime's message when the container failed to start.
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	Health     Health
	// Ports are the published ports with the host ports the runtime chose.
	Ports []PortBinding
	// Inspect-only details, for tests and diagnostics.
	MemoryBytes, MemoryReservationBytes, CPUShares int64
}

// PortBinding is a published port.
type PortBinding struct {
	HostIP                  string
	ContainerPort, HostPort uint16
	Protocol                string
}

// LogOptions select the output ContainerLogs streams.
type LogOptions struct {
	Follow bool
	// Tail is the number of lines from the end; 0 means all.
	Tail int
	// Timestamps prefixes each line with its time.
	Timestamps bool
}

// Event is something that happened to a container.
type Event struct {
	// Action is die, start, oom, health_status, destroy...
	Action string
	ID     string
	Labels map[string]string
}
