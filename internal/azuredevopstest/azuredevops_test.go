package azuredevopstest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/httpfault"
)

func newServer(t *testing.T) (*Server, Check) {
	t.Helper()
	f := New()
	t.Cleanup(f.Close)
	return f, f.NewCheck("")
}

const query = "?api-version=" + APIVersion

func event(c Check, result string) string {
	return `{"name":"TaskCompleted","taskId":"` + c.TaskInstanceID + `","jobId":"` + c.JobID + `","result":"` + result + `"}`
}

func TestNewCheck(t *testing.T) {
	t.Parallel()
	f, c := newServer(t)
	other := f.NewCheck("my-task")
	if c.PlanURL != f.PlanURL() || !strings.HasSuffix(c.PlanURL, Collection) || c.HubName != "checks" || other.TaskInstanceID != "my-task" {
		t.Errorf("checks %+v, %+v", c, other)
	}
	if c.PlanID == other.PlanID || c.AuthToken == other.AuthToken || c.TaskInstanceID == "" || strings.ContainsAny(c.AuthToken, " ,") {
		t.Errorf("two checks share ids or tokens: %+v, %+v", c, other)
	}
	h := c.Headers()
	if h["PlanUrl"] != c.PlanURL || h["AuthToken"] != c.AuthToken || h["TaskInstanceId"] != c.TaskInstanceID || h["TimelineId"] != c.TimelineID || len(h) != 9 {
		t.Errorf("headers %v", h)
	}
	if r := f.Record(c.TaskInstanceID); r.State != StateInProgress || r.Result != "" || r.LogID != 0 {
		t.Errorf("a new check's record is %+v", r)
	}
}

func TestStrictChecks(t *testing.T) {
	t.Parallel()
	f, c := newServer(t)
	other := f.NewCheck("")
	plan := f.URL() + c.PlanPath()
	auth := "Bearer " + c.AuthToken
	records := plan + "/timelines/" + c.TimelineID + "/records"
	tests := []struct {
		name                           string
		method, url, auth, ctype, body string
		want                           int
	}{
		{name: "event", method: "POST", url: plan + "/events" + query, auth: auth, ctype: "application/json", body: event(c, "succeeded"), want: 204},
		{name: "records", method: "GET", url: records + query, auth: auth, want: 200},
		{name: "no token", method: "GET", url: records + query, want: 401},
		{name: "another check's token", method: "GET", url: records + query, auth: "Bearer " + other.AuthToken, want: 401},
		{name: "basic", method: "GET", url: records + query, auth: "Basic " + c.AuthToken, want: 401},
		{name: "no api-version", method: "GET", url: records, auth: auth, want: 400},
		{name: "other api-version", method: "GET", url: records + "?api-version=7.1", auth: auth, want: 400},
		{name: "extra query", method: "GET", url: records + query + "&x=1", auth: auth, want: 400},
		{name: "no collection", method: "GET", url: f.URL() + strings.TrimPrefix(c.PlanPath(), Collection[:len(Collection)-1]) + "/timelines/" + c.TimelineID + "/records" + query, auth: auth, want: 404},
		{name: "no slash after the collection", method: "GET", url: f.URL() + strings.Replace(c.PlanPath(), Collection, strings.TrimSuffix(Collection, "/"), 1) + "/events" + query, auth: auth, want: 404},
		{name: "unknown plan", method: "GET", url: strings.Replace(records, c.PlanID, other.PlanID+"0", 1) + query, auth: auth, want: 404},
		{name: "wrong hub", method: "GET", url: strings.Replace(records, "/hubs/checks/", "/hubs/build/", 1) + query, auth: auth, want: 404},
		{name: "wrong timeline", method: "GET", url: plan + "/timelines/" + other.TimelineID + "/records" + query, auth: auth, want: 404},
		{name: "GET of events", method: "GET", url: plan + "/events" + query, auth: auth, want: 405},
		{name: "PUT of records", method: "PUT", url: records + query, auth: auth, ctype: "application/json", body: "{}", want: 405},
		{name: "event as text", method: "POST", url: plan + "/events" + query, auth: auth, ctype: "text/plain", body: event(c, "succeeded"), want: 415},
		{name: "event of another job", method: "POST", url: plan + "/events" + query, auth: auth, ctype: "application/json",
			body: strings.Replace(event(c, "succeeded"), c.JobID, other.JobID, 1), want: 400},
		{name: "event of another task", method: "POST", url: plan + "/events" + query, auth: auth, ctype: "application/json",
			body: strings.Replace(event(c, "succeeded"), c.TaskInstanceID, other.TaskInstanceID, 1), want: 404},
		{name: "unknown result", method: "POST", url: plan + "/events" + query, auth: auth, ctype: "application/json", body: event(c, "approved"), want: 400},
		{name: "other event", method: "POST", url: plan + "/events" + query, auth: auth, ctype: "application/json",
			body: strings.Replace(event(c, "succeeded"), "TaskCompleted", "TaskStarted", 1), want: 400},
		{name: "unknown field", method: "POST", url: plan + "/events" + query, auth: auth, ctype: "application/json",
			body: strings.Replace(event(c, "succeeded"), `{`, `{"x":1,`, 1), want: 400},
		{name: "log of another path", method: "POST", url: plan + "/logs" + query, auth: auth, ctype: "application/json", body: `{"path":"logs\\x"}`, want: 400},
		{name: "log as octets", method: "POST", url: plan + "/logs" + query, auth: auth, ctype: "application/octet-stream", body: `{"path":"logs\\` + c.TaskInstanceID + `"}`, want: 415},
		{name: "append to no log", method: "POST", url: plan + "/logs/1" + query, auth: auth, ctype: "application/octet-stream", body: "line\n", want: 404},
		{name: "attach no log", method: "PATCH", url: records + query, auth: auth, ctype: "application/json",
			body: `{"value":[{"id":"` + c.TaskInstanceID + `","log":{"id":1}}],"count":1}`, want: 404},
	}
	for _, tc := range tests {
		code, body, err := httpfault.Send(nil, tc.method, tc.url, tc.auth, tc.ctype, tc.body)
		if err != nil || code != tc.want {
			t.Errorf("%s: %s = %d %s (%v), want %d", tc.name, tc.method, code, body, err, tc.want)
		}
	}
	if n := len(f.Completed()); n != 1 {
		t.Errorf("%d checks completed, want the one good event's", n)
	}
	if r := f.Record(other.TaskInstanceID); r.State != StateInProgress {
		t.Errorf("the other check is %+v", r)
	}
}

func TestTheStatusLogAndTheRecords(t *testing.T) {
	t.Parallel()
	f, c := newServer(t)
	plan := f.URL() + c.PlanPath()
	auth := "Bearer " + c.AuthToken
	records := plan + "/timelines/" + c.TimelineID + "/records" + query

	code, body, _ := httpfault.Send(nil, "POST", plan+"/logs"+query, auth, "application/json", `{"path":"logs\\`+c.TaskInstanceID+`"}`)
	var log struct{ ID int }
	if code != 200 || json.Unmarshal([]byte(body), &log) != nil || log.ID != 1 {
		t.Fatalf("create log = %d %s", code, body)
	}
	for _, line := range []string{"one\n", "two\n"} {
		if code, body, _ := httpfault.Send(nil, "POST", plan+"/logs/1"+query, auth, "application/octet-stream", line); code != 200 {
			t.Fatalf("append = %d %s", code, body)
		}
	}
	if code, body, _ := httpfault.Send(nil, "PATCH", records, auth, "application/json",
		`{"value":[{"id":"`+c.TaskInstanceID+`","log":{"id":1}}],"count":1}`); code != 200 || !strings.Contains(body, `"log":{"id":1}`) {
		t.Fatalf("attach = %d %s", code, body)
	}
	if text, ok := f.Log(1); !ok || text != "one\ntwo\n" || f.LogCount() != 1 {
		t.Errorf("log = %q, %v; %d logs", text, ok, f.LogCount())
	}

	read := func() map[string]map[string]any {
		t.Helper()
		code, body, _ := httpfault.Send(nil, "GET", records, auth, "", "")
		var v struct {
			Count int
			Value []map[string]any
		}
		if code != 200 || json.Unmarshal([]byte(body), &v) != nil || v.Count != len(v.Value) {
			t.Fatalf("records = %d %s", code, body)
		}
		out := map[string]map[string]any{}
		for _, r := range v.Value {
			out[r["id"].(string)] = r
		}
		return out
	}
	r := read()
	if len(r) != 2 || r[c.JobID]["type"] != "Job" || r[c.TaskInstanceID]["state"] != StateInProgress || r[c.TaskInstanceID]["result"] != nil {
		t.Errorf("records before the decision: %v", r)
	}

	if code, _, _ := httpfault.Send(nil, "POST", plan+"/events"+query, auth, "application/json", event(c, "failed")); code != 204 {
		t.Fatalf("event = %d", code)
	}
	r = read()
	if rec := r[c.TaskInstanceID]; rec["state"] != StateCompleted || rec["result"] != ResultFailed {
		t.Errorf("record after the decision: %v", rec)
	}
	// A second event changes nothing.
	if code, _, _ := httpfault.Send(nil, "POST", plan+"/events"+query, auth, "application/json", event(c, "succeeded")); code != 204 {
		t.Fatalf("second event = %d", code)
	}
	if rec := f.Record(c.TaskInstanceID); rec.Result != ResultFailed || len(f.Events()) != 2 || len(f.Completed()) != 1 {
		t.Errorf("after a second event: %+v, %d events, %d completed", rec, len(f.Events()), len(f.Completed()))
	}

	f.SetRecord(c.TaskInstanceID, StateCompleted, ResultCanceled)
	if rec := read()[c.TaskInstanceID]; rec["result"] != ResultCanceled {
		t.Errorf("record set: %v", rec)
	}
	f.SetRecord(c.TaskInstanceID, "", "")
	if r := read(); len(r) != 1 {
		t.Errorf("a dropped record is still read: %v", r)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	f, c := newServer(t)
	plan := f.URL() + c.PlanPath()
	auth := "Bearer " + c.AuthToken
	post := func(client *http.Client, check Check) (int, error) {
		code, _, err := httpfault.Send(client, "POST", f.URL()+check.PlanPath()+"/events"+query, "Bearer "+check.AuthToken, "application/json", event(check, "succeeded"))
		return code, err
	}

	f.SetFailFirst(2)
	for i := 0; i < 2; i++ {
		if code, _ := post(nil, c); code != 500 {
			t.Errorf("refused event %d = %d, want 500", i, code)
		}
	}
	if r := f.Record(c.TaskInstanceID); r.State != StateInProgress {
		t.Errorf("a refused event completed the check: %+v", r)
	}
	if code, _ := post(nil, c); code != 204 || len(f.Completed()) != 1 {
		t.Errorf("event after the refusals = %d", code)
	}

	late := f.NewCheck("")
	f.SetLateAnswers(1)
	_, err := post(&http.Client{Timeout: 50 * time.Millisecond}, late)
	if !httpfault.IsTimeout(err) {
		t.Errorf("late event: error = %v, want a timeout", err)
	}
	if r := f.Record(late.TaskInstanceID); r.State != StateCompleted {
		t.Errorf("the late event left %+v", r)
	}

	dropped := f.NewCheck("")
	f.SetDroppedAnswers(1)
	if _, err := post(nil, dropped); !errors.Is(err, io.EOF) {
		t.Errorf("dropped event: error = %v, want EOF", err)
	}
	if r := f.Record(dropped.TaskInstanceID); r.State != StateCompleted {
		t.Errorf("the dropped event left %+v", r)
	}
	events := f.Events()
	if last := events[len(events)-1]; last.Code != 0 || !last.Applied || last.Event().TaskID != dropped.TaskInstanceID || last.Token() != dropped.AuthToken {
		t.Errorf("the dropped event's call %+v", last)
	}

	// Scripted answers change nothing.
	f.SetAnswer(func(c Call) *Answer { return &Answer{Status: 200, Body: `{"id":99}`} })
	if code, body, _ := httpfault.Send(nil, "POST", plan+"/logs"+query, auth, "application/json", `{"path":"logs\\`+c.TaskInstanceID+`"}`); code != 200 || body != `{"id":99}` || f.LogCount() != 0 {
		t.Errorf("scripted answer = %d %s, %d logs", code, body, f.LogCount())
	}
}

// TestCloseLetsHeldAnswersGo: Close does not wait for a held answer.
func TestCloseLetsHeldAnswersGo(t *testing.T) {
	t.Parallel()
	f := New()
	c := f.NewCheck("")
	f.SetLateAnswers(-1)
	send := func() error {
		_, _, err := httpfault.Send(&http.Client{}, "POST", f.URL()+c.PlanPath()+"/events"+query, "Bearer "+c.AuthToken, "application/json", event(c, "succeeded"))
		return err
	}
	if err := httpfault.CloseReleases(send, func() bool { return len(f.Completed()) > 0 }, f.Close); err != nil {
		t.Fatal(err)
	}
}
