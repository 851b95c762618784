package flexdeploytest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/httpfault"
)

var auth = "Basic " + base64.StdEncoding.EncodeToString([]byte("bot:s3cr3t"))

func newServer(t *testing.T) *Server {
	t.Helper()
	f := New()
	t.Cleanup(f.Close)
	return f
}

func TestStrictChecks(t *testing.T) {
	t.Parallel()
	f := newServer(t)
	f.SetCredentials("bot", "s3cr3t")
	wrong := "Basic " + base64.StdEncoding.EncodeToString([]byte("bot:guess"))
	tests := []struct {
		name                            string
		method, path, auth, ctype, body string
		want                            int
	}{
		{name: "approve", method: "PUT", path: "/tasks/approval/approve/1", auth: auth, ctype: "application/json", body: `{"notes":"n"}`, want: 200},
		{name: "charset", method: "PUT", path: "/tasks/approval/reject/2", auth: auth, ctype: "application/json; charset=utf-8", body: `{"notes":""}`, want: 200},
		{name: "read", method: "GET", path: "/tasks/approval/3", auth: auth, want: 200},
		{name: "no auth", method: "GET", path: "/tasks/approval/3", want: 401},
		{name: "wrong password", method: "PUT", path: "/tasks/approval/approve/4", auth: wrong, ctype: "application/json", body: `{"notes":"n"}`, want: 401},
		{name: "bearer", method: "GET", path: "/tasks/approval/3", auth: "Bearer s3cr3t", want: 401},
		{name: "no content type", method: "PUT", path: "/tasks/approval/approve/5", auth: auth, body: `{"notes":"n"}`, want: 415},
		{name: "form", method: "PUT", path: "/tasks/approval/approve/5", auth: auth, ctype: "application/x-www-form-urlencoded", body: `notes=n`, want: 415},
		{name: "no body", method: "PUT", path: "/tasks/approval/approve/5", auth: auth, ctype: "application/json", want: 400},
		{name: "no notes", method: "PUT", path: "/tasks/approval/approve/5", auth: auth, ctype: "application/json", body: `{}`, want: 400},
		{name: "unknown field", method: "PUT", path: "/tasks/approval/approve/5", auth: auth, ctype: "application/json", body: `{"notes":"n","x":1}`, want: 400},
		{name: "two objects", method: "PUT", path: "/tasks/approval/approve/5", auth: auth, ctype: "application/json", body: `{"notes":"n"}{}`, want: 400},
		{name: "POST", method: "POST", path: "/tasks/approval/approve/5", auth: auth, ctype: "application/json", body: `{"notes":"n"}`, want: 405},
		{name: "PUT on a read", method: "PUT", path: "/tasks/approval/5", auth: auth, ctype: "application/json", body: `{"notes":"n"}`, want: 405},
		{name: "unknown action", method: "PUT", path: "/tasks/approval/defer/5", auth: auth, ctype: "application/json", body: `{"notes":"n"}`, want: 404},
		{name: "trailing slash", method: "GET", path: "/tasks/approval/5/", auth: auth, want: 404},
		{name: "double slash", method: "PUT", path: "/tasks/approval/approve//5", auth: auth, ctype: "application/json", body: `{"notes":"n"}`, want: 404},
		{name: "query", method: "GET", path: "/tasks/approval/5?x=1", auth: auth, want: 404},
		{name: "v2", method: "GET", path: "/../v2/tasks/approval/5", auth: auth, want: 404},
	}
	for _, tc := range tests {
		code, body, err := httpfault.Send(nil, tc.method, f.BaseURL()+tc.path, tc.auth, tc.ctype, tc.body)
		if err != nil || code != tc.want {
			t.Errorf("%s: %s %s = %d %s (%v), want %d", tc.name, tc.method, tc.path, code, body, err, tc.want)
		}
	}
	for _, id := range []string{"4", "5"} {
		if s := f.StatusOf(id); s != Pending {
			t.Errorf("task %s is %s after refused requests", id, s)
		}
	}
	if f.StatusOf("1") != Approved || f.StatusOf("2") != Rejected {
		t.Errorf("tasks 1, 2 = %s, %s", f.StatusOf("1"), f.StatusOf("2"))
	}
	if n := len(f.Calls()); n != len(tests) {
		t.Errorf("%d calls recorded, want %d", n, len(tests))
	}
}

func TestTaskState(t *testing.T) {
	t.Parallel()
	f := newServer(t)
	put := func(action, id string) (int, string) {
		code, body, err := httpfault.Send(nil, "PUT", f.BaseURL()+"/tasks/approval/"+action+"/"+id, auth, "application/json", `{"notes":"by Alice"}`)
		if err != nil {
			t.Fatal(err)
		}
		return code, body
	}
	get := func(id string) map[string]any {
		code, body, err := httpfault.Send(nil, "GET", f.BaseURL()+"/tasks/approval/"+id, auth, "", "")
		if err != nil || code != 200 {
			t.Fatalf("GET = %d %s %v", code, body, err)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := get("8900"); v["status"] != Pending || v["taskId"] != float64(8900) || v["environmentName"] != "PROD" {
		t.Errorf("a new task reads %v", v)
	}
	if code, _ := put("approve", "8900"); code != 200 {
		t.Fatalf("approve = %d", code)
	}
	if v := get("8900"); v["status"] != Approved || v["notes"] != "by Alice" {
		t.Errorf("after the approval the task reads %v", v)
	}
	for _, action := range []string{"approve", "reject"} {
		if code, body := put(action, "8900"); code != 400 || body != NotPending {
			t.Errorf("%s of a decided task = %d %q, want 400 %q", action, code, body, NotPending)
		}
	}
	f.SetStatus("ui", Rejected)
	if code, _ := put("approve", "ui"); code != 400 {
		t.Errorf("approve of a task rejected in the UI = %d", code)
	}
	f.SetTask(Task{TaskID: "a b", EnvironmentName: "QA"})
	if v := get("a%20b"); v["status"] != Pending || v["taskId"] != "a b" || v["environmentName"] != "QA" {
		t.Errorf("a set task reads %v", v)
	}
	d := f.Decisions()
	if len(d) != 4 || !d[0].Applied || d[0].Code != 200 || d[1].Applied || d[1].Code != 400 || d[0].Notes() != "by Alice" || d[0].User() != "bot" {
		t.Errorf("decisions %+v", d)
	}
}

func TestScriptedAnswers(t *testing.T) {
	t.Parallel()
	f := newServer(t)
	f.SetAnswer(func(_ Call, n int) (int, string) {
		if n == 1 {
			return 503, "maintenance"
		}
		return 0, ""
	})
	f.SetReply(func(c Call) *Answer {
		if c.Method == "GET" {
			return &Answer{Status: 500, Header: map[string]string{"Retry-After": "3"}, Body: "down"}
		}
		return nil
	})
	url := f.BaseURL() + "/tasks/approval/approve/7"
	if code, body, _ := httpfault.Send(nil, "PUT", url, auth, "application/json", `{"notes":""}`); code != 503 || body != "maintenance" || f.StatusOf("7") != Pending {
		t.Errorf("first PUT = %d %q, task %s", code, body, f.StatusOf("7"))
	}
	if code, _, _ := httpfault.Send(nil, "PUT", url, auth, "application/json", `{"notes":""}`); code != 200 || f.StatusOf("7") != Approved {
		t.Errorf("second PUT = %d, task %s", code, f.StatusOf("7"))
	}
	if code, body, _ := httpfault.Send(nil, "GET", f.BaseURL()+"/tasks/approval/7", auth, "", ""); code != 500 || body != "down" {
		t.Errorf("GET = %d %q", code, body)
	}
}

func TestLateAnswer(t *testing.T) {
	t.Parallel()
	f := newServer(t)
	f.SetLateAnswers(1)
	client := &http.Client{Timeout: 50 * time.Millisecond}
	_, _, err := httpfault.Send(client, "PUT", f.BaseURL()+"/tasks/approval/approve/9", auth, "application/json", `{"notes":""}`)
	if !httpfault.IsTimeout(err) {
		t.Fatalf("late answer: error = %v, want a timeout", err)
	}
	if s := f.StatusOf("9"); s != Approved {
		t.Errorf("the late decision left the task %s, want it taken", s)
	}
	d := f.Decisions()
	if len(d) != 1 || !d[0].Applied || d[0].Code != 0 {
		t.Errorf("decisions %+v", d)
	}
	// Used up: the next decision is answered at once.
	if code, body, err := httpfault.Send(client, "PUT", f.BaseURL()+"/tasks/approval/approve/10", auth, "application/json", `{"notes":""}`); code != 200 {
		t.Errorf("next decision = %d %s %v", code, body, err)
	}
}

func TestDroppedAnswer(t *testing.T) {
	t.Parallel()
	f := newServer(t)
	f.SetDroppedAnswers(-1)
	for _, id := range []string{"11", "12"} {
		_, _, err := httpfault.Send(nil, "PUT", f.BaseURL()+"/tasks/approval/reject/"+id, auth, "application/json", `{"notes":""}`)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("dropped answer: error = %v, want EOF", err)
		}
		if s := f.StatusOf(id); s != Rejected {
			t.Errorf("the dropped decision left task %s %s, want it taken", id, s)
		}
	}
	// Reads are answered.
	if code, _, err := httpfault.Send(nil, "GET", f.BaseURL()+"/tasks/approval/11", auth, "", ""); code != 200 || err != nil {
		t.Errorf("GET = %d %v", code, err)
	}
}

// TestDelayTakesNothingFromAClientThatLeft: a decision whose client gave up
// during SetDelay's wait was never taken.
func TestDelayTakesNothingFromAClientThatLeft(t *testing.T) {
	t.Parallel()
	f := newServer(t)
	f.SetDelay(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "PUT", f.BaseURL()+"/tasks/approval/approve/13", strings.NewReader(`{"notes":""}`))
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("a delayed answer came")
	}
	time.Sleep(20 * time.Millisecond) // the handler sees the client go
	if s := f.StatusOf("13"); s != Pending {
		t.Errorf("task %s, want it untouched", s)
	}
}

// TestCloseLetsHeldAnswersGo: Close does not wait for a held answer.
func TestCloseLetsHeldAnswersGo(t *testing.T) {
	t.Parallel()
	f := New()
	f.SetLateAnswers(-1)
	send := func() error {
		_, _, err := httpfault.Send(&http.Client{}, "PUT", f.BaseURL()+"/tasks/approval/approve/14", auth, "application/json", `{"notes":""}`)
		return err
	}
	if err := httpfault.CloseReleases(send, func() bool { return len(f.Decisions()) > 0 }, f.Close); err != nil {
		t.Fatal(err)
	}
}
