package placement

import (
	"errors"
	"fmt"
	"strings"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/placement/query"
)

// CompileConstraints parses the memberOf expressions of cs. Errors name the constraint, as the API server
// reports field errors: placementConstraints[1].expression: at column 22: expected a value after "==".
func CompileConstraints(cs []ecsv1alpha1.PlacementConstraint) ([]Constraint, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	out := make([]Constraint, 0, len(cs))
	for i, c := range cs {
		switch c.Type {
		case ecsv1alpha1.PlacementConstraintDistinctInstance:
			if c.Expression != "" {
				return nil, fmt.Errorf("placementConstraints[%d].expression: must not be set when type is distinctInstance", i)
			}
			out = append(out, Constraint{Type: c.Type})
		case ecsv1alpha1.PlacementConstraintMemberOf:
			if c.Expression == "" {
				return nil, fmt.Errorf("placementConstraints[%d].expression: required when type is memberOf", i)
			}
			e, err := query.Parse(c.Expression)
			if err != nil {
				return nil, fmt.Errorf("placementConstraints[%d].expression: %w", i, err)
			}
			out = append(out, Constraint{Type: c.Type, Expr: e})
		default:
			return nil, fmt.Errorf("placementConstraints[%d].type: %q is not supported; use distinctInstance or memberOf", i, c.Type)
		}
	}
	return out, nil
}

// RequestFor returns what task needs from an instance, from its resolved spec:
//
//   - cpu and memory: the task-level values when set, else the sum over the containers, where a container
//     reserves memoryReservation when set and memory otherwise;
//   - host ports: in bridge mode (the default) every non-zero hostPort, in host mode every containerPort, in
//     none mode nothing;
//   - constraints and strategies: the task's own;
//   - group: spec.group, or family:<family> as ECS defaults it for a task run on its own.
//
// A task whose containers are not resolved yet, or whose constraints or strategies are invalid, is an error.
func RequestFor(task *ecsv1alpha1.Task) (Request, error) {
	spec := &task.Spec
	if len(spec.Containers) == 0 {
		return Request{}, errors.New("spec.containers is empty: the task is not resolved from its task definition yet")
	}
	var req Request
	seen := make(map[PortKey]bool)
	for _, c := range spec.Containers {
		req.CPU += int64(c.CPU)
		switch {
		case c.MemoryReservation != nil:
			req.Memory += int64(*c.MemoryReservation)
		case c.Memory != nil:
			req.Memory += int64(*c.Memory)
		}
		for _, pm := range c.PortMappings {
			var port int32
			switch spec.NetworkMode {
			case ecsv1alpha1.NetworkModeHost:
				port = pm.ContainerPort
			case ecsv1alpha1.NetworkModeBridge, "":
				port = pm.HostPort
			}
			if port == 0 {
				continue
			}
			k := PortKey{Port: port, Protocol: string(pm.Protocol)}
			if k.Protocol == "" {
				k.Protocol = string(ecsv1alpha1.ProtocolTCP)
			}
			if !seen[k] {
				seen[k] = true
				req.HostPorts = append(req.HostPorts, k)
			}
		}
	}
	if spec.CPU != nil {
		req.CPU = int64(*spec.CPU)
	}
	if spec.Memory != nil {
		req.Memory = int64(*spec.Memory)
	}

	cs, err := CompileConstraints(spec.PlacementConstraints)
	if err != nil {
		return Request{}, fmt.Errorf("spec.%w", err)
	}
	req.Constraints = cs
	for i, s := range spec.PlacementStrategy {
		if _, err := strategyKey(s); err != nil {
			return Request{}, fmt.Errorf("spec.placementStrategy[%d]: %w", i, err)
		}
	}
	req.Strategies = spec.PlacementStrategy
	req.Group = spec.Group
	if req.Group == "" {
		family, _, _ := strings.Cut(spec.TaskDefinition, ":")
		req.Group = "family:" + family
	}
	return req, nil
}
