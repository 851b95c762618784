package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/approvalbot/approvalbot/config"
)

const chartDir = "helm/approvalbot"

// kubeVersion is the oldest Kubernetes the chart is for (its kubeVersion;
// the preStop sleep needs 1.30). helm built by go install assumes 1.20.
const kubeVersion = "1.30.0"

// helmBinary is $HELM, else helm on the PATH. Without it the chart's tests
// fail rather than skip: CI installs it (make helm).
func helmBinary(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	h, err := exec.LookPath("helm")
	if err != nil {
		t.Fatal("helm not found: run `make helm` (go install helm.sh/helm/v3/cmd/helm at the version the Makefile pins, into bin/tools) and set HELM to it, or put helm on the PATH; `make test` does both")
	}
	return h
}

func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBinary(t), args...)
	// No repositories, plugins or caches of the machine's user.
	dir := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+dir, "HELM_CONFIG_HOME="+dir, "HELM_DATA_HOME="+dir)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	if err != nil {
		return out.String() + stderr.String(), err
	}
	return out.String(), nil
}

// rendered is what `helm template` made of one values file, decoded.
type rendered struct {
	deployment *appsv1.Deployment
	configMap  *corev1.ConfigMap
	service    *corev1.Service
	account    *corev1.ServiceAccount
	pvcs       []*corev1.PersistentVolumeClaim
	pdbs       []*policyv1.PodDisruptionBudget
	policies   []*networkingv1.NetworkPolicy
	ingresses  []*networkingv1.Ingress
	monitors   []*serviceMonitor
	secrets    []*corev1.Secret
}

func renderChart(t *testing.T, valuesFile string) rendered {
	t.Helper()
	out, err := runHelm(t, "template", "approvalbot", chartDir, "--kube-version", kubeVersion, "--namespace", "approvalbot", "-f", valuesFile)
	if err != nil {
		t.Fatalf("helm template -f %s: %v\n%s", valuesFile, err, out)
	}
	docs, err := yamlDocuments(strings.NewReader(out))
	if err != nil {
		t.Fatalf("helm template -f %s: not YAML: %v\n%s", valuesFile, err, out)
	}
	var r rendered
	for _, doc := range docs {
		obj, err := decodeStrict(doc)
		if err != nil {
			t.Errorf("%s: %v", valuesFile, err)
			continue
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			if r.deployment != nil {
				t.Errorf("%s: two Deployments", valuesFile)
			}
			r.deployment = o
		case *corev1.ConfigMap:
			r.configMap = o
		case *corev1.Service:
			r.service = o
		case *corev1.ServiceAccount:
			r.account = o
		case *corev1.PersistentVolumeClaim:
			r.pvcs = append(r.pvcs, o)
		case *policyv1.PodDisruptionBudget:
			r.pdbs = append(r.pdbs, o)
		case *networkingv1.NetworkPolicy:
			r.policies = append(r.policies, o)
		case *networkingv1.Ingress:
			r.ingresses = append(r.ingresses, o)
		case *serviceMonitor:
			r.monitors = append(r.monitors, o)
		case *corev1.Secret:
			r.secrets = append(r.secrets, o)
		}
	}
	if r.deployment == nil || r.configMap == nil || r.service == nil || r.account == nil {
		t.Fatalf("%s: want a Deployment, a ConfigMap, a Service and a ServiceAccount", valuesFile)
	}
	return r
}

// chartValues is what the tests read of a values example.
type chartValues struct {
	Store struct {
		Driver string `yaml:"driver"`
	} `yaml:"store"`
	ExistingSecret string `yaml:"existingSecret"`
	ServiceMonitor struct {
		Enabled bool `yaml:"enabled"`
	} `yaml:"serviceMonitor"`
	Ingress struct {
		Enabled bool `yaml:"enabled"`
	} `yaml:"ingress"`
}

// referenceDeployment is today's plain manifest for a store: the chart's
// security context must be the same.
func referenceDeployment(t *testing.T, driver string) *appsv1.Deployment {
	t.Helper()
	file := map[string]string{"bolt": "bolt/deployment.yaml", "dynamodb": "deployment.yaml"}[driver]
	for _, m := range readManifests(t) {
		if m.file == file && m.kind() == "Deployment" {
			obj, err := decodeStrict(m.doc)
			if err != nil {
				t.Fatal(err)
			}
			return obj.(*appsv1.Deployment)
		}
	}
	t.Fatalf("no Deployment in %s", file)
	return nil
}

// TestHelmChartValuesExamples lints the chart and renders it with each
// values example (helm/approvalbot/ci/*.yaml): every document decodes
// strictly into its k8s.io/api type, and the objects hold what the store
// needs.
func TestHelmChartValuesExamples(t *testing.T) {
	t.Parallel()
	if out, err := runHelm(t, "lint", "--strict", "--kube-version", kubeVersion, chartDir); err != nil {
		t.Errorf("helm lint --strict (default values): %v\n%s", err, out)
	}
	examples, _ := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	drivers := map[string]bool{}
	for _, file := range examples {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var v chartValues
		if err := yaml.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		drivers[v.Store.Driver] = true
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			if out, err := runHelm(t, "lint", "--strict", "--kube-version", kubeVersion, chartDir, "-f", file); err != nil {
				t.Errorf("helm lint --strict -f %s: %v\n%s", file, err, out)
			}
			checkRendered(t, v, renderChart(t, file))
		})
	}
	for _, d := range []string{"bolt", "dynamodb"} {
		if !drivers[d] {
			t.Errorf("no values example in %s/ci with store.driver %s", chartDir, d)
		}
	}
}

func checkRendered(t *testing.T, v chartValues, r rendered) {
	d := r.deployment
	pod := d.Spec.Template
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !selector.Matches(labels.Set(pod.Labels)) {
		t.Errorf("the Deployment's selector does not select its pods: %v", err)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]

	switch v.Store.Driver {
	case "bolt":
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
			t.Errorf("bolt: replicas %v, want 1: bolt is a file one process may open", d.Spec.Replicas)
		}
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("bolt: strategy %q, want Recreate", d.Spec.Strategy.Type)
		}
		if len(r.pdbs) != 0 {
			t.Error("bolt: a PodDisruptionBudget with one replica blocks every node drain")
		}
		if len(r.pvcs) != 1 {
			t.Fatalf("bolt: %d PersistentVolumeClaims, want 1", len(r.pvcs))
		}
		claimed := false
		for _, vol := range pod.Spec.Volumes {
			if vol.PersistentVolumeClaim != nil && vol.PersistentVolumeClaim.ClaimName == r.pvcs[0].Name {
				claimed = slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == vol.Name && m.MountPath == "/data" })
			}
		}
		if !claimed {
			t.Errorf("bolt: the claim %s is not mounted at /data", r.pvcs[0].Name)
		}
	case "dynamodb":
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Errorf("dynamodb: replicas %v, want at least 2", d.Spec.Replicas)
		}
		if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
			t.Errorf("dynamodb: strategy %q, want RollingUpdate", d.Spec.Strategy.Type)
		}
		if len(r.pvcs) != 0 {
			t.Error("dynamodb: a PersistentVolumeClaim the store does not use")
		}
		if len(r.pdbs) != 1 {
			t.Fatalf("dynamodb: %d PodDisruptionBudgets, want 1", len(r.pdbs))
		}
		if s, err := metav1.LabelSelectorAsSelector(r.pdbs[0].Spec.Selector); err != nil || !s.Matches(labels.Set(pod.Labels)) {
			t.Errorf("dynamodb: the PodDisruptionBudget does not select the pods (%v)", err)
		}
		if r.account.Annotations["eks.amazonaws.com/role-arn"] == "" {
			t.Error("dynamodb: the ServiceAccount has no eks.amazonaws.com/role-arn annotation (the table's IAM role)")
		}
	default:
		t.Fatalf("store.driver %q", v.Store.Driver)
	}
	if pod.Spec.ServiceAccountName != r.account.Name {
		t.Errorf("the pods run as %q, not the chart's ServiceAccount %q", pod.Spec.ServiceAccountName, r.account.Name)
	}

	// The secrets come from the Secret the values name; the chart makes none.
	if len(r.secrets) != 0 {
		t.Error("the chart renders a Secret: secrets must come from an existing one")
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != v.ExistingSecret {
		t.Errorf("envFrom %+v, want the Secret %q", c.EnvFrom, v.ExistingSecret)
	}

	// Probes, on the container's http port.
	for name, p := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.String() != "http" {
			t.Errorf("probe %s: %+v", name, p)
		}
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("ports %+v, want http 8080", c.Ports)
	}

	// The security context of today's manifests.
	ref := referenceDeployment(t, v.Store.Driver)
	if !reflect.DeepEqual(pod.Spec.SecurityContext, ref.Spec.Template.Spec.SecurityContext) {
		t.Errorf("pod securityContext %+v, want deploy/'s %+v", pod.Spec.SecurityContext, ref.Spec.Template.Spec.SecurityContext)
	}
	if !reflect.DeepEqual(c.SecurityContext, ref.Spec.Template.Spec.Containers[0].SecurityContext) {
		t.Errorf("container securityContext %+v, want deploy/'s", c.SecurityContext)
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Error("the service account token is mounted: the bot never calls the Kubernetes API")
	}
	checkMemory(t, c)

	// The configuration: the store the values chose, every key known to
	// the bot.
	file := filepath.Join(t.TempDir(), "approvalbot.yaml")
	if err := os.WriteFile(file, []byte(r.configMap.Data["approvalbot.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Errorf("the ConfigMap's approvalbot.yaml does not load: %v", err)
	} else if cfg.Store.Driver != v.Store.Driver || cfg.Server.Listen != ":8080" {
		t.Errorf("the ConfigMap sets store.driver %q and server.listen %q, want %q and :8080", cfg.Store.Driver, cfg.Server.Listen, v.Store.Driver)
	}

	// The Service reaches the pods' http port.
	if !labels.SelectorFromSet(r.service.Spec.Selector).Matches(labels.Set(pod.Labels)) {
		t.Error("the Service does not select the pods")
	}
	if len(r.service.Spec.Ports) != 1 || r.service.Spec.Ports[0].TargetPort.String() != "http" || r.service.Spec.Ports[0].Name != "http" {
		t.Errorf("Service ports %+v, want one named http to the pods' http", r.service.Spec.Ports)
	}

	checkNetworkPolicies(t, r, pod.Labels)
	checkIngresses(t, v, r)

	// The ServiceMonitor scrapes /metrics through the Service's http port.
	if v.ServiceMonitor.Enabled != (len(r.monitors) == 1) {
		t.Errorf("serviceMonitor.enabled %v, %d ServiceMonitors", v.ServiceMonitor.Enabled, len(r.monitors))
	}
	for _, m := range r.monitors {
		s, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
		if err != nil || !s.Matches(labels.Set(r.service.Labels)) {
			t.Errorf("the ServiceMonitor does not select the Service (%v)", err)
		}
		if len(m.Spec.Endpoints) != 1 || m.Spec.Endpoints[0].Port != "http" || m.Spec.Endpoints[0].Path != "/metrics" {
			t.Errorf("ServiceMonitor endpoints %+v, want port http, path /metrics", m.Spec.Endpoints)
		}
	}
}

func checkMemory(t *testing.T, c corev1.Container) {
	t.Helper()
	limit := c.Resources.Limits.Memory().Value()
	for _, e := range c.Env {
		if e.Name != "GOMEMLIMIT" {
			continue
		}
		soft, err := goMemLimitBytes(e.Value)
		if err != nil || soft > limit*9/10 || soft < limit/2 {
			t.Errorf("GOMEMLIMIT %s (%v) is not 50–90%% of limits.memory %d", e.Value, err, limit)
		}
		return
	}
	t.Error("no GOMEMLIMIT")
}

func checkNetworkPolicies(t *testing.T, r rendered, podLabels map[string]string) {
	t.Helper()
	if len(r.policies) != 1 {
		t.Fatalf("%d NetworkPolicies, want 1", len(r.policies))
	}
	np := r.policies[0]
	s, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil || len(np.Spec.PodSelector.MatchLabels) == 0 || !s.Matches(labels.Set(podLabels)) {
		t.Errorf("the NetworkPolicy does not select exactly the pods (%v)", err)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || len(np.Spec.Ingress) == 0 {
		t.Error("the NetworkPolicy restricts no ingress")
	}
	for i, rule := range np.Spec.Ingress {
		if len(rule.From) == 0 {
			t.Errorf("ingress[%d]: no from: every source may connect", i)
		}
		for j, peer := range rule.From {
			// Back to the plain manifests' shape, for their check.
			var doc map[string]any
			raw, _ := json.Marshal(peer)
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			if msg := checkPeer(doc); msg != "" {
				t.Errorf("ingress[%d].from[%d]: %s", i, j, msg)
			}
		}
		for j, p := range rule.Ports {
			if p.Port == nil || p.Port.String() != "http" || p.EndPort != nil || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) {
				t.Errorf("ingress[%d].ports[%d]: want only the http port over TCP", i, j)
			}
		}
		if len(rule.Ports) == 0 {
			t.Errorf("ingress[%d]: no ports: every port is open", i)
		}
	}
}

func checkIngresses(t *testing.T, v chartValues, r rendered) {
	t.Helper()
	if v.Ingress.Enabled != (len(r.ingresses) == 1) {
		t.Errorf("ingress.enabled %v, %d Ingresses", v.Ingress.Enabled, len(r.ingresses))
	}
	for _, ing := range r.ingresses {
		if ing.Spec.DefaultBackend != nil {
			t.Error("the Ingress has a defaultBackend: it routes every path, /v1 included")
		}
		for _, rule := range ing.Spec.Rules {
			for _, p := range rule.HTTP.Paths {
				ok := (p.Path == "/slack/" && *p.PathType == networkingv1.PathTypePrefix) || (p.Path == "/healthz" && *p.PathType == networkingv1.PathTypeExact)
				if !ok || p.Backend.Service == nil || p.Backend.Service.Name != r.service.Name {
					t.Errorf("Ingress path %s %s to %+v: only /slack/ (Prefix) and /healthz (Exact), to the Service", *p.PathType, p.Path, p.Backend.Service)
				}
			}
		}
	}
}

// TestHelmChartRefusesBrokenValues is the negative control: each values
// file of helm/testdata is a mistake that `helm template` must refuse with
// a message naming it.
func TestHelmChartRefusesBrokenValues(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"dynamodb-one-replica.yaml": "replicaCount must be at least 2",
		"dynamodb-no-region.yaml":   "store.dynamodb.region is required",
		"unknown-store.yaml":        "'/store/driver': value must be one of",
		"misspelt-key.yaml":         "existingSecrets",
	}
	files, _ := filepath.Glob("helm/testdata/*.yaml")
	if len(files) != len(want) {
		t.Errorf("%d files in helm/testdata, this test knows %d", len(files), len(want))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			out, err := runHelm(t, "template", "approvalbot", chartDir, "--kube-version", kubeVersion, "-f", file)
			if err == nil {
				t.Fatalf("helm template accepted %s", file)
			}
			if msg := want[filepath.Base(file)]; msg == "" || !strings.Contains(out, msg) {
				t.Errorf("helm template refused %s without naming %q:\n%s", file, msg, out)
			}
		})
	}
}
