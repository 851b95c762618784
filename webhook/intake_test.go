package webhook

import (
	"errors"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func newClient(t *testing.T, hosts ...string) *Client {
	t.Helper()
	c, err := New(Config{SigningSecret: testSecret, AllowedHosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParse(t *testing.T) {
	t.Parallel()
	c := newClient(t, "jenkins.internal", "*.argo.example.com", "ci.example.com:8443", "127.0.0.1")
	sub, err := c.Parse(nil, []byte(`{"TASKID": 42, "description": "v2.3 to PROD", "environmentName": "PROD", "project": "shop",
		"release": 2.10, "pipeline": "main", "stage": "deploy", "requestedBy": "dev@example.com", "url": "https://jenkins.internal/job/shop/42/",
		"callbackUrl": "https://jenkins.internal/webhook-step/abc?token=s3cret", "other": {"ignored": true}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := approvals.Context{Description: "v2.3 to PROD", Environment: "PROD", Project: "shop", Release: "2.10", Pipeline: "main",
		Stage: "deploy", RequestedBy: "dev@example.com", URL: "https://jenkins.internal/job/shop/42/"}
	if sub.Source != Source || sub.TaskID != "42" || sub.Context != want || sub.Extra[ExtraCallbackHost] != "https://jenkins.internal" || len(sub.Extra) != 1 {
		t.Fatalf("submission %+v", sub)
	}
	if cb, err := c.sealer.open(sub.Secret, "webhook-42"); err != nil || cb != "https://jenkins.internal/webhook-step/abc?token=s3cret" {
		t.Fatalf("sealed callback %q, %v", cb, err)
	}
	if approvals.TaskRecordID(sub.Source, sub.TaskID) != "webhook-42" {
		t.Errorf("record id %q", approvals.TaskRecordID(sub.Source, sub.TaskID))
	}
	for _, tc := range []struct{ name, body, want string }{
		{"no task id", `{"callbackUrl":"https://jenkins.internal/x"}`, "taskId is required"},
		{"a fractional id", `{"taskId": 4.2, "callbackUrl":"https://jenkins.internal/x"}`, "whole number"},
		{"a callback that is a number", `{"taskId":"1","callbackUrl":7}`, "callbackUrl must be a string"},
		{"given twice", `{"taskId":"1","taskid":"2","callbackUrl":"https://jenkins.internal/x"}`, "taskId is given more than once"},
		{"http to a host", `{"taskId":"1","callbackUrl":"http://jenkins.internal/x?token=s3cret"}`, "https"},
		{"another host", `{"taskId":"1","callbackUrl":"https://evil.example.net/x?token=s3cret"}`, "not allowed"},
		{"a pinned port", `{"taskId":"1","callbackUrl":"https://ci.example.com/x"}`, "not allowed"},
		{"credentials", `{"taskId":"1","callbackUrl":"https://u:s3cret@jenkins.internal/x"}`, "credentials"},
		{"a fragment", `{"taskId":"1","callbackUrl":"https://jenkins.internal/x#s3cret"}`, "fragment"},
		{"a glob in the host", `{"taskId":"1","callbackUrl":"https://a*.argo.example.com/x"}`, "invalid host"},
		{"not a URL", `{"taskId":"1","callbackUrl":"jenkins.internal/x"}`, "https URL"},
		{"a bad link", `{"taskId":"1","url":"javascript:alert(1)","callbackUrl":"https://jenkins.internal/x"}`, "url must be"},
		{"not JSON", `taskId=1`, "not valid JSON"},
	} {
		_, err := c.Parse(nil, []byte(tc.body))
		if !errors.Is(err, approvals.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want ErrInvalid saying %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error quotes the callback: %v", tc.name, err)
		}
	}
	// Without a callback the task is a gate: nothing sealed, nothing to tell.
	if gate, err := c.Parse(nil, []byte(`{"taskId":"rollout-7"}`)); err != nil || !gate.Gate || gate.Secret != nil || len(gate.Extra) != 0 {
		t.Errorf("a task without a callback: %+v, %v; want a gate with no secret", gate, err)
	}
	if sub.Gate {
		t.Errorf("a task with a callback is a gate")
	}
	for _, ok := range []string{
		"https://wf.argo.example.com/hook", "https://ci.example.com:8443/hook", "http://127.0.0.1:8080/hook", "https://JENKINS.internal/x",
	} {
		if _, err := c.Parse(nil, []byte(`{"taskId":"1","callbackUrl":"`+ok+`"}`)); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{SigningSecret: testSecret},
		{SigningSecret: testSecret, AllowedHosts: []string{" "}},
		{SigningSecret: testSecret, AllowedHosts: []string{"https://jenkins.internal/"}},
		{SigningSecret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", AllowedHosts: []string{"jenkins.internal"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%v) accepted", cfg.AllowedHosts)
		} else if strings.Contains(err.Error(), "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") {
			t.Errorf("the error quotes the secret: %v", err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"taskId":"1","callbackUrl":"https://jenkins.internal/x"}`, `{"taskId":1}`, `{}`, `[]`, `{"taskId":"1","callbackUrl":"http://[::1]:80/x"}`,
		`{"taskId":"\u0000","callbackUrl":"https://jenkins.internal/x"}`, `{"taskId":"1","callbackUrl":"https://jenkins.internal:99999/x"}`,
	} {
		f.Add([]byte(seed))
	}
	c, err := New(Config{SigningSecret: testSecret, AllowedHosts: []string{"jenkins.internal", "127.0.0.1", "::1"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sub, err := c.Parse(nil, body)
		if err != nil {
			if !errors.Is(err, approvals.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if sub.TaskID == "" || len(sub.TaskID) > maxTaskIDBytes {
			t.Fatalf("accepted %+v", sub)
		}
		if sub.Gate {
			if sub.Secret != nil || len(sub.Extra) != 0 {
				t.Fatalf("a gate with a callback: %+v", sub)
			}
			return
		}
		cb, err := c.sealer.open(sub.Secret, approvals.TaskRecordID(Source, sub.TaskID))
		if err != nil || c.hosts.checkCallback(cb) != nil {
			t.Fatalf("accepted %+v", sub)
		}
	})
}
