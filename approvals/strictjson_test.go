package approvals_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
)

// TestReceiptStrictJSON: a genuine receipt with a key written twice (at
// the top, in an object inside it, in an array's object; first or last;
// spelt with escapes), an unknown field (at any level, or a known one in
// another case) or anything after it is refused, and the genuine one
// passes, with white space around it.
func TestReceiptStrictJSON(t *testing.T) {
	t.Parallel()
	task, pub, _ := decidedWithReceipt(t)
	r, _ := approvals.ReceiptOf(task)
	rawb, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	raw := string(rawb)
	in := func(after, insert string) string {
		t.Helper()
		if !strings.Contains(raw, after) {
			t.Fatalf("the receipt has no %s", after)
		}
		return strings.Replace(raw, after, after+insert, 1)
	}
	for _, tc := range []struct{ name, data, want string }{
		{"duplicate key at the top, first", `{"status":"rejected",` + raw[1:], `"status" twice at the top`},
		{"duplicate key at the top, last", raw[:len(raw)-1] + `,"status":"rejected"}`, `"status" twice at the top`},
		{"duplicate key with the same value", `{"status":"approved",` + raw[1:], `"status" twice`},
		{"duplicate key spelt with an escape", `{"st\u0061tus":"rejected",` + raw[1:], `"status" twice`},
		{"duplicate key in an object", in(`"context":{`, `"environment":"qa",`), `"environment" twice at context`},
		{"duplicate key in an embedded struct", in(`"decidedBy":{`, `"user":"UEVE",`), `"user" twice at decidedBy`},
		{"duplicate key in an array's object", in(`"approvals":[{`, `"user":"UEVE",`), `"user" twice at approvals[0]`},
		{"duplicate key in the audit trail", in(`"audit":[{`, `"event":"rejected",`), `"event" twice at audit[0]`},
		{"unknown field at the top", `{"verdict":"rejected",` + raw[1:], "unknown field verdict"},
		{"unknown field in an object", in(`"context":{`, `"approvedBy":"UEVE",`), "unknown field context.approvedBy"},
		{"unknown field in the audit trail", in(`"audit":[{`, `"x":1,`), "unknown field audit[0].x"},
		{"known field in another case", `{"Status":"rejected",` + raw[1:], "unknown field Status"},
		{"trailing object", raw + `{}`, "more after"},
		{"trailing brace", raw + `}`, "more after"},
		{"trailing bracket", raw + `]`, "more after"},
		{"trailing receipt", raw + "\n" + raw, "more after"},
		{"trailing word", raw + ` rejected`, "more after"},
		{"not UTF-8", in(`"context":{`, "\"description\":\"\xff\","), "not UTF-8"},
		{"an array", `[` + raw + `]`, "array at the top"},
	} {
		got, err := approvals.ParseReceipt([]byte(tc.data))
		if err == nil {
			err = approvals.VerifyReceipt(got, pub)
			t.Errorf("%s: ParseReceipt took it (VerifyReceipt: %v)", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to say %q", tc.name, err, tc.want)
		}
	}
	for _, ok := range []string{raw, " \n" + raw + "\n\t "} {
		got, err := approvals.ParseReceipt([]byte(ok))
		if err != nil {
			t.Fatalf("the genuine receipt: %v", err)
		}
		if err := approvals.VerifyReceipt(got, pub); err != nil {
			t.Fatalf("the genuine receipt does not verify: %v", err)
		}
	}
}

// TestDecodeStrict: the helper on types other than a receipt: maps and
// interfaces take any key but never one twice; pointers, slices and types
// that decode themselves are followed or left to themselves.
func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	type inner struct {
		A string `json:"a"`
		B int    `json:"-"`
	}
	type doc struct {
		Inner  *inner          `json:"inner"`
		List   []inner         `json:"list,omitempty"`
		Labels map[string]int  `json:"labels"`
		Any    any             `json:"any"`
		Raw    json.RawMessage `json:"raw"`
		Plain  string
	}
	for _, tc := range []struct {
		data string
		ok   bool
	}{
		{`{"inner":{"a":"x"},"list":[{"a":"y"}],"labels":{"k":1,"l":2},"any":{"m":{"n":1}},"raw":{"q":1},"Plain":"p"}`, true},
		{`{"labels":{"k":1,"k":2}}`, false},
		{`{"any":{"m":{"n":1,"n":2}}}`, false},
		{`{"raw":{"q":1,"q":2}}`, false},
		{`{"any":[{"a":1},{"a":1,"a":2}]}`, false},
		{`{"inner":{"a":"x","B":1}}`, false},
		{`{"inner":{"b":1}}`, false},
		{`{"plain":"p"}`, false},
		{`{"list":[{"a":"y","c":1}]}`, false},
		{`{"inner":[]}`, false},
		{`{} {}`, false},
		{`{"inner":`, false},
		{``, false},
		{` {} `, true},
	} {
		var v doc
		err := approvals.DecodeStrict([]byte(tc.data), &v)
		if (err == nil) != tc.ok {
			t.Errorf("DecodeStrict(%s) = %v, want ok %v", tc.data, err, tc.ok)
		}
	}
}
