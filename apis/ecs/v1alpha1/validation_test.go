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

// These tests run the generated CRDs through the validation code of k8s.io/apiextensions-apiserver, the code a
// real API server runs: CRD validation (structural schema, CEL compilation and cost estimates), then, for
// objects, pruning, defaulting, OpenAPI schema validation, list-map validation and CEL validation with
// transition rules.

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/model"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	schemavalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/version"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	celcommon "k8s.io/apiserver/pkg/cel/common"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/yaml"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/config/crd"
)

// kindSchema is what an API server builds from one CRD to validate its objects.
type kindSchema struct {
	crd        *apiextensionsv1.CustomResourceDefinition
	internal   *apiextensionsinternal.CustomResourceDefinition
	structural *structuralschema.Structural
	openAPI    schemavalidation.SchemaValidator
	cel        *cel.Validator
}

var loadSchemas = sync.OnceValues(func() (map[string]*kindSchema, error) {
	crds, err := crd.CustomResourceDefinitions()
	if err != nil {
		return nil, err
	}
	schemas := map[string]*kindSchema{}
	for _, c := range crds {
		internal := &apiextensionsinternal.CustomResourceDefinition{}
		if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(c, internal, nil); err != nil {
			return nil, err
		}
		internal.Status.StoredVersions = []string{ecsv1alpha1.GroupVersion.Version}
		validation := internal.Spec.Validation
		if validation == nil {
			validation = internal.Spec.Versions[0].Schema
		}
		structural, err := structuralschema.NewStructural(validation.OpenAPIV3Schema)
		if err != nil {
			return nil, err
		}
		openAPI, _, err := schemavalidation.NewSchemaValidator(validation.OpenAPIV3Schema)
		if err != nil {
			return nil, err
		}
		schemas[c.Spec.Names.Kind] = &kindSchema{
			crd:        c,
			internal:   internal,
			structural: structural,
			openAPI:    openAPI,
			cel:        cel.NewValidator(structural, true, celconfig.PerCallLimit),
		}
	}
	return schemas, nil
})

func schemaFor(t *testing.T, kind string) *kindSchema {
	t.Helper()
	schemas, err := loadSchemas()
	require.NoError(t, err)
	s, ok := schemas[kind]
	require.True(t, ok, "no CRD for kind %s", kind)
	return s
}

// decode reads a YAML object as the API server's JSON decoder does (integers stay int64), prunes it and
// applies the schema defaults. Unknown fields fail the test: kubectl's strict field validation rejects them.
func decode(t *testing.T, s *kindSchema, doc string) map[string]any {
	t.Helper()
	data, err := yaml.YAMLToJSON([]byte(doc))
	require.NoError(t, err)
	obj := map[string]any{}
	require.NoError(t, utiljson.Unmarshal(data, &obj))
	unknown := structuralpruning.PruneWithOptions(obj, s.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	require.Empty(t, unknown, "unknown fields")
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(obj, s.structural)
	structuraldefaulting.Default(obj, s.structural)
	return obj
}

// validate validates obj as a create (old == nil) or as an update of old, and returns the errors the API server
// would return. The CEL validator runs with the runtime budget of one object and reports budget exhaustion as
// an error, so a passing test also proves the rules fit the budget for that object.
func validate(t *testing.T, s *kindSchema, obj, old map[string]any) field.ErrorList {
	t.Helper()
	var errs field.ErrorList
	var celOpts []cel.Option
	if old == nil {
		errs = append(errs, schemavalidation.ValidateCustomResource(nil, obj, s.openAPI)...)
	} else {
		correlated := celcommon.NewCorrelatedObject(obj, old, &model.Structural{Structural: s.structural})
		errs = append(errs, schemavalidation.ValidateCustomResourceUpdate(nil, obj, old, s.openAPI, schemavalidation.WithRatcheting(correlated))...)
		celOpts = append(celOpts, cel.WithRatcheting(correlated))
	}
	errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, s.structural, obj)...)
	var oldObj any
	if old != nil {
		oldObj = old
	}
	celErrs, remaining := s.cel.Validate(t.Context(), nil, s.structural, obj, oldObj, celconfig.RuntimeCELCostBudget, celOpts...)
	require.GreaterOrEqual(t, remaining, int64(0), "CEL runtime budget exhausted: %v", celErrs)
	t.Logf("CEL cost %d", celconfig.RuntimeCELCostBudget-remaining)
	return append(errs, celErrs...)
}

var userFacingKinds = []string{"Activation", "Cluster", "ContainerInstance", "Service", "Task", "TaskDefinition"}

func TestCRDsAreValid(t *testing.T) {
	schemas, err := loadSchemas()
	require.NoError(t, err)
	kinds := []string{}
	for kind := range schemas {
		kinds = append(kinds, kind)
	}
	slices.Sort(kinds)
	assert.Equal(t, []string{"Activation", "Cluster", "ContainerInstance", "Service", "Task", "TaskDefinition", "TaskDefinitionRevision"}, kinds)

	shortNames := map[string]string{
		"Activation": "act", "Cluster": "ecscluster", "ContainerInstance": "ci", "Service": "ecssvc",
		"Task": "ecstask", "TaskDefinition": "td", "TaskDefinitionRevision": "tdr",
	}
	selectable := map[string][]string{
		"ContainerInstance": {".spec.cluster"}, "Service": {".spec.cluster"},
		"Task": {".spec.containerInstance", ".spec.cluster"},
	}
	for kind, s := range schemas {
		t.Run(kind, func(t *testing.T) {
			// The checks of a CRD create: structural schema, defaults, printer columns, selectable fields,
			// CEL compilation and the per-rule and per-CRD cost estimates.
			assert.Empty(t, crdvalidation.ValidateCustomResourceDefinition(t.Context(), s.internal))

			c := s.crd
			assert.Equal(t, ecsv1alpha1.GroupName, c.Spec.Group)
			assert.Equal(t, apiextensionsv1.NamespaceScoped, c.Spec.Scope)
			assert.Equal(t, []string{"ecs"}, c.Spec.Names.Categories)
			assert.Equal(t, []string{shortNames[kind]}, c.Spec.Names.ShortNames)
			require.Len(t, c.Spec.Versions, 1)
			v := c.Spec.Versions[0]
			assert.Equal(t, ecsv1alpha1.GroupVersion.Version, v.Name)
			require.NotNil(t, v.Subresources)
			assert.NotNil(t, v.Subresources.Status, "status subresource")
			assert.Equal(t, kind == "Service", v.Subresources.Scale != nil, "scale subresource")
			var fields []string
			for _, f := range v.SelectableFields {
				fields = append(fields, f.JSONPath)
			}
			assert.Equal(t, selectable[kind], fields)
			for _, col := range v.AdditionalPrinterColumns {
				assert.NotContains(t, col.JSONPath, "codeHash", "the code hash is never printed")
			}
		})
	}
}

// TestCELRulesCompile compiles every rule as the API server does for a new CRD and checks each one's
// estimated cost against the per-call limit, so that a failure names the rule. Besides the CEL environment of
// this apiextensions-apiserver, it uses that of Kubernetes 1.31 (compatibility version 1.30), the oldest that
// serves the selectable fields the agent relies on, so that the CRDs also install into such clusters.
func TestCELRulesCompile(t *testing.T) {
	for _, compatibility := range []*version.Version{environment.DefaultCompatibilityVersion(), version.MajorMinor(1, 30)} {
		t.Run(compatibility.String(), func(t *testing.T) {
			testCELRulesCompile(t, environment.MustBaseEnvSet(compatibility))
		})
	}
}

func testCELRulesCompile(t *testing.T, envSet *environment.EnvSet) {
	schemas, err := loadSchemas()
	require.NoError(t, err)
	for kind, s := range schemas {
		walkSchema(s.structural, kind, func(path string, node *structuralschema.Structural) {
			if len(node.XValidations) == 0 {
				return
			}
			root := path == kind
			declType := model.SchemaDeclType(node, root)
			if root {
				declType = model.SchemaDeclType(model.WithTypeAndObjectMeta(node), true)
			}
			results, err := cel.Compile(node, declType, celconfig.PerCallLimit, envSet, cel.NewExpressionsEnvLoader())
			require.NoError(t, err, path)
			for i, r := range results {
				rule := node.XValidations[i].Rule
				assert.Nil(t, r.Error, "%s: %s", path, rule)
				assert.Nil(t, r.MessageExpressionError, "%s: %s", path, rule)
				assert.LessOrEqual(t, r.MaxCost, uint64(celconfig.PerCallLimit), "%s: %s", path, rule)
				assert.LessOrEqual(t, r.MessageExpressionMaxCost, uint64(celconfig.PerCallLimit), "%s: %s", path, rule)
			}
		})
	}
}

// TestSchemaConventions checks what kubectl explain shows and what keeps validation cheap: every field is
// documented, every string is bounded (or an enum or a timestamp), every list is bounded.
func TestSchemaConventions(t *testing.T) {
	schemas, err := loadSchemas()
	require.NoError(t, err)
	for kind, s := range schemas {
		walkSchema(s.structural, kind, func(path string, node *structuralschema.Structural) {
			switch {
			case path == kind, path == kind+".apiVersion", path == kind+".kind", path == kind+".metadata":
				return // from metav1.TypeMeta and ObjectMeta
			case strings.HasSuffix(path, "[]"), strings.HasSuffix(path, "{}"):
				return // described by their list or map
			}
			assert.NotEmpty(t, node.Description, "%s has no description", path)
			switch node.Type {
			case "string":
				bounded := node.ValueValidation != nil && (node.ValueValidation.MaxLength != nil || len(node.ValueValidation.Enum) > 0 || node.ValueValidation.Format == "date-time")
				assert.True(t, bounded, "%s: string without maxLength", path)
			case "array":
				assert.True(t, node.ValueValidation != nil && node.ValueValidation.MaxItems != nil, "%s: list without maxItems", path)
			}
		})
	}
}

func walkSchema(s *structuralschema.Structural, path string, fn func(path string, node *structuralschema.Structural)) {
	fn(path, s)
	for name, prop := range s.Properties {
		walkSchema(&prop, path+"."+name, fn)
	}
	if s.Items != nil {
		walkSchema(s.Items, path+"[]", fn)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Structural != nil {
		walkSchema(s.AdditionalProperties.Structural, path+"{}", fn)
	}
}

// TestSamples validates config/samples as `kubectl apply -f config/samples/` would send them, decodes them into
// the Go types strictly, and checks that they refer to one another.
func TestSamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "config", "samples", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, files)

	names := map[string][]string{} // kind -> names
	refs := map[string][]string{}  // "Kind/name" a sample refers to -> referring files
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			require.Equal(t, ".yaml", filepath.Ext(file))
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			for _, doc := range strings.Split(string(data), "\n---\n") {
				meta := struct {
					APIVersion string `json:"apiVersion"`
					Kind       string `json:"kind"`
					Metadata   struct {
						Name      string `json:"name"`
						Namespace string `json:"namespace"`
					} `json:"metadata"`
				}{}
				require.NoError(t, yaml.Unmarshal([]byte(doc), &meta))
				require.Equal(t, ecsv1alpha1.GroupVersion.String(), meta.APIVersion)
				require.Empty(t, meta.Metadata.Namespace, "samples go to the namespace kubectl is pointed at")
				s := schemaFor(t, meta.Kind)
				obj := decode(t, s, doc)
				assert.Empty(t, validate(t, s, obj, nil))

				typed, err := newObject(meta.Kind)
				require.NoError(t, err)
				require.NoError(t, yaml.UnmarshalStrict([]byte(doc), typed), "the Go types accept the sample")

				names[meta.Kind] = append(names[meta.Kind], meta.Metadata.Name)
				for _, ref := range sampleRefs(t, typed) {
					refs[ref] = append(refs[ref], filepath.Base(file))
				}
			}
		})
	}
	for _, kind := range userFacingKinds {
		assert.NotEmpty(t, names[kind], "no sample of kind %s", kind)
	}
	for ref, files := range refs {
		kind, name, _ := strings.Cut(ref, "/")
		assert.Contains(t, names[kind], name, "%v refer to %s, which no sample defines", files, ref)
	}
}

func newObject(kind string) (runtime.Object, error) {
	scheme := runtime.NewScheme()
	if err := ecsv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return scheme.New(ecsv1alpha1.GroupVersion.WithKind(kind))
}

// sampleRefs returns the objects a sample refers to by name, as Kind/name.
func sampleRefs(t *testing.T, obj runtime.Object) []string {
	family := func(ref string) string {
		f, _, err := ecsv1alpha1.ParseTaskDefinitionRef(ref)
		require.NoError(t, err)
		return "TaskDefinition/" + f
	}
	switch o := obj.(type) {
	case *ecsv1alpha1.Service:
		return []string{"Cluster/" + o.Spec.Cluster, family(o.Spec.TaskDefinition)}
	case *ecsv1alpha1.Task:
		return []string{"Cluster/" + o.Spec.Cluster, family(o.Spec.TaskDefinition)}
	case *ecsv1alpha1.ContainerInstance:
		return []string{"Cluster/" + o.Spec.Cluster, "Activation/" + o.Spec.Activation}
	case *ecsv1alpha1.Activation:
		return []string{"Cluster/" + o.Spec.Cluster}
	}
	return nil
}

// TestDefaults checks that the schema defaults come out as the field documentation says.
func TestDefaults(t *testing.T) {
	fromUnstructured := func(obj map[string]any, into any) {
		require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(obj, into))
	}

	td := &ecsv1alpha1.TaskDefinition{}
	fromUnstructured(decode(t, schemaFor(t, "TaskDefinition"), `
apiVersion: ecs.drover.dev/v1alpha1
kind: TaskDefinition
metadata: {name: web}
spec:
  containerDefinitions:
  - name: web
    image: nginx:1.27
    memory: 128
    portMappings: [{containerPort: 80}]
    healthCheck: {command: [CMD, /healthz]}
    restartPolicy: {enabled: true}
`), td)
	assert.Equal(t, ecsv1alpha1.NetworkModeBridge, td.Spec.NetworkMode)
	c := td.Spec.ContainerDefinitions[0]
	require.NotNil(t, c.Essential)
	assert.True(t, *c.Essential)
	assert.Equal(t, ecsv1alpha1.ProtocolTCP, c.PortMappings[0].Protocol)
	assert.Equal(t, int32(0), c.PortMappings[0].HostPort, "no host port means a dynamic one")
	assert.Equal(t, ecsv1alpha1.HealthCheck{Command: []string{"CMD", "/healthz"}, Interval: 30, Timeout: 5, Retries: 3, StartPeriod: 0}, *c.HealthCheck)
	assert.Equal(t, int32(300), c.RestartPolicy.RestartAttemptPeriod)
	assert.Nil(t, c.StopTimeout, "the agent applies the ECS default of 30 seconds")

	svc := &ecsv1alpha1.Service{}
	fromUnstructured(decode(t, schemaFor(t, "Service"), `
apiVersion: ecs.drover.dev/v1alpha1
kind: Service
metadata: {name: web}
spec:
  cluster: stores
  taskDefinition: web
  deploymentConfiguration: {}
  disconnectPolicy: {}
`), svc)
	require.NotNil(t, svc.Spec.DesiredCount)
	assert.Equal(t, int32(1), *svc.Spec.DesiredCount)
	assert.Equal(t, ecsv1alpha1.SchedulingStrategyReplica, svc.Spec.SchedulingStrategy)
	assert.Nil(t, svc.Spec.DeploymentConfiguration.MinimumHealthyPercent, "depends on schedulingStrategy")
	assert.Nil(t, svc.Spec.DeploymentConfiguration.MaximumPercent, "depends on schedulingStrategy")
	assert.Equal(t, int32(100), svc.Spec.MinimumHealthyPercent())
	assert.Equal(t, int32(200), svc.Spec.MaximumPercent())
	assert.Equal(t, ecsv1alpha1.DisconnectActionKeep, svc.Spec.DisconnectPolicy.Action)
	require.NotNil(t, svc.Spec.DisconnectPolicy.GracePeriodSeconds)
	assert.Equal(t, int32(300), *svc.Spec.DisconnectPolicy.GracePeriodSeconds)

	ci := &ecsv1alpha1.ContainerInstance{}
	fromUnstructured(decode(t, schemaFor(t, "ContainerInstance"), `
apiVersion: ecs.drover.dev/v1alpha1
kind: ContainerInstance
metadata: {name: host-1}
spec: {cluster: stores}
`), ci)
	assert.Equal(t, ecsv1alpha1.ContainerInstanceActive, ci.Spec.State)

	task := &ecsv1alpha1.Task{}
	fromUnstructured(decode(t, schemaFor(t, "Task"), `
apiVersion: ecs.drover.dev/v1alpha1
kind: Task
metadata: {name: run-1}
spec: {cluster: stores, taskDefinition: "web:1"}
`), task)
	assert.Equal(t, ecsv1alpha1.TaskDesiredRunning, task.Spec.DesiredStatus)
	assert.Empty(t, task.Spec.NetworkMode, "resolved from the revision, never defaulted")

	act := &ecsv1alpha1.Activation{}
	fromUnstructured(decode(t, schemaFor(t, "Activation"), `
apiVersion: ecs.drover.dev/v1alpha1
kind: Activation
metadata: {name: a}
spec: {cluster: stores, codeHash: "sha256:`+strings.Repeat("0", 64)+`", expiresAt: "2030-01-01T00:00:00Z"}
`), act)
	assert.Equal(t, int32(1), act.Spec.RegistrationLimit)

	cluster := decode(t, schemaFor(t, "Cluster"), "apiVersion: ecs.drover.dev/v1alpha1\nkind: Cluster\nmetadata: {name: stores}\n")
	assert.Empty(t, validate(t, schemaFor(t, "Cluster"), cluster, nil), "a cluster without spec is valid")
}
