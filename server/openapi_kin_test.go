package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// kinSpec is api/openapi.yaml as kin-openapi reads it: requests and
// answers are validated against it with openapi3filter, a validator
// clients use too, rather than a checker of this project's own.
type kinSpec struct {
	doc    *openapi3.T
	router routers.Router
}

func loadKinSpec(t *testing.T) *kinSpec {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(specPath)
	if err != nil {
		t.Fatalf("%s: %v", specPath, err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("%s: kin-openapi: %v", specPath, err)
	}
	// The test servers listen on loopback ports the spec's server URL
	// cannot name: route by path alone (no servers).
	routed := *doc
	routed.Servers = nil
	router, err := legacy.NewRouter(&routed)
	if err != nil {
		t.Fatalf("%s: router: %v", specPath, err)
	}
	return &kinSpec{doc: doc, router: router}
}

// filterOptions: the security schemes are the server's business (the tests
// send right and wrong keys and signatures on purpose); every problem is
// reported, and an undocumented status is one.
var filterOptions = &openapi3filter.Options{
	AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
	IncludeResponseStatus: true,
	MultiError:            true,
}

// requestInput finds the operation of req and makes the input of both
// validations; req's body is body.
func (k *kinSpec) requestInput(req *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := k.router.FindRoute(r)
	if err != nil {
		return nil, fmt.Errorf("no operation of the spec for %s %s: %w", req.Method, req.URL.Path, err)
	}
	return &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: filterOptions}, nil
}

// validateRequest checks a request the server accepted against its
// operation: parameters, headers, cookies and body.
func (k *kinSpec) validateRequest(req *http.Request, body []byte) []string {
	in, err := k.requestInput(req, body)
	if err != nil {
		return []string{err.Error()}
	}
	return problemsOf("request", openapi3filter.ValidateRequest(context.Background(), in))
}

// validateResponse checks an answer against the documented response of
// its operation and status: headers and body.
func (k *kinSpec) validateResponse(req *http.Request, reqBody []byte, a answer) []string {
	in, err := k.requestInput(req, reqBody)
	if err != nil {
		return []string{err.Error()}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 a.status,
		Header:                 a.header,
		Options:                filterOptions,
	}
	out.SetBodyBytes(a.body)
	return problemsOf(fmt.Sprintf("%d", a.status), openapi3filter.ValidateResponse(context.Background(), out))
}

func problemsOf(what string, err error) []string {
	if err == nil {
		return nil
	}
	var multi openapi3.MultiError
	if errors.As(err, &multi) {
		var out []string
		for _, e := range multi {
			out = append(out, what+": "+strings.ReplaceAll(e.Error(), "\n", " "))
		}
		return out
	}
	return []string{what + ": " + strings.ReplaceAll(err.Error(), "\n", " ")}
}

// drift holds the spec and the server to each other beyond validity, which
// a validator leaves to the schema: an answer carries no property its
// schema does not declare (the schemas stay open for clients, so a
// validator accepts one), and every declared property of the schemas
// named in seen is carried by some answer.
type drift struct {
	seen map[string]bool // "Schema.property"
}

// properties are the properties a schema declares, its allOf parts'
// included, each with the name of the component that declares it.
func properties(ref *openapi3.SchemaRef, name string) map[string]struct {
	schema *openapi3.SchemaRef
	owner  string
} {
	out := map[string]struct {
		schema *openapi3.SchemaRef
		owner  string
	}{}
	if ref == nil || ref.Value == nil {
		return out
	}
	if ref.Ref != "" {
		name = ref.Ref[strings.LastIndex(ref.Ref, "/")+1:]
	}
	for k, p := range ref.Value.Properties {
		out[k] = struct {
			schema *openapi3.SchemaRef
			owner  string
		}{p, name}
	}
	for _, part := range ref.Value.AllOf {
		for k, p := range properties(part, "") {
			out[k] = p
		}
	}
	return out
}

// check walks v with its schema and returns the undeclared properties.
func (d *drift) check(ref *openapi3.SchemaRef, v any, at string) []string {
	if ref == nil || ref.Value == nil {
		return nil
	}
	s := ref.Value
	var problems []string
	// Of the alternatives, those v is valid against say what it is.
	for _, alts := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf} {
		for _, alt := range alts {
			if alt.Value.VisitJSON(v) == nil {
				problems = append(problems, d.check(alt, v, at)...)
			}
		}
	}
	switch val := v.(type) {
	case map[string]any:
		declared := properties(ref, "")
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range val {
				if !yield(k) {
					return
				}
			}
		}) {
			if p, ok := declared[k]; ok {
				if p.owner != "" {
					d.seen[p.owner+"."+k] = true
				}
				problems = append(problems, d.check(p.schema, val[k], at+"."+k)...)
				continue
			}
			switch {
			case s.AdditionalProperties.Schema != nil:
				problems = append(problems, d.check(s.AdditionalProperties.Schema, val[k], at+"."+k)...)
			case s.AdditionalProperties.Has != nil:
				// Declared open or closed: the validator judged it.
			case len(declared) > 0:
				problems = append(problems, fmt.Sprintf("%s: property %q is not in the spec", at, k))
			}
		}
	case []any:
		if s.Items != nil {
			for i, item := range val {
				problems = append(problems, d.check(s.Items, item, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return problems
}

// responseSchema is the documented schema of an answer's body.
func (k *kinSpec) responseSchema(req *http.Request, status int, mediaType string) *openapi3.SchemaRef {
	route, _, err := k.router.FindRoute(req)
	if err != nil || route.Operation == nil || route.Operation.Responses == nil {
		return nil
	}
	resp := route.Operation.Responses.Status(status)
	if resp == nil || resp.Value == nil {
		return nil
	}
	if media := resp.Value.Content.Get(mediaType); media != nil {
		return media.Schema
	}
	return nil
}
