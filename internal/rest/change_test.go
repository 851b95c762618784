package rest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/rest"
)

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func changeFields(body string) (*approvals.Artifact, string, error) {
	obj, err := rest.DecodeObject([]byte(body), "body")
	if err != nil {
		return nil, "", err
	}
	return rest.ChangeFields(obj)
}

func TestChangeFields(t *testing.T) {
	t.Parallel()
	a, change, err := changeFields(`{"taskId":"1","Artifact":{"Name":"app","DIGEST":"SHA256:` + strings.ToUpper(hex64) + `"},"change":" CHG0030001 "}`)
	if err != nil || a == nil || a.Name != "app" || a.Digest != "sha256:"+hex64 || change != "CHG0030001" {
		t.Fatalf("got %+v, %q, %v", a, change, err)
	}
	a, change, err = changeFields(`{"taskId":"1","artifact":null,"change":null}`)
	if err != nil || a != nil || change != "" {
		t.Fatalf("nulls: got %+v, %q, %v", a, change, err)
	}
	for name, body := range map[string]string{
		"digest too short":       `{"artifact":{"name":"app","digest":"sha256:abc"}}`,
		"digest not hex":         `{"artifact":{"name":"app","digest":"sha256:` + strings.Repeat("z", 64) + `"}}`,
		"unknown algorithm":      `{"artifact":{"name":"app","digest":"md5:` + hex64[:32] + `"}}`,
		"no name":                `{"artifact":{"digest":"sha256:` + hex64 + `"}}`,
		"no digest":              `{"artifact":{"name":"app"}}`,
		"unknown member":         `{"artifact":{"name":"app","digest":"sha256:` + hex64 + `","sha256":"x"}}`,
		"digest twice":           `{"artifact":{"name":"app","digest":"sha256:` + hex64 + `","Digest":"sha256:` + hex64 + `"}}`,
		"artifact twice":         `{"artifact":null,"ARTIFACT":null}`,
		"artifact not an object": `{"artifact":"sha256:` + hex64 + `"}`,
		"digest a number":        `{"artifact":{"name":"app","digest":1}}`,
		"change a number":        `{"change":123}`,
		"change with a query":    `{"change":"CHG1^ORnumber=CHG2"}`,
		"change twice":           `{"change":"A","Change":"B"}`,
	} {
		if _, _, err := changeFields(body); !errors.Is(err, approvals.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		} else if strings.Contains(err.Error(), "zzzz") || strings.Contains(err.Error(), "CHG2") {
			t.Errorf("%s: the error quotes the input: %v", name, err)
		}
	}
}

// FuzzChangeFields: whatever an intake's artifact and change hold, the
// reader refuses it as invalid or returns an artifact in its one spelling
// and a change number that is safe in a query and a path.
func FuzzChangeFields(f *testing.F) {
	f.Add(`{"artifact":{"name":"app","digest":"sha256:` + hex64 + `"},"change":"CHG0030001"}`)
	f.Add(`{"artifact":{"name":"acme/shop","digest":"gitCommit:` + hex64[:40] + `"},"change":"OPS-123"}`)
	f.Add(`{"artifact":{"name":"","digest":"sha256:"},"change":"a^b"}`)
	f.Add(`{"artifact":null,"change":null}`)
	f.Fuzz(func(t *testing.T, body string) {
		a, change, err := changeFields(body)
		if err != nil {
			if !errors.Is(err, approvals.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if a != nil {
			again, err := approvals.NewArtifact(a.Name, a.Digest)
			if err != nil || *again != *a {
				t.Fatalf("artifact %+v is not in its one spelling: %+v, %v", a, again, err)
			}
			if hex := a.Hex(); strings.ToLower(hex) != hex || (len(hex) != 64 && len(hex) != 40) {
				t.Fatalf("digest %q", a.Digest)
			}
		}
		if strings.ContainsAny(change, "^=&/?# \t\n%") {
			t.Fatalf("change %q could change a query or a path", change)
		}
	})
}
