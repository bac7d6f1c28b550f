package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/drover-dev/drover/internal/apiserver"
	"github.com/drover-dev/drover/test/framework"
)

const validationNS = "default"

func ecsResource(plural string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "ecs.drover.dev", Version: "v1alpha1", Resource: plural}
}

var (
	servicesGVR        = ecsResource("services")
	taskDefinitionsGVR = ecsResource("taskdefinitions")
	revisionsGVR       = ecsResource("taskdefinitionrevisions")
	tasksGVR           = ecsResource("tasks")
)

// warningRecorder keeps the Warning headers the server sends.
type warningRecorder struct {
	mu       sync.Mutex
	warnings []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warnings = append(w.warnings, text)
}

func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.warnings
	w.warnings = nil
	return out
}

// validationClients talks to one droverd as kubectl and client-go programs do.
type validationClients struct {
	dyn      dynamic.Interface
	rest     rest.Interface
	warnings *warningRecorder
}

// object parses a JSON manifest.
func object(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	require.NoError(t, u.UnmarshalJSON([]byte(manifest)))
	return u
}

// jsonValue parses a JSON fragment.
func jsonValue(t *testing.T, fragment string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(fragment), &v))
	return v
}

// post sends body as it is to the collection of plural, the way a client that does not check its input does.
func (c *validationClients) post(ctx context.Context, plural, contentType, body string, params map[string]string) error {
	req := c.rest.Post().AbsPath("/apis/ecs.drover.dev/v1alpha1/namespaces", validationNS, plural).
		SetHeader("Content-Type", contentType).Body([]byte(body))
	for k, v := range params {
		req = req.Param(k, v)
	}
	return req.Do(ctx).Error()
}

func (c *validationClients) create(ctx context.Context, gvr schema.GroupVersionResource, u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	return c.dyn.Resource(gvr).Namespace(validationNS).Create(ctx, u, metav1.CreateOptions{})
}

func (c *validationClients) get(t *testing.T, gvr schema.GroupVersionResource, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := c.dyn.Resource(gvr).Namespace(validationNS).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return u
}

// requireNotWritten fails unless the object does not exist.
func (c *validationClients) requireNotWritten(t *testing.T, gvr schema.GroupVersionResource, name string) {
	t.Helper()
	_, err := c.dyn.Resource(gvr).Namespace(validationNS).Get(t.Context(), name, metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "%s %s must not exist after a refused request, got %v", gvr.Resource, name, err)
}

// requireUnchanged fails unless the stored object is before: same resourceVersion, same spec.
func (c *validationClients) requireUnchanged(t *testing.T, gvr schema.GroupVersionResource, before *unstructured.Unstructured) {
	t.Helper()
	after := c.get(t, gvr, before.GetName())
	require.Equal(t, before.GetResourceVersion(), after.GetResourceVersion(), "a refused update must not write")
	require.Equal(t, before.Object["spec"], after.Object["spec"])
}

// requireInvalid fails unless err is an Invalid (422) error whose message contains every part.
func requireInvalid(t *testing.T, err error, parts ...string) {
	t.Helper()
	require.Error(t, err)
	require.True(t, apierrors.IsInvalid(err), "want 422 Invalid, got %T %v", err, err)
	for _, p := range parts {
		require.Contains(t, err.Error(), p)
	}
	t.Logf("server said: %v", err)
}

// update changes a fresh copy of the stored object with mutate and sends it.
func (c *validationClients) update(t *testing.T, gvr schema.GroupVersionResource, name string, mutate func(u *unstructured.Unstructured)) (*unstructured.Unstructured, error) {
	t.Helper()
	u := c.get(t, gvr, name)
	mutate(u)
	return c.dyn.Resource(gvr).Namespace(validationNS).Update(t.Context(), u, metav1.UpdateOptions{})
}

func setField(t *testing.T, u *unstructured.Unstructured, value any, path ...string) {
	t.Helper()
	require.NoError(t, unstructured.SetNestedField(u.Object, value, path...))
}

const validationTaskDefinition = `{"apiVersion": "ecs.drover.dev/v1alpha1", "kind": "TaskDefinition", "metadata": {"name": %q},
	"spec": {"networkMode": %q, "containerDefinitions": %s}}`

const validationService = `{"apiVersion": "ecs.drover.dev/v1alpha1", "kind": "Service", "metadata": {"name": %q},
	"spec": {"cluster": "stores", "taskDefinition": "web", "desiredCount": 2}}`

const validationTask = `{"apiVersion": "ecs.drover.dev/v1alpha1", "kind": "Task", "metadata": {"name": %q},
	"spec": {"cluster": "stores", "taskDefinition": "web:1"}}`

const validationContainers = `[{"name": "web", "image": "nginx:1.27", "memory": 256, "portMappings": [{"containerPort": 80, "hostPort": 8080}]}]`

func TestValidation(t *testing.T) {
	s := framework.Start(t, framework.WithoutControllers())
	cfg := rest.CopyConfig(s.Config)
	rec := &warningRecorder{}
	cfg.WarningHandler = rec
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	kube, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	c := &validationClients{dyn: dyn, rest: kube.CoreV1().RESTClient(), warnings: rec}

	t.Run("UnknownFieldStrict", func(t *testing.T) {
		body := `{"apiVersion": "ecs.drover.dev/v1alpha1", "kind": "Service", "metadata": {"name": "unknown-strict"},
			"spec": {"cluster": "stores", "taskDefinition": "web", "desiredCount": 1, "replicas": 3}}`
		err := c.post(t.Context(), "services", "application/json", body, map[string]string{"fieldValidation": "Strict"})
		require.True(t, apierrors.IsBadRequest(err), "want 400 BadRequest, got %v", err)
		require.Contains(t, err.Error(), `unknown field "spec.replicas"`)
		t.Logf("server said: %v", err)
		c.requireNotWritten(t, servicesGVR, "unknown-strict")

		// The typed path kubectl takes: the dynamic client with fieldValidation=Strict.
		u := object(t, body)
		u.SetName("unknown-strict-dynamic")
		_, err = c.dyn.Resource(servicesGVR).Namespace(validationNS).Create(t.Context(), u, metav1.CreateOptions{FieldValidation: "Strict"})
		require.True(t, apierrors.IsBadRequest(err), "want 400 BadRequest, got %v", err)
		require.Contains(t, err.Error(), `unknown field "spec.replicas"`)
		c.requireNotWritten(t, servicesGVR, "unknown-strict-dynamic")
	})

	t.Run("UnknownFieldDefault", func(t *testing.T) {
		// Without fieldValidation the server warns and drops the field; it never stores it.
		c.warnings.take()
		u := object(t, fmt.Sprintf(validationService, "unknown-default"))
		setField(t, u, int64(3), "spec", "replicas")
		created, err := c.create(t.Context(), servicesGVR, u)
		require.NoError(t, err)
		_, found, _ := unstructured.NestedFieldNoCopy(created.Object, "spec", "replicas")
		require.False(t, found, "the unknown field is not in the response")
		_, found, _ = unstructured.NestedFieldNoCopy(c.get(t, servicesGVR, "unknown-default").Object, "spec", "replicas")
		require.False(t, found, "the unknown field is not stored")
		warnings := c.warnings.take()
		require.Contains(t, strings.Join(warnings, "\n"), `unknown field "spec.replicas"`, "the client is warned about the dropped field")
		t.Logf("server warned: %q", warnings)
	})

	t.Run("WrongType", func(t *testing.T) {
		body := `{"apiVersion": "ecs.drover.dev/v1alpha1", "kind": "Service", "metadata": {"name": "wrong-type"},
			"spec": {"cluster": "stores", "taskDefinition": "web", "desiredCount": "two"}}`
		err := c.post(t.Context(), "services", "application/json", body, map[string]string{"fieldValidation": "Strict"})
		requireInvalid(t, err, "spec.desiredCount", "must be of type integer")
		c.requireNotWritten(t, servicesGVR, "wrong-type")

		body = `{"apiVersion": "ecs.drover.dev/v1alpha1", "kind": "TaskDefinition", "metadata": {"name": "wrong-type"},
			"spec": {"containerDefinitions": {"name": "web", "image": "nginx", "memory": 128}}}`
		err = c.post(t.Context(), "taskdefinitions", "application/json", body, nil)
		requireInvalid(t, err, "spec.containerDefinitions", "must be of type array")
		c.requireNotWritten(t, taskDefinitionsGVR, "wrong-type")
	})

	t.Run("NegativeDesiredCount", func(t *testing.T) {
		u := object(t, fmt.Sprintf(validationService, "negative"))
		setField(t, u, int64(-1), "spec", "desiredCount")
		_, err := c.create(t.Context(), servicesGVR, u)
		requireInvalid(t, err, "spec.desiredCount", "greater than or equal to 0")
		c.requireNotWritten(t, servicesGVR, "negative")

		// Scaling an existing service below zero is refused the same way and leaves it as it was.
		_, err = c.create(t.Context(), servicesGVR, object(t, fmt.Sprintf(validationService, "scaled")))
		require.NoError(t, err)
		before := c.get(t, servicesGVR, "scaled")
		_, err = c.update(t, servicesGVR, "scaled", func(u *unstructured.Unstructured) { setField(t, u, int64(-3), "spec", "desiredCount") })
		requireInvalid(t, err, "spec.desiredCount", "greater than or equal to 0")
		c.requireUnchanged(t, servicesGVR, before)
	})

	t.Run("MemoryReservationAboveMemory", func(t *testing.T) {
		containers := `[{"name": "web", "image": "nginx:1.27", "memory": 256, "memoryReservation": 512}]`
		_, err := c.create(t.Context(), taskDefinitionsGVR, object(t, fmt.Sprintf(validationTaskDefinition, "over-reserved", "bridge", containers)))
		requireInvalid(t, err, "spec.containerDefinitions[0].memoryReservation", "memoryReservation must not exceed memory")
		c.requireNotWritten(t, taskDefinitionsGVR, "over-reserved")

		// Equal is fine: the rule is <=, not <.
		containers = `[{"name": "web", "image": "nginx:1.27", "memory": 256, "memoryReservation": 256}]`
		_, err = c.create(t.Context(), taskDefinitionsGVR, object(t, fmt.Sprintf(validationTaskDefinition, "reserved-equal", "bridge", containers)))
		require.NoError(t, err)
	})

	t.Run("InvalidPlacementStrategy", func(t *testing.T) {
		for _, tc := range []struct {
			name, strategy string
			want           []string
		}{
			{"unknown-type", `{"type": "roundrobin"}`, []string{"spec.placementStrategy[0].type", `Unsupported value: "roundrobin"`, `"binpack"`}},
			{"binpack-instance", `{"type": "binpack", "field": "instanceId"}`, []string{"spec.placementStrategy[0].field", "field must be cpu or memory when type is binpack"}},
			{"spread-no-field", `{"type": "spread"}`, []string{"spec.placementStrategy[0].field", "field must be instanceId, host or attribute:NAME when type is spread"}},
			{"random-field", `{"type": "random", "field": "memory"}`, []string{"spec.placementStrategy[0].field", "field must not be set when type is random"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u := object(t, fmt.Sprintf(validationService, "placement-"+tc.name))
				setField(t, u, []any{jsonValue(t, tc.strategy)}, "spec", "placementStrategy")
				_, err := c.create(t.Context(), servicesGVR, u)
				requireInvalid(t, err, tc.want...)
				c.requireNotWritten(t, servicesGVR, "placement-"+tc.name)
			})
		}
	})

	t.Run("TooLarge", func(t *testing.T) {
		// 64 environment variables of 32 KiB each: every value is within its own limit, the object is 2 MiB.
		value := strings.Repeat("x", 32768)
		env := make([]any, 64)
		for i := range env {
			env[i] = map[string]any{"name": fmt.Sprintf("V%d", i), "value": value}
		}
		u := object(t, fmt.Sprintf(validationTaskDefinition, "huge", "bridge", validationContainers))
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "containerDefinitions")
		containers[0].(map[string]any)["environment"] = env
		setField(t, u, containers, "spec", "containerDefinitions")
		js, err := u.MarshalJSON()
		require.NoError(t, err)
		require.Greater(t, len(js), 2<<20)

		_, err = c.create(t.Context(), taskDefinitionsGVR, u)
		require.True(t, apierrors.IsRequestEntityTooLargeError(err), "want 413, got %v", err)
		require.Contains(t, err.Error(), fmt.Sprintf("limit is %d", apiserver.MaxRequestBodyBytes))
		t.Logf("server said: %v", err)
		c.requireNotWritten(t, taskDefinitionsGVR, "huge")

		// Half of it is accepted: the refusal is about size, not about the content.
		containers[0].(map[string]any)["environment"] = env[:32]
		setField(t, u, containers, "spec", "containerDefinitions")
		u.SetName("half-huge")
		_, err = c.create(t.Context(), taskDefinitionsGVR, u)
		require.NoError(t, err)
	})

	const brokenYAML = `apiVersion: ecs.drover.dev/v1alpha1
kind: Service
metadata:
  name: yaml-broken
spec:
  cluster: stores
   taskDefinition: web
  desiredCount: 2
`

	t.Run("BrokenYAMLOverREST", func(t *testing.T) {
		err := c.post(t.Context(), "services", "application/yaml", brokenYAML, nil)
		require.True(t, apierrors.IsBadRequest(err), "want 400 BadRequest, got %v", err)
		require.Contains(t, err.Error(), "yaml: line 7")
		require.Contains(t, err.Error(), "mapping values are not allowed")
		t.Logf("server said: %v", err)
		c.requireNotWritten(t, servicesGVR, "yaml-broken")
	})

	t.Run("BrokenYAMLWithKubectl", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "broken.yaml")
		require.NoError(t, os.WriteFile(path, []byte(brokenYAML), 0o600))
		cmd := exec.CommandContext(t.Context(), "kubectl", "apply", "-f", path)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+s.Kubeconfig)
		out, err := cmd.CombinedOutput()
		require.Error(t, err, "kubectl apply of broken YAML must fail: %s", out)
		require.Contains(t, string(out), "yaml: line 7")
		require.Contains(t, string(out), "mapping values are not allowed")
		t.Logf("kubectl said: %s", strings.TrimSpace(string(out)))
		c.requireNotWritten(t, servicesGVR, "yaml-broken")
	})

	t.Run("RevisionImmutable", func(t *testing.T) {
		rev := object(t, `{"apiVersion": "ecs.drover.dev/v1alpha1", "kind": "TaskDefinitionRevision", "metadata": {"name": "web-1"},
			"spec": {"family": "web", "revision": 1, "taskDefinition": {"containerDefinitions": `+validationContainers+`}}}`)
		_, err := c.create(t.Context(), revisionsGVR, rev)
		require.NoError(t, err)
		before := c.get(t, revisionsGVR, "web-1")

		_, err = c.update(t, revisionsGVR, "web-1", func(u *unstructured.Unstructured) {
			containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "taskDefinition", "containerDefinitions")
			containers[0].(map[string]any)["image"] = "nginx:1.28"
			setField(t, u, containers, "spec", "taskDefinition", "containerDefinitions")
		})
		requireInvalid(t, err, "spec: Invalid value", "TaskDefinitionRevision is immutable")
		c.requireUnchanged(t, revisionsGVR, before)

		_, err = c.update(t, revisionsGVR, "web-1", func(u *unstructured.Unstructured) { setField(t, u, int64(2), "spec", "revision") })
		require.Error(t, err)
		require.Contains(t, err.Error(), "TaskDefinitionRevision is immutable")
		c.requireUnchanged(t, revisionsGVR, before)

		// Labels are not spec: they can still change.
		_, err = c.update(t, revisionsGVR, "web-1", func(u *unstructured.Unstructured) { u.SetLabels(map[string]string{"team": "a"}) })
		require.NoError(t, err)
	})

	t.Run("TaskContainersImmutable", func(t *testing.T) {
		_, err := c.create(t.Context(), tasksGVR, object(t, fmt.Sprintf(validationTask, "resolved")))
		require.NoError(t, err)
		// Resolving (setting containers the first time) is allowed.
		_, err = c.update(t, tasksGVR, "resolved", func(u *unstructured.Unstructured) {
			setField(t, u, jsonValue(t, validationContainers), "spec", "containers")
		})
		require.NoError(t, err)
		before := c.get(t, tasksGVR, "resolved")

		_, err = c.update(t, tasksGVR, "resolved", func(u *unstructured.Unstructured) {
			containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "containers")
			containers[0].(map[string]any)["image"] = "evil:latest"
			setField(t, u, containers, "spec", "containers")
		})
		requireInvalid(t, err, "spec.containers", "containers cannot be changed once resolved")
		c.requireUnchanged(t, tasksGVR, before)

		_, err = c.update(t, tasksGVR, "resolved", func(u *unstructured.Unstructured) { unstructured.RemoveNestedField(u.Object, "spec", "containers") })
		requireInvalid(t, err, "spec.containers", "containers cannot be changed once resolved")
		c.requireUnchanged(t, tasksGVR, before)
	})

	t.Run("ContainerInstanceSetOnce", func(t *testing.T) {
		_, err := c.create(t.Context(), tasksGVR, object(t, fmt.Sprintf(validationTask, "placed")))
		require.NoError(t, err)
		_, err = c.update(t, tasksGVR, "placed", func(u *unstructured.Unstructured) { setField(t, u, "store-1", "spec", "containerInstance") })
		require.NoError(t, err, "placing an unplaced task is allowed")
		before := c.get(t, tasksGVR, "placed")

		_, err = c.update(t, tasksGVR, "placed", func(u *unstructured.Unstructured) { setField(t, u, "store-2", "spec", "containerInstance") })
		requireInvalid(t, err, "spec.containerInstance", "spec.containerInstance cannot be changed once the task is placed")
		c.requireUnchanged(t, tasksGVR, before)

		_, err = c.update(t, tasksGVR, "placed", func(u *unstructured.Unstructured) {
			unstructured.RemoveNestedField(u.Object, "spec", "containerInstance")
		})
		requireInvalid(t, err, "spec.containerInstance", "cannot be changed once the task is placed")
		c.requireUnchanged(t, tasksGVR, before)
	})

	t.Run("HostPortUnique", func(t *testing.T) {
		for _, tc := range []struct {
			name, networkMode, containers string
			want                          []string // nil: accepted
		}{
			{"same-container", "bridge",
				`[{"name": "web", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 8080}]}]`,
				[]string{"spec.containerDefinitions[0].portMappings", "hostPort 8080/tcp is used by more than one port mapping"}},
			{"across-containers", "bridge",
				`[{"name": "a", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 80, "hostPort": 8080}]},
				  {"name": "b", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 81, "hostPort": 8080}]}]`,
				[]string{"spec.containerDefinitions", "hostPort 8080/tcp is used by more than one port mapping"}},
			{"host-mode", "host",
				`[{"name": "a", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 53, "protocol": "udp"}]},
				  {"name": "b", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 53, "protocol": "udp"}]}]`,
				[]string{"spec.containerDefinitions", "hostPort 53/udp is used by more than one port mapping"}},
			{"tcp-and-udp", "bridge",
				`[{"name": "a", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 53, "hostPort": 53, "protocol": "tcp"}]},
				  {"name": "b", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 53, "hostPort": 53, "protocol": "udp"}]}]`,
				nil},
			{"dynamic-ports", "bridge",
				`[{"name": "a", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 80}, {"containerPort": 81, "hostPort": 0}]},
				  {"name": "b", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 80}]}]`,
				nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				name := "ports-" + tc.name
				_, err := c.create(t.Context(), taskDefinitionsGVR, object(t, fmt.Sprintf(validationTaskDefinition, name, tc.networkMode, tc.containers)))
				if tc.want == nil {
					require.NoError(t, err)
					return
				}
				requireInvalid(t, err, tc.want...)
				c.requireNotWritten(t, taskDefinitionsGVR, name)
			})
		}

		// An update that introduces a clash is refused and leaves the stored definition alone.
		_, err := c.create(t.Context(), taskDefinitionsGVR, object(t, fmt.Sprintf(validationTaskDefinition, "ports-update", "bridge", validationContainers)))
		require.NoError(t, err)
		before := c.get(t, taskDefinitionsGVR, "ports-update")
		_, err = c.update(t, taskDefinitionsGVR, "ports-update", func(u *unstructured.Unstructured) {
			containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "containerDefinitions")
			containers = append(containers, map[string]any{"name": "sidecar", "image": "envoy", "memory": int64(64),
				"portMappings": []any{map[string]any{"containerPort": int64(9901), "hostPort": int64(8080)}}})
			setField(t, u, containers, "spec", "containerDefinitions")
		})
		requireInvalid(t, err, "spec.containerDefinitions", "hostPort 8080/tcp is used by more than one port mapping")
		c.requireUnchanged(t, taskDefinitionsGVR, before)
	})

	t.Run("DesiredStatusStoppedIsFinal", func(t *testing.T) {
		_, err := c.create(t.Context(), tasksGVR, object(t, fmt.Sprintf(validationTask, "stopping")))
		require.NoError(t, err)
		require.Equal(t, "RUNNING", c.get(t, tasksGVR, "stopping").Object["spec"].(map[string]any)["desiredStatus"], "desiredStatus defaults to RUNNING")
		_, err = c.update(t, tasksGVR, "stopping", func(u *unstructured.Unstructured) { setField(t, u, "STOPPED", "spec", "desiredStatus") })
		require.NoError(t, err)
		before := c.get(t, tasksGVR, "stopping")

		_, err = c.update(t, tasksGVR, "stopping", func(u *unstructured.Unstructured) { setField(t, u, "RUNNING", "spec", "desiredStatus") })
		requireInvalid(t, err, "spec.desiredStatus", "desiredStatus cannot go from STOPPED back to RUNNING")
		c.requireUnchanged(t, tasksGVR, before)

		// Removing the field would let the default bring RUNNING back: refused as well.
		_, err = c.update(t, tasksGVR, "stopping", func(u *unstructured.Unstructured) { unstructured.RemoveNestedField(u.Object, "spec", "desiredStatus") })
		requireInvalid(t, err, "spec.desiredStatus", "desiredStatus cannot go from STOPPED back to RUNNING")
		c.requireUnchanged(t, tasksGVR, before)
	})
}
