package rest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
)

func TestDecodeObject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		data    string
		want    []Member
		wantErr string
	}{
		{name: "empty object", data: "{}"},
		{name: "in order, duplicates kept, values raw", data: ` {"b": 1, "a": {"x": [1]}, "B": "two", "b": null} `,
			want: []Member{{"b", json.RawMessage(`1`)}, {"a", json.RawMessage(`{"x": [1]}`)}, {"B", json.RawMessage(`"two"`)}, {"b", json.RawMessage(`null`)}}},
		{name: "empty", data: "", wantErr: "payload is empty; it must be a JSON object"},
		{name: "blank", data: " \n", wantErr: "payload is empty; it must be a JSON object"},
		{name: "array", data: `[{"a":1}]`, wantErr: "payload must be a JSON object"},
		{name: "string", data: `"a"`, wantErr: "payload must be a JSON object"},
		{name: "data after", data: `{} {}`, wantErr: "payload has data after the JSON object"},
		{name: "truncated", data: `{"a":"b`, wantErr: "payload is not valid JSON (it ends too early)"},
		{name: "no closing brace", data: `{"a":1`, wantErr: "payload is not valid JSON (it ends too early)"},
		{name: "bad value", data: `{"a":tru}`, wantErr: "payload is not valid JSON (at byte"},
		{name: "not JSON", data: `a=1`, wantErr: "payload is not valid JSON (at byte 1)"},
		{name: "key not a string", data: `{1:2}`, wantErr: "payload is not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeObject([]byte(tc.data), "payload")
			if tc.wantErr != "" {
				if !errors.Is(err, approvals.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want ErrInvalid saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeObject: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("members = %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i].Key != tc.want[i].Key || string(got[i].Raw) != string(tc.want[i].Raw) {
					t.Errorf("member %d = %s: %s, want %s: %s", i, got[i].Key, got[i].Raw, tc.want[i].Key, tc.want[i].Raw)
				}
			}
		})
	}
}

// TestDecodeObjectErrorsDoNotQuote checks that errors say where, never what.
func TestDecodeObjectErrorsDoNotQuote(t *testing.T) {
	t.Parallel()
	for _, data := range []string{`SECRET`, `{"SECRET"}`, `{"a":SECRET}`, `{"a":1} SECRET`, `["SECRET"]`, `{"a":"SECRET`} {
		_, err := DecodeObject([]byte(data), "body")
		if err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("DecodeObject(%q) = %v", data, err)
		}
	}
}

func FuzzDecodeObject(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `{"a":1}`, `{"a":1,"A":2}`, `{"a":{"b":[1,2]}}`, `{"a":1} {}`,
		`{"a":"\u00e9\u0000"}`, `{"a":`, `{"a" 1}`, `{,}`, "\ufeff{}", ` {"x" : "y" } `,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := DecodeObject(data, "body")
		if err != nil {
			if !errors.Is(err, approvals.ErrInvalid) {
				t.Fatalf("error %v does not wrap approvals.ErrInvalid", err)
			}
			return
		}
		// What it accepts is one JSON object, and each value is valid JSON.
		var whole map[string]json.RawMessage
		if err := json.Unmarshal(data, &whole); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", data, err)
		}
		for _, m := range obj {
			if !json.Valid(m.Raw) {
				t.Fatalf("member %q has an invalid raw value %q", m.Key, m.Raw)
			}
			if _, ok := whole[m.Key]; !ok {
				t.Fatalf("member %q is not a key of the object", m.Key)
			}
		}
	})
}

func TestTextValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw, want string
		quoted    bool
		err       string
	}{
		{raw: `" v1.2 "`, want: "v1.2", quoted: true},
		{raw: `2.10`, want: "2.10"},
		{raw: `-3`, want: "-3"},
		{raw: ` null `, want: ""},
		{raw: `"\ud800"`, want: "\uFFFD", quoted: true},
		{raw: `true`, err: "release must be a string"},
		{raw: `{}`, err: "release must be a string"},
		{raw: ``, err: "release must be a string"},
	} {
		got, quoted, err := TextValue("release", json.RawMessage(tc.raw))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, approvals.ErrInvalid) {
				t.Errorf("%s: err %v, want %q", tc.raw, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want || quoted != tc.quoted {
			t.Errorf("%s: %q, %v, %v; want %q, %v", tc.raw, got, quoted, err, tc.want, tc.quoted)
		}
	}
}

func TestCheckLink(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{"", true},
		{"https://ci.example.com/job/1", true},
		{"http://ci.example.com", true},
		{"ftp://ci.example.com", false},
		{"/job/1", false},
		{"https://ci.example.com/a b", false},
		{"https://ci.example.com/" + strings.Repeat("x", 30), false},
	} {
		got, err := CheckLink(tc.s, 40)
		if (err == nil) != tc.ok || (tc.ok && got != tc.s) {
			t.Errorf("%q: %q, %v; want ok %v", tc.s, got, err, tc.ok)
		}
	}
}
