package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// the chart renders; its CRD is not in k8s.io/api, so a field outside this
// subset is refused as unknown, as a misspelt field of the others is.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// kubeTypes are the objects deploy/ and the chart may hold, by apiVersion
// and kind; anything else is an error.
var kubeTypes = map[string]func() any{
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"v1/PersistentVolumeClaim":                func() any { return &corev1.PersistentVolumeClaim{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return &networkingv1.NetworkPolicy{} },
	"networking.k8s.io/v1/Ingress":            func() any { return &networkingv1.Ingress{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &serviceMonitor{} },
}

// decodeStrict decodes one YAML document into its k8s.io/api type, as the
// API server's strict field validation would: an unknown or misspelt field,
// or a value of the wrong type, is an error.
func decodeStrict(doc map[string]any) (any, error) {
	apiVersion, _ := doc["apiVersion"].(string)
	kind, _ := doc["kind"].(string)
	newObj, ok := kubeTypes[apiVersion+"/"+kind]
	if !ok {
		return nil, fmt.Errorf("%s %s: not a kind this test knows", apiVersion, kind)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	obj := newObj()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return nil, fmt.Errorf("%s %s: %w", apiVersion, kind, err)
	}
	return obj, nil
}

// yamlDocuments splits a multi-document YAML stream, skipping empty
// documents (a template that renders nothing).
func yamlDocuments(r io.Reader) ([]map[string]any, error) {
	var out []map[string]any
	dec := yaml.NewDecoder(r)
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		if doc != nil {
			out = append(out, doc)
		}
	}
}

// TestManifestsDecodeStrictly: every plain manifest of deploy/ is a valid
// object of its Kubernetes type, no field unknown.
func TestManifestsDecodeStrictly(t *testing.T) {
	t.Parallel()
	for _, m := range readManifests(t) {
		if _, err := decodeStrict(m.doc); err != nil {
			t.Errorf("%s: %s %s: %v", m.file, m.kind(), m.name(), err)
		}
	}
}

// TestDecodeStrictRefusesTypos is the negative control of the decoding:
// a misspelt field, a wrong type and an unknown kind are each refused.
func TestDecodeStrictRefusesTypos(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"misspelt field": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n        - name: x\n          readinesProbes: {}\n",
		"wrong type":     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: two\n",
		"unknown kind":   "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n",
		"monitor field":  "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec:\n  endpoints:\n    - port: http\n      scrapeIntervall: 30s\n",
	} {
		docs, err := yamlDocuments(bytes.NewReader([]byte(doc)))
		if err != nil || len(docs) != 1 {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := decodeStrict(docs[0]); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}
