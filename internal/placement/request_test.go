package placement

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

func TestRequestFor(t *testing.T) {
	ports := []ecsv1alpha1.PortMapping{
		{ContainerPort: 80, HostPort: 8080, Protocol: ecsv1alpha1.ProtocolTCP},
		{ContainerPort: 53, HostPort: 53, Protocol: ecsv1alpha1.ProtocolUDP},
		{ContainerPort: 9090}, // dynamic host port in bridge mode; protocol defaults to tcp
	}
	web := ecsv1alpha1.ContainerDefinition{Name: "web", CPU: 256, Memory: ptr.To[int32](512), PortMappings: ports}
	sidecar := ecsv1alpha1.ContainerDefinition{Name: "log", CPU: 128, Memory: ptr.To[int32](1024), MemoryReservation: ptr.To[int32](64)}

	tests := []struct {
		name string
		spec ecsv1alpha1.TaskSpec
		want Request
	}{{
		name: "bridge: non-zero host ports; memoryReservation wins over memory",
		spec: ecsv1alpha1.TaskSpec{NetworkMode: ecsv1alpha1.NetworkModeBridge, Containers: []ecsv1alpha1.ContainerDefinition{web, sidecar}, Group: "service:web"},
		want: Request{CPU: 384, Memory: 576, Group: "service:web", HostPorts: []PortKey{{8080, "tcp"}, {53, "udp"}}},
	}, {
		name: "no networkMode is bridge",
		spec: ecsv1alpha1.TaskSpec{Containers: []ecsv1alpha1.ContainerDefinition{web}, Group: "service:web"},
		want: Request{CPU: 256, Memory: 512, Group: "service:web", HostPorts: []PortKey{{8080, "tcp"}, {53, "udp"}}},
	}, {
		name: "host: every container port",
		spec: ecsv1alpha1.TaskSpec{NetworkMode: ecsv1alpha1.NetworkModeHost, Containers: []ecsv1alpha1.ContainerDefinition{web}, Group: "service:web"},
		want: Request{CPU: 256, Memory: 512, Group: "service:web", HostPorts: []PortKey{{80, "tcp"}, {53, "udp"}, {9090, "tcp"}}},
	}, {
		name: "none: no ports",
		spec: ecsv1alpha1.TaskSpec{NetworkMode: ecsv1alpha1.NetworkModeNone, Containers: []ecsv1alpha1.ContainerDefinition{web}, Group: "service:web"},
		want: Request{CPU: 256, Memory: 512, Group: "service:web"},
	}, {
		name: "task-level cpu and memory win over the containers' sum",
		spec: ecsv1alpha1.TaskSpec{
			NetworkMode: ecsv1alpha1.NetworkModeNone, Containers: []ecsv1alpha1.ContainerDefinition{web, sidecar},
			CPU: ptr.To[int32](1024), Memory: ptr.To[int32](2048), Group: "service:web",
		},
		want: Request{CPU: 1024, Memory: 2048, Group: "service:web"},
	}, {
		name: "task-level memory with containers that set none",
		spec: ecsv1alpha1.TaskSpec{
			NetworkMode: ecsv1alpha1.NetworkModeNone, Memory: ptr.To[int32](300), Group: "service:web",
			Containers: []ecsv1alpha1.ContainerDefinition{{Name: "a", CPU: 10}, {Name: "b", CPU: 20}},
		},
		want: Request{CPU: 30, Memory: 300, Group: "service:web"},
	}, {
		name: "a standalone task without a group is in family:<family>",
		spec: ecsv1alpha1.TaskSpec{NetworkMode: ecsv1alpha1.NetworkModeNone, TaskDefinition: "batch:3", Containers: []ecsv1alpha1.ContainerDefinition{sidecar}},
		want: Request{CPU: 128, Memory: 64, Group: "family:batch"},
	}, {
		name: "constraints are compiled and strategies copied",
		spec: ecsv1alpha1.TaskSpec{
			NetworkMode: ecsv1alpha1.NetworkModeNone, Containers: []ecsv1alpha1.ContainerDefinition{sidecar}, Group: "service:web",
			PlacementConstraints: []ecsv1alpha1.PlacementConstraint{{Type: ecsv1alpha1.PlacementConstraintDistinctInstance}},
			PlacementStrategy:    []ecsv1alpha1.PlacementStrategy{spread("attribute:store"), binpack("memory")},
		},
		want: Request{
			CPU: 128, Memory: 64, Group: "service:web",
			Constraints: []Constraint{distinct},
			Strategies:  []ecsv1alpha1.PlacementStrategy{spread("attribute:store"), binpack("memory")},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RequestFor(&ecsv1alpha1.Task{Spec: tt.spec})
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRequestForMemberOf(t *testing.T) {
	task := &ecsv1alpha1.Task{Spec: ecsv1alpha1.TaskSpec{
		Containers: []ecsv1alpha1.ContainerDefinition{{Name: "a", Memory: ptr.To[int32](64)}},
		PlacementConstraints: []ecsv1alpha1.PlacementConstraint{
			{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:store == b"},
		},
	}}
	req, err := RequestFor(task)
	require.NoError(t, err)
	require.Len(t, req.Constraints, 1)
	require.NotNil(t, req.Constraints[0].Expr)
	b, a := inst("x", 1, 1, "store", "b"), inst("x", 1, 1, "store", "a")
	assert.True(t, req.Constraints[0].Expr.Matches(&b.Instance))
	assert.False(t, req.Constraints[0].Expr.Matches(&a.Instance))
}

func TestRequestForErrors(t *testing.T) {
	c := []ecsv1alpha1.ContainerDefinition{{Name: "a", Memory: ptr.To[int32](64)}}
	tests := []struct {
		name string
		spec ecsv1alpha1.TaskSpec
		want string
	}{{
		name: "not resolved",
		spec: ecsv1alpha1.TaskSpec{TaskDefinition: "web"},
		want: "spec.containers is empty",
	}, {
		name: "bad expression names the constraint",
		spec: ecsv1alpha1.TaskSpec{Containers: c, PlacementConstraints: []ecsv1alpha1.PlacementConstraint{
			{Type: ecsv1alpha1.PlacementConstraintDistinctInstance},
			{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:store =="},
		}},
		want: "spec.placementConstraints[1].expression: ",
	}, {
		name: "bad strategy names the strategy",
		spec: ecsv1alpha1.TaskSpec{Containers: c, PlacementStrategy: []ecsv1alpha1.PlacementStrategy{random, binpack("disk")}},
		want: `spec.placementStrategy[1]: binpack field "disk" is not supported; use cpu or memory`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := RequestFor(&ecsv1alpha1.Task{Spec: tt.spec})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestCompileConstraints(t *testing.T) {
	cs, err := CompileConstraints(nil)
	require.NoError(t, err)
	assert.Empty(t, cs)

	cs, err = CompileConstraints([]ecsv1alpha1.PlacementConstraint{
		{Type: ecsv1alpha1.PlacementConstraintDistinctInstance},
		{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:ecs.os-type == linux and attribute:store exists"},
	})
	require.NoError(t, err)
	require.Len(t, cs, 2)
	assert.Equal(t, distinct, cs[0])
	assert.Equal(t, ecsv1alpha1.PlacementConstraintMemberOf, cs[1].Type)
	both, linux := inst("a", 1, 1, "ecs.os-type", "linux", "store", "1"), inst("a", 1, 1, "ecs.os-type", "linux")
	assert.True(t, cs[1].Expr.Matches(&both.Instance))
	assert.False(t, cs[1].Expr.Matches(&linux.Instance))

	for _, tt := range []struct {
		cs   []ecsv1alpha1.PlacementConstraint
		want string
	}{
		{
			cs: []ecsv1alpha1.PlacementConstraint{
				{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:a exists"},
				{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:store == (b"},
			},
			want: "placementConstraints[1].expression: at column ",
		},
		{
			cs:   []ecsv1alpha1.PlacementConstraint{{Type: ecsv1alpha1.PlacementConstraintMemberOf}},
			want: "placementConstraints[0].expression: required when type is memberOf",
		},
		{
			cs:   []ecsv1alpha1.PlacementConstraint{{Type: ecsv1alpha1.PlacementConstraintDistinctInstance, Expression: "x exists"}},
			want: "placementConstraints[0].expression: must not be set when type is distinctInstance",
		},
		{
			cs:   []ecsv1alpha1.PlacementConstraint{{Type: "sameHost"}},
			want: `placementConstraints[0].type: "sameHost" is not supported`,
		},
	} {
		_, err := CompileConstraints(tt.cs)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tt.want)
	}
}
