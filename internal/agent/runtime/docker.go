package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
)

// Docker is a Runtime over the Docker Engine API.
type Docker struct {
	c *client.Client
}

var _ Runtime = (*Docker)(nil)

// NewDocker returns a client of the Docker Engine at DOCKER_HOST (and the other DOCKER_*
// variables), or at its default socket. It negotiates the API version with the Engine on first
// use, and does not connect until then.
func NewDocker() (*Docker, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("creating a Docker Engine client (check DOCKER_HOST): %w", err)
	}
	return &Docker{c: c}, nil
}

// Close releases the connection.
func (d *Docker) Close() error { return d.c.Close() }

// Version returns the Engine's version.
func (d *Docker) Version(ctx context.Context) (string, error) {
	v, err := d.c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", err
	}
	return v.Version, nil
}

// wrap maps the client's not-found and conflict errors to ErrNotFound and ErrExists.
func wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("%w: %w", ErrExists, err)
	}
	return err
}

// PullImage pulls ref and returns its repository digest.
func (d *Docker) PullImage(ctx context.Context, ref string, auth *RegistryAuth) (string, error) {
	opts := client.ImagePullOptions{}
	if auth != nil {
		enc, err := authconfig.Encode(registry.AuthConfig{Username: auth.Username, Password: auth.Password, ServerAddress: auth.ServerAddress})
		if err != nil {
			return "", err
		}
		opts.RegistryAuth = enc
	}
	resp, err := d.c.ImagePull(ctx, ref, opts)
	if err != nil {
		return "", wrap(err)
	}
	defer resp.Close()
	digest := ""
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return "", err
		}
		if msg.Error != nil {
			return "", errors.New(msg.Error.Message)
		}
		if d, ok := strings.CutPrefix(msg.Status, "Digest: "); ok {
			digest = strings.TrimSpace(d)
		}
	}
	return digest, nil
}

// InspectImage returns the local image ref.
func (d *Docker) InspectImage(ctx context.Context, ref string) (Image, error) {
	r, err := d.c.ImageInspect(ctx, ref)
	if err != nil {
		return Image{}, wrap(err)
	}
	created, _ := time.Parse(time.RFC3339Nano, r.Created)
	return Image{ID: r.ID, RepoTags: r.RepoTags, RepoDigests: r.RepoDigests, Created: created}, nil
}

// ListImages returns the local images.
func (d *Docker) ListImages(ctx context.Context) ([]Image, error) {
	r, err := d.c.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(r.Items))
	for _, i := range r.Items {
		out = append(out, Image{ID: i.ID, RepoTags: i.RepoTags, RepoDigests: i.RepoDigests, Created: time.Unix(i.Created, 0)})
	}
	return out, nil
}

// RemoveImage removes an image by id or reference, without force: an image in use stays.
func (d *Docker) RemoveImage(ctx context.Context, id string) error {
	_, err := d.c.ImageRemove(ctx, id, client.ImageRemoveOptions{PruneChildren: true})
	return wrap(err)
}

// CreateContainer creates a container from spec.
func (d *Docker) CreateContainer(ctx context.Context, spec ContainerSpec) (string, error) {
	cfg := &container.Config{
		Image:      spec.Image,
		Labels:     spec.Labels,
		Env:        spec.Env,
		Entrypoint: spec.Entrypoint,
		Cmd:        spec.Cmd,
		WorkingDir: spec.WorkingDir,
		User:       spec.User,
	}
	if spec.StopTimeout > 0 {
		s := int(spec.StopTimeout.Round(time.Second) / time.Second)
		cfg.StopTimeout = &s
	}
	if h := spec.HealthCheck; h != nil {
		cfg.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, Retries: h.Retries}
	}
	hc := &container.HostConfig{
		NetworkMode:    container.NetworkMode(spec.NetworkMode),
		Privileged:     spec.Privileged,
		ReadonlyRootfs: spec.ReadonlyRootfs,
		Resources: container.Resources{
			CPUShares:         spec.CPUShares,
			Memory:            spec.MemoryBytes,
			MemoryReservation: spec.MemoryReservationBytes,
		},
		// The agent restarts containers itself, under the task's restartPolicy.
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
	}
	for _, b := range spec.Binds {
		bind := b.HostPath + ":" + b.ContainerPath
		if b.ReadOnly {
			bind += ":ro"
		}
		hc.Binds = append(hc.Binds, bind)
	}
	if len(spec.Ports) > 0 {
		cfg.ExposedPorts = network.PortSet{}
		hc.PortBindings = network.PortMap{}
		for _, p := range spec.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = "tcp"
			}
			port, err := network.ParsePort(fmt.Sprintf("%d/%s", p.ContainerPort, proto))
			if err != nil {
				return "", err
			}
			cfg.ExposedPorts[port] = struct{}{}
			hostPort := ""
			if p.HostPort != 0 {
				hostPort = strconv.Itoa(int(p.HostPort))
			}
			if spec.NetworkMode != "host" {
				hc.PortBindings[port] = append(hc.PortBindings[port], network.PortBinding{HostIP: netip.IPv4Unspecified(), HostPort: hostPort})
			}
		}
	}
	r, err := d.c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: spec.Name, Config: cfg, HostConfig: hc})
	if err != nil {
		return "", wrap(err)
	}
	return r.ID, nil
}

// RemoveVolume removes a named volume.
func (d *Docker) RemoveVolume(ctx context.Context, name string) error {
	_, err := d.c.VolumeRemove(ctx, name, client.VolumeRemoveOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return wrap(err)
}

// StartContainer starts a container.
func (d *Docker) StartContainer(ctx context.Context, id string) error {
	_, err := d.c.ContainerStart(ctx, id, client.ContainerStartOptions{})
	return wrap(err)
}

// StopContainer stops a container: SIGTERM, SIGKILL after timeout.
func (d *Docker) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	s := int(timeout.Round(time.Second) / time.Second)
	_, err := d.c.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &s})
	return wrap(err)
}

// RemoveContainer removes a container and its anonymous volumes.
func (d *Docker) RemoveContainer(ctx context.Context, id string) error {
	_, err := d.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	return wrap(err)
}

// InspectContainer returns a container's state.
func (d *Docker) InspectContainer(ctx context.Context, id string) (Container, error) {
	r, err := d.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return Container{}, wrap(err)
	}
	i := r.Container
	c := Container{ID: i.ID, Name: strings.TrimPrefix(i.Name, "/"), ImageID: i.Image, State: StateUnknown}
	if i.Config != nil {
		c.Labels, c.Image = i.Config.Labels, i.Config.Image
	}
	if s := i.State; s != nil {
		switch s.Status {
		case container.StateCreated:
			c.State = StateCreated
		case container.StateRunning:
			c.State = StateRunning
		case container.StateExited, container.StateDead:
			c.State = StateExited
		}
		c.ExitCode, c.OOMKilled, c.Error = s.ExitCode, s.OOMKilled, s.Error
		c.StartedAt = parseTime(s.StartedAt)
		c.FinishedAt = parseTime(s.FinishedAt)
		if s.Health != nil {
			switch s.Health.Status {
			case container.Starting:
				c.Health = HealthStarting
			case container.Healthy:
				c.Health = HealthHealthy
			case container.Unhealthy:
				c.Health = HealthUnhealthy
			}
		}
	}
	if i.HostConfig != nil {
		c.MemoryBytes, c.MemoryReservationBytes, c.CPUShares = i.HostConfig.Memory, i.HostConfig.MemoryReservation, i.HostConfig.CPUShares
	}
	if i.NetworkSettings != nil {
		for port, bindings := range i.NetworkSettings.Ports {
			for _, b := range bindings {
				hp, err := strconv.ParseUint(b.HostPort, 10, 16)
				if err != nil {
					continue
				}
				ip := ""
				if b.HostIP.IsValid() {
					ip = b.HostIP.String()
				}
				c.Ports = append(c.Ports, PortBinding{HostIP: ip, ContainerPort: port.Num(), HostPort: uint16(hp), Protocol: string(port.Proto())})
			}
		}
	}
	return c, nil
}

// parseTime reads Docker's timestamps; the zero time stands for "never" (0001-01-01...).
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 2000 {
		return time.Time{}
	}
	return t
}

func labelFilters(labels map[string]string) client.Filters {
	f := client.Filters{}
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	return f
}

// ListContainers returns the containers that carry all the labels, with id, name, labels and state.
func (d *Docker) ListContainers(ctx context.Context, labels map[string]string) ([]Container, error) {
	r, err := d.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilters(labels)})
	if err != nil {
		return nil, err
	}
	out := make([]Container, 0, len(r.Items))
	for _, s := range r.Items {
		c := Container{ID: s.ID, Labels: s.Labels, Image: s.Image, ImageID: s.ImageID, State: StateUnknown}
		if len(s.Names) > 0 {
			c.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		switch s.State {
		case container.StateCreated:
			c.State = StateCreated
		case container.StateRunning:
			c.State = StateRunning
		case container.StateExited, container.StateDead:
			c.State = StateExited
		}
		out = append(out, c)
	}
	return out, nil
}

// ContainerLogs streams a container's output.
func (d *Docker) ContainerLogs(ctx context.Context, id string, opts LogOptions) (io.ReadCloser, error) {
	o := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: opts.Follow, Timestamps: opts.Timestamps}
	if opts.Tail > 0 {
		o.Tail = strconv.Itoa(opts.Tail)
	}
	r, err := d.c.ContainerLogs(ctx, id, o)
	if err != nil {
		return nil, wrap(err)
	}
	return r, nil
}

// Events streams container events of the containers that carry the labels.
func (d *Docker) Events(ctx context.Context, labels map[string]string) (<-chan Event, <-chan error) {
	f := labelFilters(labels)
	f.Add("type", "container")
	r := d.c.Events(ctx, client.EventsListOptions{Filters: f})
	out := make(chan Event)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			case err := <-r.Err:
				if err == nil {
					err = io.EOF
				}
				errc <- err
				return
			case m := <-r.Messages:
				// health_status events carry the result after a colon: "health_status: healthy".
				action, _, _ := strings.Cut(string(m.Action), ":")
				select {
				case out <- Event{Action: action, ID: m.Actor.ID, Labels: m.Actor.Attributes}:
				case <-ctx.Done():
				}
			}
		}
	}()
	return out, errc
}
