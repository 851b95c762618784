package flexdeploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/internal/rest"
)

// splitSeeds are objects and near-objects whose splitting is easy to get
// wrong: escapes, nesting, strings holding braces, odd spacing, duplicate
// keys, invalid UTF-8, trailing data.
var splitSeeds = []string{
	`{}`, ` { } `, `{"a":1}`, `{"taskId":8900,"description":"v2.3 is about to be deployed to PROD"}`,
	"{\n \"a\" : \"x\" ,\t\"b\":[1,{\"c\":\"}\"}],\"d\":{\"e\":[]} }\n",
	`{"k\"ey":"v\\\"al\u00e9","k\u0041":null,"a":true,"b":false,"n":-1.5e3}`,
	`{"a":"x","A":"y","a":"z"}`, "{\"a\":\"\xff\",\"\xfe\":1}",
	`{"a":1} {"b":2}`, `{"a":1,}`, `{"a"}`, `[1,2]`, `"str"`, ``, `{`, `{"a":"}`,
	`{"payload":{"taskId":"1","actor":{"email":"a@b.c"}},"actor":"x"}`,
}

// fuzzCorpus adds FuzzParseTask's corpus: real payloads of every shape.
func fuzzCorpus(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParseTask", "*"))
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if lit, ok := strings.CutPrefix(line, "[]byte("); ok {
				if s, err := strconv.Unquote(strings.TrimSuffix(lit, ")")); err == nil {
					f.Add([]byte(s))
				}
			}
		}
	}
}

// FuzzDecodeObject: decodeObject (its own split of valid objects) gives the
// members rest.DecodeObject gives, and fails when it fails.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range splitSeeds {
		f.Add([]byte(s))
	}
	fuzzCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := rest.DecodeObject(data, "body")
		got, gotErr := decodeObject(data, "body")
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("%q: decodeObject err %v, rest.DecodeObject err %v", data, gotErr, wantErr)
		}
		if wantErr != nil {
			if gotErr.Error() != wantErr.Error() {
				t.Fatalf("%q: error %q, want %q", data, gotErr, wantErr)
			}
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d members, want %d", data, len(got), len(want))
		}
		for i := range want {
			if got[i].Key != want[i].Key || !bytes.Equal(got[i].Raw, want[i].Raw) {
				t.Fatalf("%q: member %d is %q=%s, want %q=%s", data, i, got[i].Key, got[i].Raw, want[i].Key, want[i].Raw)
			}
		}
	})
}

// FuzzStringValue: the fast decoding of a JSON string is encoding/json's.
func FuzzStringValue(f *testing.F) {
	for _, s := range []string{`"x"`, `""`, `"a\"b"`, `"\u00e9"`, "\"\xff\"", `"tab	in"`, ` "spaced" `, `"é"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if firstByte(raw) != '"' {
			return
		}
		var exp string
		expOK := json.Unmarshal(raw, &exp) == nil
		got, ok := stringValue(raw)
		if ok != expOK || (ok && got != exp) {
			t.Fatalf("%q: stringValue = %q, %v; encoding/json %q, %v", raw, got, ok, exp, expOK)
		}
	})
}

// BenchmarkParseTask is the FlexDeploy intake's parse of a complete task.
func BenchmarkParseTask(b *testing.B) {
	body := []byte(`{"taskId":"8900","description":"v1.2.3 is about to be deployed to PROD","environment":"PROD",` +
		`"project":"payments","release":"v1.2.3","pipeline":"Standard","requestedBy":"dev@example.com"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseTask(body); err != nil {
			b.Fatal(err)
		}
	}
}
