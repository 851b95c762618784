package flexdeploy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/approvalbot/approvalbot/approvals"
)

const fixtureDir = "../testdata/flexdeploy"

// parseCase is what ParseTask must make of a body: the submission, or an
// error whose message contains wantErr.
type parseCase struct {
	want    approvals.Submission
	wantErr string
}

func submission(taskID string, ctx approvals.Context) approvals.Submission {
	return approvals.Submission{Source: "flexdeploy", TaskID: taskID, Context: ctx}
}

// fixtureCases covers every file in testdata/flexdeploy; TestParseTaskFixtures
// fails on a fixture missing here, so none is silently untested.
var fixtureCases = map[string]parseCase{
	"poc.json": {want: submission("8900", approvals.Context{
		Description: "v2.3 is about to be deployed to PROD",
	})},
	"numeric_id.json": {want: submission("8900", approvals.Context{
		Description: "v2.3 is about to be deployed to PROD",
		Environment: "PROD",
	})},
	"camelcase_full.json": {want: submission("10452", approvals.Context{
		Description: "Release 2026.11 of Payments is about to be deployed to Production",
		Environment: "Production",
		Project:     "payments-api",
		Release:     "2026.11",
		Pipeline:    "Standard Release Pipeline",
		Stage:       "PROD",
		RequestedBy: "jane.smith@example.com",
		URL:         "https://fd.internal:8000/flexdeploy/faces/tasks?taskId=10452",
	})},
	"flexdeploy_names.json": {want: submission("10453", approvals.Context{
		Environment: "Production",
		Project:     "payments-api",
		Release:     "2026.11",
		Pipeline:    "Standard Release Pipeline",
	})},
	"uppercase_keys.json": {want: submission("8901", approvals.Context{
		Description: "hotfix 2.3.1 to PROD",
		Environment: "PROD",
		RequestedBy: "bob",
	})},
	"webhook_task_created.json": {want: submission("10460", approvals.Context{
		Description: "Release 2026.11 is waiting for approval to deploy to Production",
		Environment: "Production",
		Project:     "payments-api",
		Release:     "2026.11",
		Pipeline:    "Standard Release Pipeline",
		Stage:       "Production",
		RequestedBy: "jane.smith@example.com", // the actor's email before its name
	})},
	"webhook_actor_string.json": {want: submission("10461", approvals.Context{
		Description: "QA sign-off",
		Environment: "QA",
		RequestedBy: "fdadmin",
	})},
	"bad_missing_taskid.json":         {wantErr: "taskId is required"},
	"bad_fractional_taskid.json":      {wantErr: "taskId must be a whole number"},
	"bad_boolean_taskid.json":         {wantErr: "taskId must be a string or a whole number"},
	"bad_blank_taskid.json":           {wantErr: "taskId must not be empty"},
	"bad_url_scheme.json":             {wantErr: "url must be an absolute http or https URL"},
	"bad_not_object.json":             {wantErr: "body must be a JSON object"},
	"bad_trailing_data.json":          {wantErr: "body has data after the JSON object"},
	"bad_field_type.json":             {wantErr: "environment must be a string or a number"},
	"bad_payload_not_object.json":     {wantErr: "payload must be a JSON object"},
	"bad_webhook_missing_taskid.json": {wantErr: "taskId is required"},
	"bad_truncated.json":              {wantErr: "body is not valid JSON"},
}

func TestParseTaskFixtures(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no fixtures in %s", fixtureDir)
	}
	seen := map[string]bool{}
	for _, file := range files {
		name := filepath.Base(file)
		seen[name] = true
		tc, ok := fixtureCases[name]
		if !ok {
			t.Errorf("fixture %s has no expected result in fixtureCases", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			checkParse(t, body, tc)
		})
	}
	for name := range fixtureCases {
		if !seen[name] {
			t.Errorf("fixtureCases names %s, which is not in %s", name, fixtureDir)
		}
	}
}

func TestParseTaskInline(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 257)
	tests := []struct {
		name string
		body string
		parseCase
	}{
		// Task ids.
		{name: "id lower case", body: `{"taskid":"1"}`, parseCase: parseCase{want: submission("1", approvals.Context{})}},
		{name: "id camel case", body: `{"taskId":"1"}`, parseCase: parseCase{want: submission("1", approvals.Context{})}},
		{name: "id upper case", body: `{"TASKID":"1"}`, parseCase: parseCase{want: submission("1", approvals.Context{})}},
		{name: "id number", body: `{"taskId":8900}`, parseCase: parseCase{want: submission("8900", approvals.Context{})}},
		{name: "id number with .0", body: `{"taskId":8900.0}`, parseCase: parseCase{want: submission("8900", approvals.Context{})}},
		{name: "id number with exponent", body: `{"taskId":8.9e3}`, parseCase: parseCase{want: submission("8900", approvals.Context{})}},
		{name: "id number with negative exponent", body: `{"taskId":89000E-1}`, parseCase: parseCase{want: submission("8900", approvals.Context{})}},
		{name: "id zero", body: `{"taskId":0}`, parseCase: parseCase{want: submission("0", approvals.Context{})}},
		{name: "id beyond float64 precision", body: `{"taskId":12345678901234567890123}`, parseCase: parseCase{want: submission("12345678901234567890123", approvals.Context{})}},
		{name: "numeric id string is canonical", body: `{"taskId":" 008900 "}`, parseCase: parseCase{want: submission("8900", approvals.Context{})}},
		{name: "id of 256 chars", body: `{"taskId":"` + long[:256] + `"}`, parseCase: parseCase{want: submission(long[:256], approvals.Context{})}},
		{name: "id non-integer", body: `{"taskId":1.5}`, parseCase: parseCase{wantErr: "taskId must be a whole number"}},
		{name: "id non-integer by exponent", body: `{"taskId":15e-1}`, parseCase: parseCase{wantErr: "taskId must be a whole number"}},
		{name: "id negative", body: `{"taskId":-3}`, parseCase: parseCase{wantErr: "taskId must not be negative"}},
		{name: "id huge exponent", body: `{"taskId":1e999999999}`, parseCase: parseCase{wantErr: "taskId is not a whole number of at most 256 digits"}},
		{name: "id too many digits", body: `{"taskId":1e300}`, parseCase: parseCase{wantErr: "taskId is longer than 256 characters"}},
		{name: "id boolean", body: `{"taskId":false}`, parseCase: parseCase{wantErr: "taskId must be a string or a whole number"}},
		{name: "id object", body: `{"taskId":{"id":1}}`, parseCase: parseCase{wantErr: "taskId must be a string or a whole number"}},
		{name: "id array", body: `{"taskId":["1"]}`, parseCase: parseCase{wantErr: "taskId must be a string or a whole number"}},
		{name: "id empty", body: `{"taskId":""}`, parseCase: parseCase{wantErr: "taskId must not be empty"}},
		{name: "id whitespace", body: `{"taskId":" \t\n "}`, parseCase: parseCase{wantErr: "taskId must not be empty"}},
		{name: "id null", body: `{"taskId":null}`, parseCase: parseCase{wantErr: "taskId is required"}},
		{name: "id too long", body: `{"taskId":"` + long + `"}`, parseCase: parseCase{wantErr: "taskId is longer than 256 characters"}},
		{name: "id control character", body: `{"taskId":"89\u000000"}`, parseCase: parseCase{wantErr: "taskId must not contain control characters"}},
		{name: "id given twice", body: `{"taskId":"1","TASKID":"2"}`, parseCase: parseCase{wantErr: "taskId is given more than once"}},

		// Fields.
		{name: "numbers as text", body: `{"taskId":"1","release":2.10,"stage":3}`,
			parseCase: parseCase{want: submission("1", approvals.Context{Release: "2.10", Stage: "3"})}},
		{name: "null is absent", body: `{"taskId":"1","description":null,"url":null}`,
			parseCase: parseCase{want: submission("1", approvals.Context{})}},
		{name: "plain name wins over alias", body: `{"environmentName":"Production","taskId":"1","environment":"PROD","PROJECTNAME":"p2","project":"p1","releaseName":"r2","release":"r1","pipeline":"x1","pipelineName":"x2"}`,
			parseCase: parseCase{want: submission("1", approvals.Context{Environment: "PROD", Project: "p1", Release: "r1", Pipeline: "x1"})}},
		{name: "alias used when plain is blank", body: `{"taskId":"1","environment":"  ","environmentName":"QA"}`,
			parseCase: parseCase{want: submission("1", approvals.Context{Environment: "QA"})}},
		{name: "unknown fields ignored", body: `{"taskId":"1","links":[{"href":"x"}],"status":"PENDING","nested":{"a":true}}`,
			parseCase: parseCase{want: submission("1", approvals.Context{})}},
		{name: "long field capped", body: `{"taskId":"1","description":"` + strings.Repeat("é", 2100) + `"}`,
			parseCase: parseCase{want: submission("1", approvals.Context{Description: strings.Repeat("é", 2000)})}},
		{name: "http url", body: `{"taskId":"1","url":"http://fd/x"}`,
			parseCase: parseCase{want: submission("1", approvals.Context{URL: "http://fd/x"})}},
		{name: "boolean field", body: `{"taskId":"1","stage":true}`, parseCase: parseCase{wantErr: "stage must be a string or a number"}},
		{name: "array field", body: `{"taskId":"1","requestedBy":["a"]}`, parseCase: parseCase{wantErr: "requestedBy must be a string or a number"}},
		{name: "alias of wrong type", body: `{"taskId":"1","releaseName":{}}`, parseCase: parseCase{wantErr: "releaseName must be a string or a number"}},
		{name: "url number", body: `{"taskId":"1","url":5}`, parseCase: parseCase{wantErr: "url must be a string"}},
		{name: "url relative", body: `{"taskId":"1","url":"/tasks/1"}`, parseCase: parseCase{wantErr: "url must be an absolute http or https URL"}},
		{name: "url ftp", body: `{"taskId":"1","url":"ftp://fd/x"}`, parseCase: parseCase{wantErr: "url must be an absolute http or https URL"}},
		{name: "url too long", body: `{"taskId":"1","url":"https://fd/` + strings.Repeat("a", 2000) + `"}`, parseCase: parseCase{wantErr: "url is longer than 2000 characters"}},
		{name: "field given twice", body: `{"taskId":"1","stage":"a","Stage":"b"}`, parseCase: parseCase{wantErr: "stage is given more than once"}},

		// Envelope.
		{name: "envelope actor object email", body: `{"actor":{"email":"a@example.com","userName":"a"},"payload":{"taskId":7}}`,
			parseCase: parseCase{want: submission("7", approvals.Context{RequestedBy: "a@example.com"})}},
		{name: "envelope actor object userName", body: `{"actor":{"name":"","userName":"jsmith","userId":5},"payload":{"taskId":7}}`,
			parseCase: parseCase{want: submission("7", approvals.Context{RequestedBy: "jsmith"})}},
		{name: "envelope requestedBy wins over actor", body: `{"actor":"fdadmin","payload":{"taskId":7,"requestedBy":"jane"}}`,
			parseCase: parseCase{want: submission("7", approvals.Context{RequestedBy: "jane"})}},
		{name: "envelope actor of other type ignored", body: `{"actor":42,"payload":{"taskId":7}}`,
			parseCase: parseCase{want: submission("7", approvals.Context{})}},
		{name: "envelope null payload reads the top level", body: `{"taskId":7,"payload":null}`,
			parseCase: parseCase{want: submission("7", approvals.Context{})}},
		{name: "envelope payload keys any case", body: `{"PAYLOAD":{"TaskID":"7","EnvironmentName":"PROD"}}`,
			parseCase: parseCase{want: submission("7", approvals.Context{Environment: "PROD"})}},
		{name: "actor without payload is ignored", body: `{"taskId":7,"actor":"fdadmin"}`,
			parseCase: parseCase{want: submission("7", approvals.Context{})}},
		{name: "envelope payload array", body: `{"payload":[{"taskId":7}]}`, parseCase: parseCase{wantErr: "payload must be a JSON object"}},
		{name: "envelope payload twice", body: `{"payload":{"taskId":7},"Payload":{"taskId":8}}`, parseCase: parseCase{wantErr: "payload is given more than once"}},
		{name: "envelope bad field in payload", body: `{"payload":{"taskId":7,"url":"mailto:x@y"}}`, parseCase: parseCase{wantErr: "url must be an absolute http or https URL"}},

		// Body shape.
		{name: "empty body", body: ``, parseCase: parseCase{wantErr: "body is empty"}},
		{name: "whitespace body", body: " \n", parseCase: parseCase{wantErr: "body is empty"}},
		{name: "string body", body: `"8900"`, parseCase: parseCase{wantErr: "body must be a JSON object"}},
		{name: "null body", body: `null`, parseCase: parseCase{wantErr: "body must be a JSON object"}},
		{name: "trailing garbage", body: `{"taskId":"1"} x`, parseCase: parseCase{wantErr: "body has data after the JSON object"}},
		{name: "trailing whitespace is fine", body: "{\"taskId\":\"1\"}\n\n", parseCase: parseCase{want: submission("1", approvals.Context{})}},
		{name: "syntax error", body: `{"taskId" "1"}`, parseCase: parseCase{wantErr: "body is not valid JSON"}},
		{name: "form encoded", body: `taskid=8900&description=x`, parseCase: parseCase{wantErr: "body is not valid JSON"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkParse(t, []byte(tc.body), tc.parseCase)
		})
	}
}

func checkParse(t *testing.T, body []byte, tc parseCase) {
	t.Helper()
	got, err := ParseTask(body)
	if tc.wantErr != "" {
		if err == nil {
			t.Fatalf("ParseTask = %+v, want an error containing %q", got, tc.wantErr)
		}
		if !errors.Is(err, approvals.ErrInvalid) {
			t.Errorf("error %v does not wrap approvals.ErrInvalid", err)
		}
		if !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("error %q does not contain %q", err, tc.wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("ParseTask: %v", err)
	}
	if got.Source != tc.want.Source || got.TaskID != tc.want.TaskID || got.Context != tc.want.Context {
		t.Errorf("ParseTask =\n  %+v\nwant\n  %+v", got, tc.want)
	}
	if got.Secret != nil || got.Extra != nil {
		t.Errorf("ParseTask set Secret or Extra: %+v", got)
	}
}

// TestParseTaskErrorsDoNotEchoInput keeps user-controlled text out of error
// messages, which the intake answers and logs.
func TestParseTaskErrorsDoNotEchoInput(t *testing.T) {
	t.Parallel()
	const marker = "SECRET-MARKER-do-not-echo"
	bodies := []string{
		`{"taskId":"` + marker + strings.Repeat("x", 300) + `"}`,
		`{"taskId":"1","url":"javascript:` + marker + `"}`,
		`{"taskId":"1","environment":{"` + marker + `":1}}`,
		`{"` + marker + `":1} trailing ` + marker,
		`{"taskId": ` + marker + `}`,
		`[` + marker + `]`,
		marker,
	}
	for _, body := range bodies {
		_, err := ParseTask([]byte(body))
		if err == nil {
			t.Errorf("ParseTask(%.40q) succeeded, want an error", body)
			continue
		}
		if strings.Contains(err.Error(), "MARKER") || len(err.Error()) > 120 {
			t.Errorf("error for %.40q echoes input or is long: %q", body, err)
		}
	}
}

func TestWholeNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lit, want string
		ok        bool
	}{
		{"0", "0", true},
		{"-0", "0", true},
		{"0.000e5", "0", true},
		{"7", "7", true},
		{"10", "10", true},
		{"100e-2", "1", true},
		{"1.25e2", "125", true},
		{"1.250E+2", "125", true},
		{"1e255", "1" + strings.Repeat("0", 255), true},
		{"1e256", "", false},
		{"1.25e1", "", false},
		{"0.5", "", false},
		{"-1", "", false},
		{"1e-999999999999999999999", "", false},
	}
	for _, tc := range tests {
		got, err := wholeNumber(tc.lit)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("wholeNumber(%q) = %q, %v; want %q, ok=%v", tc.lit, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseTask(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	for _, seed := range []string{
		``, `{}`, `null`, `{"taskId":1e5}`, `{"taskId":-0.0e-3}`, `{"taskId":1.5}`,
		`{"payload":{"taskid":"1"},"actor":{"name":"a"}}`, `{"payload":null,"taskid":2}`,
		`{"taskId":"\u00e9\u0000"}`, `{"taskId":"1","url":"https://x"}`, `{"taskId":"1"}{}`,
		`{"taskId":"` + strings.Repeat("9", 300) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sub, err := ParseTask(body)
		if err != nil {
			if !errors.Is(err, approvals.ErrInvalid) {
				t.Fatalf("error %v does not wrap approvals.ErrInvalid", err)
			}
			return
		}
		if sub.Source != "flexdeploy" {
			t.Fatalf("Source = %q", sub.Source)
		}
		if sub.TaskID == "" || len(sub.TaskID) > 256 {
			t.Fatalf("TaskID %q is empty or longer than 256 bytes", sub.TaskID)
		}
		for _, v := range []string{sub.Description, sub.Environment, sub.Project, sub.Release,
			sub.Pipeline, sub.Stage, sub.RequestedBy, sub.URL} {
			if utf8.RuneCountInString(v) > 2000 {
				t.Fatalf("field of %d runes exceeds the cap", utf8.RuneCountInString(v))
			}
		}
	})
}
