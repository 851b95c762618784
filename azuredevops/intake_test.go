package azuredevops

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/approvalbot/approvalbot/approvals"
)

// fixture reads a file of testdata.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureHeaders is the headers a check sends (testdata/check_headers.json,
// the JSON an admin puts in the check's Headers field, variables expanded).
func fixtureHeaders(t testing.TB) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(fixture(t, "check_headers.json"), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func httpHeader(m map[string]string) http.Header {
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

// fixtureToken is the job token of testdata/check_headers.json.
func fixtureToken(t testing.TB) string { return fixtureHeaders(t)["AuthToken"] }

func TestParseFixture(t *testing.T) {
	t.Parallel()
	headers := fixtureHeaders(t)
	token := headers["AuthToken"]
	sealer := testSealer(t)
	in := NewIntake(sealer, nil)

	sub, err := in.Parse(httpHeader(headers).Get, fixture(t, "check_body.json"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	const taskInstanceID = "e2d1c0b9-a8f7-4e6d-9c5b-4a3f2e1d0c9b"
	if sub.Source != "azure-devops" || sub.TaskID != taskInstanceID {
		t.Errorf("Source, TaskID = %q, %q", sub.Source, sub.TaskID)
	}
	wantCtx := approvals.Context{
		Environment: "production",
		Project:     "payments",
		Release:     "20261122.3",
		Pipeline:    "payments-ci",
		Stage:       "Deploy_PROD",
		Description: "payments 20261122.3 is about to be deployed to production",
		RequestedBy: "jane.smith@example.com",
		URL:         "https://dev.azure.com/contoso/payments/_build/results?buildId=4711",
	}
	if sub.Context != wantCtx {
		t.Errorf("Context = %+v\nwant      %+v", sub.Context, wantCtx)
	}
	wantExtra := map[string]string{
		"planUrl":        "https://dev.azure.com/contoso/",
		"projectId":      "6f1c0a4e-2b7d-4b8e-9d61-3f0c2a9e5b17",
		"hubName":        "checks",
		"planId":         "0b9d5c3a-7e41-4f26-8a5b-1c2d3e4f5a6b",
		"jobId":          "4a8e2f10-93c5-4d7b-b6e1-0f2a3b4c5d6e",
		"timelineId":     "9c7b6a5d-4e3f-4a1b-8c2d-7e6f5a4b3c2d",
		"taskInstanceId": taskInstanceID,
	}
	if !maps.Equal(sub.Extra, wantExtra) {
		t.Errorf("Extra = %v\nwant    %v", sub.Extra, wantExtra)
	}

	// The token is sealed: not in the secret, nor anywhere else in the
	// submission, and it opens back only for its own task record.
	if len(sub.Secret) == 0 || bytes.Contains(sub.Secret, []byte(token)) {
		t.Fatalf("Secret is empty or holds the token in the clear")
	}
	all, _ := json.Marshal(sub)
	if strings.Contains(string(all), token) || strings.Contains(string(all), token[:40]) {
		t.Errorf("submission shows the token: %s", all)
	}
	plain, err := sealer.Open(sub.Secret, []byte(approvals.TaskRecordID("azure-devops", taskInstanceID)))
	if err != nil || string(plain) != token {
		t.Errorf("Open(Secret) = %q, %v; want the token", plain, err)
	}
	if _, err := sealer.Open(sub.Secret, []byte(approvals.TaskRecordID("azure-devops", "another-task"))); err == nil {
		t.Error("the sealed token opens for another task")
	}
}

// TestParseHeaderNamesAnyCase sends the check's request over HTTP with the
// header names spelt in several ways, as proxies and Azure may.
func TestParseHeaderNamesAnyCase(t *testing.T) {
	t.Parallel()
	spellings := map[string]func(string) string{
		"as documented": func(s string) string { return s },
		"lower case":    strings.ToLower,
		"upper case":    strings.ToUpper,
	}
	for name, spell := range spellings {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := NewIntake(testSealer(t), nil)
			var (
				sub approvals.Submission
				err error
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				sub, err = in.Parse(r.Header.Get, body)
			}))
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(nil))
			for k, v := range fixtureHeaders(t) {
				req.Header[spell(k)] = []string{v} // as written, not canonicalized
			}
			resp, rerr := srv.Client().Do(req)
			if rerr != nil {
				t.Fatal(rerr)
			}
			resp.Body.Close()
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if sub.TaskID != "e2d1c0b9-a8f7-4e6d-9c5b-4a3f2e1d0c9b" || sub.Extra["timelineId"] == "" || len(sub.Secret) == 0 {
				t.Errorf("submission = %+v", sub)
			}
		})
	}
}

func TestParseMissingHeader(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"PlanUrl", "ProjectId", "HubName", "PlanId", "JobId", "TaskInstanceId", "AuthToken"} {
		for _, blank := range []bool{false, true} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				h := httpHeader(fixtureHeaders(t))
				if blank {
					h.Set(name, "  ")
				} else {
					h.Del(name)
				}
				_, err := NewIntake(testSealer(t), nil).Parse(h.Get, nil)
				if !errors.Is(err, approvals.ErrInvalid) {
					t.Fatalf("error = %v, want ErrInvalid", err)
				}
				if want := "header " + name + " is required"; !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			})
		}
	}
}

func TestParseWithoutTimelineID(t *testing.T) {
	t.Parallel()
	h := httpHeader(fixtureHeaders(t))
	h.Del("TimelineId")
	sub, err := NewIntake(testSealer(t), nil).Parse(h.Get, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if _, ok := sub.Extra["timelineId"]; ok || len(sub.Extra) != 6 {
		t.Errorf("Extra = %v, want the six other routing fields and no timelineId", sub.Extra)
	}
}

// joined reads a header as HTTP allows a header given more than once to be
// read: its copies joined with ", ".
func joined(h http.Header) func(string) string {
	return func(name string) string { return strings.Join(h.Values(name), ", ") }
}

// TestParseRefusesHeaderGivenTwice: a header given twice, its copies
// joined, is refused whichever it is, so that which copy counts never
// depends on a proxy's order.
func TestParseRefusesHeaderGivenTwice(t *testing.T) {
	t.Parallel()
	for name, value := range fixtureHeaders(t) {
		if name == "Content-Type" || name == "X-API-Key" {
			continue
		}
		h := httpHeader(fixtureHeaders(t))
		h.Add(name, value) // even the very same value
		_, err := NewIntake(testSealer(t), nil).Parse(joined(h), nil)
		if !errors.Is(err, approvals.ErrInvalid) || !strings.Contains(err.Error(), "header "+name) {
			t.Errorf("%s given twice: error = %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), fixtureToken(t)[:16]) {
			t.Errorf("%s given twice: error holds the token: %v", name, err)
		}
	}
}

func TestParsePlanURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		hosts   []string
		planURL string
		want    string // the stored planUrl; "" when refused
		wantErr string
	}{
		{name: "dev.azure.com", planURL: "https://dev.azure.com/contoso/", want: "https://dev.azure.com/contoso/"},
		{name: "slash added", planURL: "https://dev.azure.com/contoso", want: "https://dev.azure.com/contoso/"},
		{name: "visualstudio.com", planURL: "https://contoso.visualstudio.com/", want: "https://contoso.visualstudio.com/"},
		{name: "host in upper case", planURL: "https://DEV.Azure.COM/contoso/", want: "https://DEV.Azure.COM/contoso/"},
		{name: "port of an allowed host", planURL: "https://dev.azure.com:443/contoso/", want: "https://dev.azure.com:443/contoso/"},
		{name: "server on premises", hosts: []string{"tfs.corp.example.com"}, planURL: "https://tfs.corp.example.com:8080/tfs/DefaultCollection/", want: "https://tfs.corp.example.com:8080/tfs/DefaultCollection/"},
		{name: "plain http off loopback", hosts: []string{"tfs.corp.example.com"}, planURL: "http://tfs.corp.example.com:8080/tfs/", wantErr: "https"},
		{name: "pinned port", hosts: []string{"tfs.corp.example.com:8080"}, planURL: "https://tfs.corp.example.com:8080/tfs/", want: "https://tfs.corp.example.com:8080/tfs/"},
		{name: "pinned port, other port", hosts: []string{"tfs.corp.example.com:8080"}, planURL: "https://tfs.corp.example.com:9090/tfs/", wantErr: "not allowed"},
		{name: "pinned default port, none given", hosts: []string{"dev.azure.com:443"}, planURL: "https://dev.azure.com/contoso/", want: "https://dev.azure.com/contoso/"},
		{name: "pinned default port, plain http", hosts: []string{"127.0.0.1:443"}, planURL: "http://127.0.0.1/contoso/", wantErr: "not allowed"},
		{name: "other host", planURL: "https://evil.example.com/contoso/", wantErr: "not allowed"},
		{name: "allowed name as a prefix", planURL: "https://dev.azure.com.evil.example.com/", wantErr: "not allowed"},
		{name: "allowed name as a suffix", planURL: "https://evildev.azure.com/", wantErr: "not allowed"},
		{name: "allowed name in the path", planURL: "https://evil.example.com/dev.azure.com/", wantErr: "not allowed"},
		{name: "bare visualstudio.com", planURL: "https://visualstudio.com/", wantErr: "not allowed"},
		{name: "trailing dot", planURL: "https://dev.azure.com./contoso/", wantErr: "not allowed"},
		{name: "default list does not hold localhost", planURL: "http://127.0.0.1:8080/", wantErr: "not allowed"},
		{name: "credentials", planURL: "https://dev.azure.com@evil.example.com/", wantErr: "must not contain credentials"},
		{name: "backslash", planURL: `https://evil.example.com\@dev.azure.com/`, wantErr: "PlanUrl"},
		{name: "query", planURL: "https://dev.azure.com/contoso/?x=1", wantErr: "must not have a query"},
		{name: "empty query", planURL: "https://dev.azure.com/contoso/?", wantErr: "must not have a query"},
		{name: "fragment", planURL: "https://dev.azure.com/contoso/#x", wantErr: "must not have a query"},
		{name: "ftp", planURL: "ftp://dev.azure.com/contoso/", wantErr: "must be an absolute http or https URL"},
		{name: "relative", planURL: "/contoso/", wantErr: "must be an absolute http or https URL"},
		{name: "no host", planURL: "https:///contoso/", wantErr: "has no host"},
		{name: "opaque", planURL: "https:dev.azure.com/contoso/", wantErr: "has no host"},
		{name: "unexpanded variable", planURL: "$(system.CollectionUri)", wantErr: "did not expand"},
		{name: "escaped host", planURL: "https://dev%2eazure.com%2fevil/", wantErr: "PlanUrl"},
		{name: "too long", planURL: "https://dev.azure.com/" + strings.Repeat("a", 2100), wantErr: "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := httpHeader(fixtureHeaders(t))
			h.Set("PlanUrl", tc.planURL)
			sub, err := NewIntake(testSealer(t), tc.hosts).Parse(h.Get, nil)
			if tc.wantErr != "" {
				if !errors.Is(err, approvals.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want ErrInvalid saying %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "evil") || strings.Contains(err.Error(), fixtureToken(t)[:20]) {
					t.Errorf("error echoes the input: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := sub.Extra["planUrl"]; got != tc.want {
				t.Errorf("planUrl = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, header, value string
		wantErr             string
	}{
		{name: "hub name with underscore", header: "HubName", value: "release_2"},
		{name: "id of 64 characters", header: "PlanId", value: strings.Repeat("a", 64)},
		{name: "id of 65 characters", header: "PlanId", value: strings.Repeat("a", 65), wantErr: "header PlanId must be 1 to 64 characters"},
		{name: "slash in project", header: "ProjectId", value: "../../_apis", wantErr: "header ProjectId may hold only letters, digits and -"},
		{name: "underscore in job id", header: "JobId", value: "a_b", wantErr: "header JobId may hold only letters, digits and -"},
		{name: "query in plan id", header: "PlanId", value: "a?b=c", wantErr: "header PlanId may hold"},
		{name: "space in timeline id", header: "TimelineId", value: "a b", wantErr: "header TimelineId may hold"},
		{name: "slash in hub name", header: "HubName", value: "build/x", wantErr: "header HubName may hold only letters, digits, - and _"},
		{name: "unexpanded task instance id", header: "TaskInstanceId", value: "$(system.TaskInstanceId)", wantErr: "did not expand"},
		{name: "non-ASCII", header: "JobId", value: "jöb", wantErr: "header JobId may hold"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := httpHeader(fixtureHeaders(t))
			h.Set(tc.header, tc.value)
			_, err := NewIntake(testSealer(t), nil).Parse(h.Get, nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if !errors.Is(err, approvals.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want ErrInvalid saying %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), tc.value) {
				t.Errorf("error echoes the value: %v", err)
			}
		})
	}
}

func TestParseAuthToken(t *testing.T) {
	t.Parallel()
	const marker = "SECRET"
	tests := []struct {
		name, token, wantErr string
	}{
		{name: "unexpanded", token: "$(system.AccessToken)", wantErr: "did not expand; send $(system.AccessToken)"},
		{name: "inner space", token: marker + " token", wantErr: "printable ASCII characters without spaces"},
		{name: "control character", token: marker + "\x01token", wantErr: "printable ASCII"},
		{name: "non-ASCII", token: marker + "tökén", wantErr: "printable ASCII"},
		{name: "too long", token: marker + strings.Repeat("a", 17<<10), wantErr: "longer than 16384 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := httpHeader(fixtureHeaders(t))
			h.Set("AuthToken", tc.token)
			_, err := NewIntake(testSealer(t), nil).Parse(h.Get, nil)
			if !errors.Is(err, approvals.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want ErrInvalid saying %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), marker) {
				t.Errorf("error holds the token: %v", err)
			}
		})
	}
}

func TestParseBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		want    approvals.Context
		wantErr string
	}{
		{name: "no body", body: ""},
		{name: "blank body", body: " \r\n\t"},
		{name: "empty object", body: "{}"},
		{name: "names in any case", body: `{"ENVIRONMENT":"PROD","Stage":"deploy","requestedby":"bob","Description":"d"}`,
			want: approvals.Context{Environment: "PROD", Stage: "deploy", RequestedBy: "bob", Description: "d"}},
		{name: "numbers kept as written, null absent", body: `{"release":2.10,"project":null}`,
			want: approvals.Context{Release: "2.10"}},
		{name: "trimmed", body: `{"environment":"  PROD \n"}`, want: approvals.Context{Environment: "PROD"}},
		{name: "unexpanded variable is absent", body: `{"environment":"$(Environment.Name)","stage":"$(x) and more"}`,
			want: approvals.Context{Stage: "$(x) and more"}},
		{name: "unknown fields ignored", body: `{"checkName":"x","nested":{"environment":"no"},"list":[1],"pipeline":"p"}`,
			want: approvals.Context{Pipeline: "p"}},
		{name: "long field capped", body: `{"description":"` + strings.Repeat("é", 2500) + `"}`,
			want: approvals.Context{Description: strings.Repeat("é", 2000)}},
		{name: "url", body: `{"url":"http://tfs:8080/tfs/_build?id=1"}`, want: approvals.Context{URL: "http://tfs:8080/tfs/_build?id=1"}},
		{name: "field twice", body: `{"environment":"DEV","Environment":"PROD"}`, wantErr: "environment is given more than once"},
		{name: "object field", body: `{"environment":{"name":"PROD"}}`, wantErr: "environment must be a string"},
		{name: "boolean field", body: `{"stage":true}`, wantErr: "stage must be a string"},
		{name: "bad url", body: `{"url":"javascript:alert(1)"}`, wantErr: "url must be an absolute http or https URL"},
		{name: "relative url", body: `{"url":"/_build?id=1"}`, wantErr: "url must be an absolute http or https URL"},
		{name: "long url", body: `{"url":"https://x/` + strings.Repeat("a", 2000) + `"}`, wantErr: "url is longer than 2000 characters"},
		{name: "array", body: `[{"environment":"PROD"}]`, wantErr: "body must be a JSON object"},
		{name: "trailing data", body: `{} {}`, wantErr: "body has data after the JSON object"},
		{name: "truncated", body: `{"environment":"PR`, wantErr: "body is not valid JSON"},
		{name: "not JSON", body: `environment=PROD`, wantErr: "body is not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sub, err := NewIntake(testSealer(t), nil).Parse(httpHeader(fixtureHeaders(t)).Get, []byte(tc.body))
			if tc.wantErr != "" {
				if !errors.Is(err, approvals.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want ErrInvalid saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if sub.Context != tc.want {
				t.Errorf("Context = %+v\nwant      %+v", sub.Context, tc.want)
			}
		})
	}
}

func TestParseWithoutSealer(t *testing.T) {
	t.Parallel()
	_, err := NewIntake(nil, nil).Parse(httpHeader(fixtureHeaders(t)).Get, nil)
	if err == nil || errors.Is(err, approvals.ErrInvalid) {
		t.Fatalf("error = %v, want an internal error (not the caller's fault)", err)
	}
}

// TestParseErrorsNeverHoldTheToken breaks each part of a request whose token
// is also planted in other places, and checks no error repeats it.
func TestParseErrorsNeverHoldTheToken(t *testing.T) {
	t.Parallel()
	token := fixtureToken(t)
	breaks := []func(h http.Header) []byte{
		func(h http.Header) []byte { h.Set("PlanUrl", "https://evil.example.com/"+token); return nil },
		func(h http.Header) []byte { h.Set("PlanUrl", token); return nil },
		func(h http.Header) []byte { h.Set("ProjectId", token); return nil },
		func(h http.Header) []byte { h.Set("HubName", token); return nil },
		func(h http.Header) []byte { h.Set("TimelineId", token); return nil },
		func(h http.Header) []byte { h.Add("AuthToken", token); return nil },
		func(h http.Header) []byte { h.Set("AuthToken", token+" "+token); return nil },
		func(h http.Header) []byte { return []byte(`{"url":"` + token + `"}`) },
		func(h http.Header) []byte { return []byte(token) },
		func(h http.Header) []byte { return []byte(`{"` + token + `":1} ` + token) },
		func(h http.Header) []byte { return []byte(`{"environment":` + token + `}`) },
	}
	for i, brk := range breaks {
		h := httpHeader(fixtureHeaders(t))
		body := brk(h)
		_, err := NewIntake(testSealer(t), nil).Parse(joined(h), body)
		if err == nil {
			t.Errorf("case %d: Parse succeeded, want an error", i)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, token[:16]) || strings.Contains(msg, token[len(token)-16:]) {
			t.Errorf("case %d: error holds the token: %v", i, err)
		}
	}
}

func TestValidateAllowedHosts(t *testing.T) {
	t.Parallel()
	if err := ValidateAllowedHosts(DefaultAllowedHosts()); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if err := ValidateAllowedHosts(nil); err != nil {
		t.Errorf("nil: %v", err)
	}
	err := ValidateAllowedHosts([]string{"ok.example.com", "[bad", " "})
	if err == nil || !strings.Contains(err.Error(), "[bad is not a valid glob pattern") || !strings.Contains(err.Error(), "an allowed host is empty") {
		t.Errorf("error = %v, want both problems", err)
	}
}

func FuzzParse(f *testing.F) {
	h := fixtureHeaders(f)
	body := string(fixture(f, "check_body.json"))
	f.Add(h["PlanUrl"], h["ProjectId"], h["HubName"], h["PlanId"], h["JobId"], h["TimelineId"], h["TaskInstanceId"], h["AuthToken"], body)
	f.Add("http://127.0.0.1:8080/tfs", "p", "build", "p", "j", "", "t", "x", "")
	f.Add("https://dev.azure.com@evil/", "p", "h", "p", "j", "t", "t", "tok", `{"url":"https://x"}`)
	f.Add("https://x.visualstudio.com", "$(a)", "h_", "p", "j", "t", "t", "$(system.AccessToken)", `{"environment":1e5,"Environment":2}`)
	f.Add("https://dev.azure.com/a?b#c", "", "", "", "", "", "", "", `[`)
	f.Add("HTTPS://DEV.AZURE.COM:99999/", "a", "b", "c", "d", "e", "f", "g\x00", "{\"stage\":\"\\u0000\xff\"}")
	f.Fuzz(func(t *testing.T, planURL, projectID, hubName, planID, jobID, timelineID, taskInstanceID, token, body string) {
		// The token carries a marker no error message has, so that an
		// echoed token is seen whatever the fuzzer makes of the rest.
		token = "SECRET" + token
		hdr := http.Header{}
		for k, v := range map[string]string{
			"PlanUrl": planURL, "ProjectId": projectID, "HubName": hubName, "PlanId": planID,
			"JobId": jobID, "TimelineId": timelineID, "TaskInstanceId": taskInstanceID, "AuthToken": token,
		} {
			hdr.Set(k, v)
		}
		sealer := testSealer(t)
		sub, err := NewIntake(sealer, []string{"dev.azure.com", "*.visualstudio.com", "127.0.0.1"}).Parse(hdr.Get, []byte(body))
		if err != nil {
			if !errors.Is(err, approvals.ErrInvalid) {
				t.Fatalf("error %v does not wrap approvals.ErrInvalid", err)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("error holds the token: %v", err)
			}
			return
		}
		if sub.Source != Source || sub.TaskID == "" || sub.TaskID != sub.Extra["taskInstanceId"] {
			t.Fatalf("submission = %+v", sub)
		}
		plain, err := sealer.Open(sub.Secret, []byte(approvals.TaskRecordID(Source, sub.TaskID)))
		if err != nil || string(plain) != strings.TrimSpace(token) {
			t.Fatalf("sealed token opens to %q, %v", plain, err)
		}
		if !strings.HasSuffix(sub.Extra["planUrl"], "/") {
			t.Fatalf("planUrl %q does not end in /", sub.Extra["planUrl"])
		}
		if _, err := newHostList([]string{"dev.azure.com", "*.visualstudio.com", "127.0.0.1"}).checkPlanURL(sub.Extra["planUrl"]); err != nil {
			t.Fatalf("stored planUrl %q fails its own check: %v", sub.Extra["planUrl"], err)
		}
		for _, v := range []string{sub.Description, sub.Environment, sub.Project, sub.Release,
			sub.Pipeline, sub.Stage, sub.RequestedBy, sub.URL} {
			if utf8.RuneCountInString(v) > maxFieldRunes || !utf8.ValidString(v) {
				t.Fatalf("field %q is too long or not UTF-8", v)
			}
		}
	})
}
