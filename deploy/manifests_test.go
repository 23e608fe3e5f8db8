// Package deploy_test checks what deploy/ ships: the Kubernetes manifests
// decoded strictly into Kubernetes' own types, the compose file into the
// fields of the Compose specification, the Dockerfile's promises (static,
// non-root, no shell), and the dashboard and alert rules against the
// metrics a running Orbt exports.
package deploy_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/orbt/orbt/config"
)

// knownVariables are the environment variables the orbt binary reads.
func knownVariables() map[string]bool {
	known := map[string]bool{}
	t := reflect.TypeFor[config.Config]()
	for i := range t.NumField() {
		if name := t.Field(i).Tag.Get("env"); name != "" {
			known[name] = true
		}
	}
	return known
}

// documents splits a YAML file into its documents.
func documents(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for doc := range strings.SplitSeq(string(data), "\n---\n") {
		if strings.TrimSpace(doc) != "" {
			docs = append(docs, []byte(doc))
		}
	}
	return docs
}

// manifests are every object of deploy/k8s, decoded strictly: a field
// Kubernetes does not have (a typo, a wrong indent) fails the test.
type manifests struct {
	deployments map[string]*appsv1.Deployment
	jobs        map[string]*batchv1.Job
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs        map[string]*policyv1.PodDisruptionBudget
}

func readManifests(t *testing.T) manifests {
	t.Helper()
	m := manifests{deployments: map[string]*appsv1.Deployment{}, jobs: map[string]*batchv1.Job{},
		services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}}
	files, _ := filepath.Glob("k8s/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests in deploy/k8s")
	}
	for _, f := range files {
		for i, doc := range documents(t, f) {
			var head struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("%s #%d: %v", f, i, err)
			}
			var obj interface{ GetName() string }
			var store func()
			switch head.APIVersion + " " + head.Kind {
			case "apps/v1 Deployment":
				o := &appsv1.Deployment{}
				obj, store = o, func() { m.deployments[o.Name] = o }
			case "batch/v1 Job":
				o := &batchv1.Job{}
				obj, store = o, func() { m.jobs[o.Name] = o }
			case "v1 Service":
				o := &corev1.Service{}
				obj, store = o, func() { m.services[o.Name] = o }
			case "v1 ConfigMap":
				o := &corev1.ConfigMap{}
				obj, store = o, func() { m.configMaps[o.Name] = o }
			case "v1 Secret":
				o := &corev1.Secret{}
				obj, store = o, func() { m.secrets[o.Name] = o }
			case "autoscaling/v2 HorizontalPodAutoscaler":
				o := &autoscalingv2.HorizontalPodAutoscaler{}
				obj, store = o, func() { m.hpas[o.Name] = o }
			case "policy/v1 PodDisruptionBudget":
				o := &policyv1.PodDisruptionBudget{}
				obj, store = o, func() { m.pdbs[o.Name] = o }
			default:
				t.Fatalf("%s #%d: %s %s is not a kind this test knows", f, i, head.APIVersion, head.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s #%d (%s): %v", f, i, head.Kind, err)
			}
			if obj.GetName() == "" {
				t.Fatalf("%s #%d: %s without a name", f, i, head.Kind)
			}
			store()
		}
	}
	return m
}

// The manifests decode strictly and hang together: each Deployment has
// probes on ports it declares, resources, a non-root user and time to
// drain; every setting they pass is one orbt reads, from a ConfigMap or
// Secret that exists; the Service, autoscalers and disruption budgets
// select pods that exist.
func TestKubernetesManifests(t *testing.T) {
	m := readManifests(t)
	for _, name := range []string{"orbt-api", "orbt-worker"} {
		if m.deployments[name] == nil || m.pdbs[name] == nil || m.hpas[name] == nil {
			t.Errorf("%s: want a Deployment, a PodDisruptionBudget and a HorizontalPodAutoscaler", name)
		}
	}
	if len(m.jobs) != 1 || len(m.secrets) != 1 {
		t.Fatalf("want one migration Job and one Secret, have %d and %d", len(m.jobs), len(m.secrets))
	}
	known := knownVariables()
	for name, cm := range m.configMaps {
		for k := range cm.Data {
			if !known[k] {
				t.Errorf("ConfigMap %s sets %s, which orbt does not read", name, k)
			}
		}
	}
	for name, s := range m.secrets {
		for _, k := range []string{"DATABASE_URL", "REDIS_URL", "ORBT_ADMIN_TOKEN", "ORBT_DATA_KEY"} {
			if _, ok := s.StringData[k]; !ok {
				t.Errorf("Secret %s lacks %s", name, k)
			}
		}
		for k := range s.StringData {
			if !known[k] {
				t.Errorf("Secret %s sets %s, which orbt does not read", name, k)
			}
		}
	}

	checkPod := func(what string, spec corev1.PodSpec, wantArgs []string, serves bool) {
		if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: runAsNonRoot unset", what)
		}
		if len(spec.Containers) != 1 {
			t.Fatalf("%s: %d containers, want 1", what, len(spec.Containers))
		}
		c := spec.Containers[0]
		if !slices.Equal(c.Args, wantArgs) {
			t.Errorf("%s: args %v, want %v", what, c.Args, wantArgs)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[r]; !ok {
				t.Errorf("%s: no %s request", what, r)
			}
			if _, ok := c.Resources.Limits[r]; !ok {
				t.Errorf("%s: no %s limit", what, r)
			}
		}
		if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
			t.Errorf("%s: privilege escalation not refused", what)
		}
		for _, from := range c.EnvFrom {
			switch {
			case from.ConfigMapRef != nil && m.configMaps[from.ConfigMapRef.Name] == nil:
				t.Errorf("%s: envFrom ConfigMap %s does not exist", what, from.ConfigMapRef.Name)
			case from.SecretRef != nil && m.secrets[from.SecretRef.Name] == nil:
				t.Errorf("%s: envFrom Secret %s does not exist", what, from.SecretRef.Name)
			}
		}
		if len(c.EnvFrom) != 2 {
			t.Errorf("%s: want the ConfigMap and the Secret in envFrom", what)
		}
		if !serves {
			return
		}
		ports := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
		}
		for probe, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s probe", what, probe)
				continue
			}
			if !ports[p.HTTPGet.Port.String()] {
				t.Errorf("%s: %s probe on port %s, which the container does not declare", what, probe, p.HTTPGet.Port.String())
			}
			// Readiness too is /healthz: an API with Redis or Postgres down
			// still answers (202, or 503 with Retry-After).
			if want := "/healthz"; p.HTTPGet.Path != want {
				t.Errorf("%s: %s probe asks %s, want %s", what, probe, p.HTTPGet.Path, want)
			}
		}
		// The server and asynq each take up to 25 s to drain.
		if spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds < 30 {
			t.Errorf("%s: terminationGracePeriodSeconds under 30 leaves no time to drain", what)
		}
	}
	checkPod("Deployment orbt-api", m.deployments["orbt-api"].Spec.Template.Spec, []string{"api"}, true)
	checkPod("Deployment orbt-worker", m.deployments["orbt-worker"].Spec.Template.Spec, []string{"worker"}, true)
	for name, j := range m.jobs {
		checkPod("Job "+name, j.Spec.Template.Spec, []string{"migrate", "up"}, false)
	}
	for name, d := range m.deployments {
		sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels)
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment %s's selector does not match its pods", name)
		}
	}
	podsMatch := func(set map[string]string) []string {
		var found []string
		for name, d := range m.deployments {
			if labels.SelectorFromSet(set).Matches(labels.Set(d.Spec.Template.Labels)) {
				found = append(found, name)
			}
		}
		return found
	}
	for name, s := range m.services {
		if got := podsMatch(s.Spec.Selector); len(got) != 1 {
			t.Errorf("Service %s selects the pods of %v, want one Deployment", name, got)
		}
	}
	for name, p := range m.pdbs {
		if got := podsMatch(p.Spec.Selector.MatchLabels); !slices.Equal(got, []string{name}) {
			t.Errorf("PodDisruptionBudget %s selects the pods of %v", name, got)
		}
	}
	for name, h := range m.hpas {
		if ref := h.Spec.ScaleTargetRef; ref.Kind != "Deployment" || m.deployments[ref.Name] == nil {
			t.Errorf("HorizontalPodAutoscaler %s scales %s %s, which does not exist", name, ref.Kind, ref.Name)
		}
		if d := m.deployments[h.Spec.ScaleTargetRef.Name]; d != nil && h.Spec.MinReplicas != nil && *d.Spec.Replicas < *h.Spec.MinReplicas {
			t.Errorf("HorizontalPodAutoscaler %s: minReplicas above the Deployment's replicas", name)
		}
	}
	if cm := m.configMaps["orbt"]; cm == nil || cm.Data["ORBT_OPS_ADDR"] != ":9090" || cm.Data["ORBT_ENV"] != config.EnvProduction {
		t.Error("ConfigMap orbt: want ORBT_OPS_ADDR :9090 (the probes and the worker's metrics) and ORBT_ENV production")
	}
}

// compose is the part of the Compose specification deploy/compose.yaml
// uses; decoding is strict, so a field outside it fails.
type compose struct {
	Name     string                    `json:"name"`
	Services map[string]composeService `json:"services"`
	Volumes  map[string]*struct{}      `json:"volumes"`
}

type composeService struct {
	Image string `json:"image"`
	Build *struct {
		Context    string `json:"context"`
		Dockerfile string `json:"dockerfile"`
	} `json:"build"`
	Command         []string          `json:"command"`
	Environment     map[string]string `json:"environment"`
	Restart         string            `json:"restart"`
	Ports           []string          `json:"ports"`
	Volumes         []string          `json:"volumes"`
	StopGracePeriod string            `json:"stop_grace_period"`
	DependsOn       map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Healthcheck *struct {
		Test     []string `json:"test"`
		Interval string   `json:"interval"`
		Timeout  string   `json:"timeout"`
		Retries  int      `json:"retries"`
	} `json:"healthcheck"`
}

// The compose file decodes strictly into the Compose fields it uses, and
// starts things in order: Postgres healthy, the migration done, then the
// API and the worker, each given every setting it needs and none orbt
// does not read.
func TestCompose(t *testing.T) {
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// x- keys are the specification's extensions (here, the shared
	// environment, merged in by YAML anchors): drop them before decoding.
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for k := range raw {
		if strings.HasPrefix(k, "x-") {
			delete(raw, k)
		}
	}
	j, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	var c compose
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, name := range []string{"postgres", "redis", "migrate", "api", "worker"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("compose.yaml has no %s service", name)
		}
	}
	known := knownVariables()
	for _, name := range []string{"migrate", "api", "worker"} {
		s := c.Services[name]
		if s.Image != "orbt" {
			t.Errorf("%s: image %q, want the orbt image", name, s.Image)
		}
		for _, v := range []string{"DATABASE_URL", "REDIS_URL", "ORBT_DATA_KEY", "ORBT_ENV"} {
			if s.Environment[v] == "" {
				t.Errorf("%s: %s unset", name, v)
			}
		}
		for v := range s.Environment {
			if !known[v] {
				t.Errorf("%s: sets %s, which orbt does not read", name, v)
			}
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which does not exist", name, dep)
			}
		}
	}
	if c.Services["migrate"].DependsOn["postgres"].Condition != "service_healthy" || c.Services["migrate"].Restart != "no" {
		t.Error("migrate: want it run once, after Postgres is healthy")
	}
	for _, name := range []string{"api", "worker"} {
		if c.Services[name].DependsOn["migrate"].Condition != "service_completed_successfully" {
			t.Errorf("%s: want it started after the migration completed", name)
		}
	}
	if cmd := strings.Join(c.Services["redis"].Command, " "); !strings.Contains(cmd, "--appendonly yes") || !strings.Contains(cmd, "--maxmemory-policy noeviction") {
		t.Errorf("redis runs %q: asynq's queue needs AOF and noeviction", cmd)
	}
	if b := c.Services["migrate"].Build; b == nil || b.Dockerfile != "deploy/Dockerfile" {
		t.Error("migrate: want the orbt image built from deploy/Dockerfile")
	}
}
