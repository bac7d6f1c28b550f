package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/distribution/reference"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	rt "github.com/drover-dev/drover/internal/agent/runtime"
)

const mib = 1 << 20

// taskVolumeName is the runtime volume of a task volume without a host path: one per task and
// volume, shared by the task's containers, removed with the task.
func taskVolumeName(t *ecsv1alpha1.Task, volume string) string {
	return fmt.Sprintf("drover-%s-%s", t.UID, volume)
}

// containerSpec turns a container definition into what the runtime creates.
func (e *Engine) containerSpec(t *ecsv1alpha1.Task, c *ecsv1alpha1.ContainerDefinition) (rt.ContainerSpec, error) {
	if _, err := reference.ParseNormalizedNamed(c.Image); err != nil {
		return rt.ContainerSpec{}, fmt.Errorf("image %q is not a valid image reference: %w", c.Image, err)
	}
	labels := map[string]string{}
	for k, v := range c.DockerLabels {
		labels[k] = v
	}
	for k, v := range e.ownLabels() {
		labels[k] = v
	}
	labels[LabelTaskUID] = string(t.UID)
	labels[LabelTask] = t.Namespace + "/" + t.Name
	labels[LabelContainerName] = c.Name
	if t.Spec.Cluster != "" {
		labels[ecsv1alpha1.LabelCluster] = t.Spec.Cluster
	}
	spec := rt.ContainerSpec{
		Name:        containerName(t, c.Name),
		Image:       c.Image,
		Labels:      labels,
		Entrypoint:  c.EntryPoint,
		Cmd:         c.Command,
		WorkingDir:  c.WorkingDirectory,
		User:        c.User,
		NetworkMode: string(t.Spec.NetworkMode),
		StopTimeout: e.cfg.DefaultStopTimeout,
	}
	if spec.NetworkMode == "" {
		spec.NetworkMode = string(ecsv1alpha1.NetworkModeBridge)
	}
	for _, kv := range c.Environment {
		spec.Env = append(spec.Env, kv.Name+"="+kv.Value)
	}
	// As ECS on Linux: cpu is the container's CPU shares, at least 2 (the kernel's minimum).
	spec.CPUShares = max(int64(c.CPU), 2)
	if c.Memory != nil {
		spec.MemoryBytes = int64(*c.Memory) * mib
	}
	if c.MemoryReservation != nil {
		spec.MemoryReservationBytes = int64(*c.MemoryReservation) * mib
	}
	if c.StopTimeout != nil {
		spec.StopTimeout = time.Duration(*c.StopTimeout) * time.Second
	}
	if c.Privileged != nil {
		spec.Privileged = *c.Privileged
	}
	if c.ReadonlyRootFilesystem != nil {
		spec.ReadonlyRootfs = *c.ReadonlyRootFilesystem
	}
	for _, p := range c.PortMappings {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(ecsv1alpha1.ProtocolTCP)
		}
		spec.Ports = append(spec.Ports, rt.PortSpec{ContainerPort: uint16(p.ContainerPort), HostPort: uint16(p.HostPort), Protocol: proto})
	}
	volumes := map[string]*ecsv1alpha1.Volume{}
	for i := range t.Spec.Volumes {
		volumes[t.Spec.Volumes[i].Name] = &t.Spec.Volumes[i]
	}
	for _, m := range c.MountPoints {
		v := volumes[m.SourceVolume]
		if v == nil {
			return rt.ContainerSpec{}, fmt.Errorf("mountPoint %s refers to volume %q, which the task does not have", m.ContainerPath, m.SourceVolume)
		}
		b := rt.Bind{ContainerPath: m.ContainerPath, ReadOnly: m.ReadOnly != nil && *m.ReadOnly}
		if v.Host != nil {
			b.HostPath = v.Host.SourcePath
		} else {
			b.HostPath = taskVolumeName(t, v.Name)
		}
		spec.Binds = append(spec.Binds, b)
	}
	if h := c.HealthCheck; h != nil {
		spec.HealthCheck = &rt.HealthCheck{
			Test:        h.Command,
			Interval:    secondsOr(h.Interval, 30),
			Timeout:     secondsOr(h.Timeout, 5),
			StartPeriod: time.Duration(h.StartPeriod) * time.Second,
			Retries:     int(max(h.Retries, 1)),
		}
		if h.Retries == 0 {
			spec.HealthCheck.Retries = 3
		}
	}
	return spec, nil
}

func secondsOr(v, def int32) time.Duration {
	if v <= 0 {
		v = def
	}
	return time.Duration(v) * time.Second
}

// createContainer creates c, or finds the container a create before a crash already made.
func (e *Engine) createContainer(ctx context.Context, rec *taskRecord, c *ecsv1alpha1.ContainerDefinition) (string, error) {
	spec, err := e.containerSpec(&rec.Task, c)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*e.cfg.RequestTimeout)
	defer cancel()
	id, err := e.cfg.Runtime.CreateContainer(ctx, spec)
	if errors.Is(err, rt.ErrExists) {
		o, ierr := e.cfg.Runtime.InspectContainer(ctx, spec.Name)
		if ierr == nil && o.Labels[LabelTaskUID] == string(rec.Task.UID) {
			return o.ID, nil
		}
	}
	return id, err
}

// fillStatus writes the containers' observed states into the task's status.
func (e *Engine) fillStatus(rec *taskRecord, obs map[string]rt.Container) {
	st := &rec.Task.Status
	st.ObservedGeneration = rec.Task.Generation
	prev := map[string]ecsv1alpha1.ContainerStatus{}
	for _, cs := range st.Containers {
		prev[cs.Name] = cs
	}
	var out []ecsv1alpha1.ContainerStatus
	taskHealth := ecsv1alpha1.HealthStatusUnknown
	checked, healthy, unhealthy := 0, 0, 0
	for i := range rec.Task.Spec.Containers {
		c := &rec.Task.Spec.Containers[i]
		cr := rec.Containers[c.Name]
		cs := prev[c.Name]
		cs.Name, cs.Image = c.Name, c.Image
		cs.HealthStatus = ecsv1alpha1.HealthStatusUnknown
		if cr != nil {
			cs.RuntimeID, cs.ImageDigest, cs.RestartCount = cr.ID, cr.ImageDigest, cr.RestartCount
		}
		o, ok := obs[c.Name]
		switch {
		case cr != nil && cr.Final:
			cs.LastStatus = ecsv1alpha1.ContainerStateStopped
			cs.ExitCode, cs.Reason = cr.ExitCode, cr.Reason
			cs.NetworkBindings = nil
		case ok && o.State == rt.StateRunning:
			cs.LastStatus = ecsv1alpha1.ContainerStateRunning
			cs.ExitCode, cs.Reason = nil, ""
			cs.NetworkBindings = networkBindings(rec.Task.Spec.NetworkMode, c, o)
		case ok && o.State == rt.StateExited:
			// Exited, about to be restarted or looked at again.
			cs.LastStatus = ecsv1alpha1.ContainerStateRunning
		default:
			cs.LastStatus = ecsv1alpha1.ContainerStatePending
		}
		if ok && o.State == rt.StateRunning {
			switch o.Health {
			case rt.HealthHealthy:
				cs.HealthStatus = ecsv1alpha1.HealthStatusHealthy
			case rt.HealthUnhealthy:
				cs.HealthStatus = ecsv1alpha1.HealthStatusUnhealthy
			}
		}
		if essential(c) && c.HealthCheck != nil {
			checked++
			switch cs.HealthStatus {
			case ecsv1alpha1.HealthStatusHealthy:
				healthy++
			case ecsv1alpha1.HealthStatusUnhealthy:
				unhealthy++
			}
		}
		out = append(out, cs)
	}
	switch {
	case unhealthy > 0:
		taskHealth = ecsv1alpha1.HealthStatusUnhealthy
	case checked > 0 && healthy == checked:
		taskHealth = ecsv1alpha1.HealthStatusHealthy
	}
	st.Containers, st.HealthStatus = out, taskHealth
}

// networkBindings are the container's published ports: what Docker chose in bridge mode, the
// container ports themselves in host mode.
func networkBindings(mode ecsv1alpha1.NetworkMode, c *ecsv1alpha1.ContainerDefinition, o rt.Container) []ecsv1alpha1.NetworkBinding {
	var out []ecsv1alpha1.NetworkBinding
	if mode == ecsv1alpha1.NetworkModeHost {
		for _, p := range c.PortMappings {
			out = append(out, ecsv1alpha1.NetworkBinding{BindIP: "0.0.0.0", ContainerPort: p.ContainerPort, HostPort: p.ContainerPort, Protocol: protocolOr(p.Protocol)})
		}
		return out
	}
	seen := map[string]bool{}
	for _, p := range o.Ports {
		// Docker publishes on IPv4 and IPv6 alike; one binding per port is enough.
		key := fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
		if seen[key] || p.HostPort == 0 {
			continue
		}
		seen[key] = true
		ip := p.HostIP
		if ip == "" || ip == "::" {
			ip = "0.0.0.0"
		}
		out = append(out, ecsv1alpha1.NetworkBinding{BindIP: ip, ContainerPort: int32(p.ContainerPort), HostPort: int32(p.HostPort),
			Protocol: ecsv1alpha1.TransportProtocol(p.Protocol)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ContainerPort != out[j].ContainerPort {
			return out[i].ContainerPort < out[j].ContainerPort
		}
		return out[i].Protocol < out[j].Protocol
	})
	return out
}

func protocolOr(p ecsv1alpha1.TransportProtocol) ecsv1alpha1.TransportProtocol {
	if p == "" {
		return ecsv1alpha1.ProtocolTCP
	}
	return p
}
