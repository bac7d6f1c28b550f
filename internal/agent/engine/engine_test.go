package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	rt "github.com/drover-dev/drover/internal/agent/runtime"
)

func testEngine() *Engine {
	cfg := Config{Namespace: "default", ContainerInstance: "host-1"}
	cfg.complete()
	return &Engine{cfg: cfg}
}

func TestContainerSpecCarriesTheDefinition(t *testing.T) {
	task := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1", UID: "0123456789abcdef"},
		Spec: ecsv1alpha1.TaskSpec{Cluster: "edge", Volumes: []ecsv1alpha1.Volume{
			{Name: "data", Host: &ecsv1alpha1.HostVolumeProperties{SourcePath: "/srv/data"}}, {Name: "scratch"}}}}
	c := &ecsv1alpha1.ContainerDefinition{
		Name: "app", Image: "web:1", CPU: 512, Memory: ptr.To[int32](128), MemoryReservation: ptr.To[int32](64),
		PortMappings: []ecsv1alpha1.PortMapping{{ContainerPort: 80}, {ContainerPort: 53, HostPort: 5353, Protocol: ecsv1alpha1.ProtocolUDP}},
		Environment:  []ecsv1alpha1.KeyValuePair{{Name: "A", Value: "1"}},
		MountPoints: []ecsv1alpha1.MountPoint{{SourceVolume: "data", ContainerPath: "/data", ReadOnly: ptr.To(true)},
			{SourceVolume: "scratch", ContainerPath: "/tmp/s"}},
		HealthCheck:  &ecsv1alpha1.HealthCheck{Command: []string{"CMD", "/probe"}},
		StopTimeout:  ptr.To[int32](7),
		DockerLabels: map[string]string{"team": "a", LabelTaskUID: "forged"},
	}
	spec, err := testEngine().containerSpec(task, c)
	require.NoError(t, err)
	assert.Equal(t, "drover-web-1-app-01234567", spec.Name)
	assert.EqualValues(t, 512, spec.CPUShares)
	assert.EqualValues(t, 128<<20, spec.MemoryBytes)
	assert.EqualValues(t, 64<<20, spec.MemoryReservationBytes)
	assert.Equal(t, "bridge", spec.NetworkMode, "bridge by default")
	assert.Equal(t, []rt.PortSpec{{ContainerPort: 80, Protocol: "tcp"}, {ContainerPort: 53, HostPort: 5353, Protocol: "udp"}}, spec.Ports)
	assert.Equal(t, []string{"A=1"}, spec.Env)
	assert.Equal(t, []rt.Bind{{HostPath: "/srv/data", ContainerPath: "/data", ReadOnly: true},
		{HostPath: "drover-0123456789abcdef-scratch", ContainerPath: "/tmp/s"}}, spec.Binds)
	require.NotNil(t, spec.HealthCheck)
	assert.Equal(t, rt.HealthCheck{Test: []string{"CMD", "/probe"}, Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 3}, *spec.HealthCheck,
		"ECS's health check defaults")
	assert.Equal(t, 7*time.Second, spec.StopTimeout)
	assert.Equal(t, "0123456789abcdef", spec.Labels[LabelTaskUID], "user labels cannot forge the agent's")
	assert.Equal(t, "a", spec.Labels["team"])
	assert.Equal(t, "default/host-1", spec.Labels[LabelContainerInstance])

	c.CPU = 0
	spec, err = testEngine().containerSpec(task, c)
	require.NoError(t, err)
	assert.EqualValues(t, 2, spec.CPUShares, "no cpu means the minimum shares, as ECS")

	c.Image = "Not An Image"
	_, err = testEngine().containerSpec(task, c)
	require.ErrorContains(t, err, `image "Not An Image" is not a valid image reference`)
}

func TestRestartPolicy(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	policy := &ecsv1alpha1.RestartPolicy{Enabled: true, IgnoredExitCodes: []int32{0}, RestartAttemptPeriod: 60}
	c := &ecsv1alpha1.ContainerDefinition{RestartPolicy: policy}
	exited := func(code int, ran time.Duration) rt.Container {
		return rt.Container{State: rt.StateExited, ExitCode: code, StartedAt: start, FinishedAt: start.Add(ran)}
	}
	now := start.Add(time.Hour)
	assert.True(t, restartable(c, &containerRecord{}, exited(1, 61*time.Second), now), "ran past the attempt period")
	assert.False(t, restartable(c, &containerRecord{}, exited(1, 59*time.Second), now), "exited within the attempt period: not restarted, as ECS")
	assert.False(t, restartable(c, &containerRecord{}, exited(0, time.Hour), now), "an ignored exit code")
	assert.False(t, restartable(&ecsv1alpha1.ContainerDefinition{}, &containerRecord{}, exited(1, time.Hour), now), "no policy")
	// After a restart the period counts from the restart.
	cr := &containerRecord{LastRestartAt: start.Add(50 * time.Minute)}
	assert.False(t, restartable(c, cr, exited(1, 50*time.Minute+30*time.Second), now))
	assert.True(t, restartable(c, cr, exited(1, 52*time.Minute), now))
	// Default period: 300 s.
	policy.RestartAttemptPeriod = 0
	assert.False(t, restartable(c, &containerRecord{}, exited(1, 299*time.Second), now))
	assert.True(t, restartable(c, &containerRecord{}, exited(1, 300*time.Second), now))
}

func TestDependsOn(t *testing.T) {
	rec := &taskRecord{Containers: map[string]*containerRecord{}}
	dep := func(cond ecsv1alpha1.ContainerCondition) *ecsv1alpha1.ContainerDefinition {
		return &ecsv1alpha1.ContainerDefinition{Name: "app", DependsOn: []ecsv1alpha1.ContainerDependency{{ContainerName: "init", Condition: cond}}}
	}
	obs := map[string]rt.Container{}
	for _, cond := range []ecsv1alpha1.ContainerCondition{"START", "COMPLETE", "SUCCESS", "HEALTHY"} {
		ok, fail := dependenciesMet(dep(cond), rec, obs)
		assert.False(t, ok, cond)
		assert.Empty(t, fail, cond)
	}
	obs["init"] = rt.Container{State: rt.StateRunning, Health: rt.HealthStarting}
	ok, _ := dependenciesMet(dep("START"), rec, obs)
	assert.True(t, ok)
	ok, _ = dependenciesMet(dep("HEALTHY"), rec, obs)
	assert.False(t, ok)
	obs["init"] = rt.Container{State: rt.StateRunning, Health: rt.HealthHealthy}
	ok, _ = dependenciesMet(dep("HEALTHY"), rec, obs)
	assert.True(t, ok)

	rec.Containers["init"] = &containerRecord{Final: true, ExitCode: ptr.To[int32](1)}
	ok, _ = dependenciesMet(dep("COMPLETE"), rec, obs)
	assert.True(t, ok)
	ok, fail := dependenciesMet(dep("SUCCESS"), rec, obs)
	assert.False(t, ok)
	assert.Contains(t, fail, "depends on init exiting with code 0 (SUCCESS); it exited with 1")
	_, fail = dependenciesMet(dep("HEALTHY"), rec, obs)
	assert.Contains(t, fail, "depends on init being HEALTHY; it exited")
	rec.Containers["init"].ExitCode = ptr.To[int32](0)
	ok, _ = dependenciesMet(dep("SUCCESS"), rec, obs)
	assert.True(t, ok)
}

func TestNetworkBindings(t *testing.T) {
	c := &ecsv1alpha1.ContainerDefinition{PortMappings: []ecsv1alpha1.PortMapping{{ContainerPort: 80}}}
	o := rt.Container{Ports: []rt.PortBinding{
		{HostIP: "::", ContainerPort: 80, HostPort: 32768, Protocol: "tcp"},
		{HostIP: "0.0.0.0", ContainerPort: 80, HostPort: 32768, Protocol: "tcp"},
		{HostIP: "0.0.0.0", ContainerPort: 53, HostPort: 5353, Protocol: "udp"},
	}}
	assert.Equal(t, []ecsv1alpha1.NetworkBinding{
		{BindIP: "0.0.0.0", ContainerPort: 53, HostPort: 5353, Protocol: "udp"},
		{BindIP: "0.0.0.0", ContainerPort: 80, HostPort: 32768, Protocol: "tcp"},
	}, networkBindings(ecsv1alpha1.NetworkModeBridge, c, o), "one binding per port, IPv4 and IPv6 alike")
	assert.Equal(t, []ecsv1alpha1.NetworkBinding{{BindIP: "0.0.0.0", ContainerPort: 80, HostPort: 80, Protocol: "tcp"}},
		networkBindings(ecsv1alpha1.NetworkModeHost, c, rt.Container{}), "host mode publishes the container port itself")
}

func TestRegistryAuthsFromDockerConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"auths":{
		"127.0.0.1:5000":{"auth":"dXNlcjpwYXNz"},
		"https://index.docker.io/v1/":{"username":"hub","password":"pw"}}}`), 0o600))
	a, err := loadRegistryAuths(path)
	require.NoError(t, err)
	assert.Equal(t, &rt.RegistryAuth{Username: "user", Password: "pass", ServerAddress: "127.0.0.1:5000"}, a.forImage("127.0.0.1:5000/web:1"))
	got := a.forImage("library/nginx")
	require.NotNil(t, got, "Docker Hub's key covers docker.io images")
	assert.Equal(t, "hub", got.Username)
	assert.Nil(t, a.forImage("quay.io/x/y"))

	_, err = loadRegistryAuths(filepath.Join(dir, "missing.json"))
	require.ErrorContains(t, err, "--docker-config")
	require.NoError(t, os.WriteFile(path, []byte(`{"auths":{"r":{"auth":"not base64!"}}}`), 0o600))
	_, err = loadRegistryAuths(path)
	require.ErrorContains(t, err, `auths["r"].auth is not base64`)
}

func TestStatusPatchLeavesConditionsAlone(t *testing.T) {
	now := metav1.Now()
	st := &ecsv1alpha1.TaskStatus{LastStatus: ecsv1alpha1.TaskStateRunning, StartedAt: &now,
		Conditions: []metav1.Condition{{Type: "Placed"}}}
	b, err := statusPatch(st)
	require.NoError(t, err)
	var m map[string]map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, "RUNNING", m["status"]["lastStatus"])
	assert.Contains(t, m["status"], "startedAt")
	assert.NotContains(t, m["status"], "conditions", "conditions belong to the controllers")
	assert.NotContains(t, m["status"], "stoppedAt", "unset times are left out, not nulled")
}

func TestStoreSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.db")
	s, err := openStore(path)
	require.NoError(t, err)
	rec := &taskRecord{Task: ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Name: "t", UID: "u1"}},
		Containers: map[string]*containerRecord{"app": {ID: "abc", RestartCount: 2}}}
	require.NoError(t, s.putTask(rec))
	_, err = openStore(path)
	require.ErrorContains(t, err, "another drover-agent holds it", "one agent per state directory")
	require.NoError(t, s.close())

	s, err = openStore(path)
	require.NoError(t, err)
	defer s.close()
	got, err := s.getTask("u1")
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, "abc", got.Containers["app"].ID)
	assert.EqualValues(t, 2, got.Containers["app"].RestartCount)
}

func TestContainersStoppedByARebootRunAgain(t *testing.T) {
	boot := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	assert.True(t, stoppedByReboot(rt.Container{State: rt.StateExited, FinishedAt: boot.Add(-time.Second)}, boot))
	assert.False(t, stoppedByReboot(rt.Container{State: rt.StateExited, FinishedAt: boot.Add(time.Second)}, boot), "exited since the boot: a crash")
	assert.False(t, stoppedByReboot(rt.Container{State: rt.StateExited}, boot), "never ran")
	assert.False(t, stoppedByReboot(rt.Container{State: rt.StateExited, FinishedAt: boot}, time.Time{}), "boot time unknown")
	up := hostBootTime()
	require.False(t, up.IsZero(), "/proc/uptime gives the boot time")
	assert.True(t, up.Before(time.Now()))
}
