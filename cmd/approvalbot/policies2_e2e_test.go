package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/flexdeploytest"
	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// The policies people ask for, end to end: require_from, windows and
// freezes, break-glass and type-to-confirm, on the fake Slack, with the
// domain's clock set by the test.

// settableClock is the domain's clock: it says what the test last set.
type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *settableClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// useClock makes the env's domain run on a settable clock at now.
func useClock(e *env, now time.Time) *settableClock {
	c := &settableClock{now: now}
	e.clock = c.Now
	return c
}

// decisionsFor are FlexDeploy's decision calls for one task.
func decisionsFor(e *env, taskID string) []flexdeploytest.Call {
	var out []flexdeploytest.Call
	for _, c := range e.fd.Decisions() {
		if strings.HasSuffix(c.Path, "/"+taskID) {
			out = append(out, c)
		}
	}
	return out
}

// updatesOf are the chat.update calls of one FlexDeploy task's message.
func updatesOf(e *env, taskID string) []slacktest.Call {
	var out []slacktest.Call
	for _, c := range e.slack.CallsTo("chat.update") {
		if strings.Contains(c.Text(), "FlexDeploy task "+taskID) {
			out = append(out, c)
		}
	}
	return out
}

// waitUpdate waits for an update of the task's message that contains all
// of want.
func waitUpdate(e *env, taskID string, want ...string) slacktest.Call {
	e.t.Helper()
	var found slacktest.Call
	waitFor(e.t, fmt.Sprintf("an update of %s saying %q", taskID, want), func() bool {
		for _, c := range updatesOf(e, taskID) {
			text, all := c.Text(), true
			for _, w := range want {
				all = all && strings.Contains(text, w)
			}
			if all {
				found = c
				return true
			}
		}
		return false
	})
	return found
}

// ephemerals counts the replies to the user that contain text.
func ephemerals(e *env, user, text string) int {
	n := 0
	for _, c := range e.slack.CallsTo("chat.postEphemeral") {
		if c.Form.Get("user") == user && strings.Contains(c.Form.Get("text"), text) {
			n++
		}
	}
	return n
}

// clickAndReply clicks and waits for a new reply to the user containing
// text.
func clickAndReply(e *env, msg slacktest.Call, action, user, text string) {
	e.t.Helper()
	before := ephemerals(e, user, text)
	e.click(msg, action, user, user)
	waitFor(e.t, fmt.Sprintf("a reply to %s saying %q", user, text), func() bool { return ephemerals(e, user, text) > before })
}

// waitView waits for the n-th (from 1) modal opened on the user's clicks
// with the callback id, and returns its view.
func waitView(e *env, user, callbackID string, n int) map[string]any {
	e.t.Helper()
	var view map[string]any
	waitFor(e.t, fmt.Sprintf("modal %s #%d for %s", callbackID, n, user), func() bool {
		seen := 0
		for _, c := range e.slack.CallsTo("views.open") {
			v, _ := c.JSON["view"].(map[string]any)
			if c.JSON["trigger_id"] == "trigger-"+user && v["callback_id"] == callbackID && c.Refused == "" {
				if seen++; seen == n {
					view = v
					return true
				}
			}
		}
		return false
	})
	return view
}

// submitView sends the user's signed submission of the view with one input
// holding value, and returns Slack's answer: nil when the modal closes, or
// the errors shown in it by block id.
func submitView(e *env, view map[string]any, user, block, action, value string) map[string]any {
	e.t.Helper()
	meta, _ := view["private_metadata"].(string)
	callback, _ := view["callback_id"].(string)
	sub := slacktest.Submission{CallbackID: callback, PrivateMetadata: meta, UserID: user, UserName: user, TriggerID: "trigger-" + user + "-2",
		Values: map[string]map[string]string{block: {action: value}}}
	req, err := slacktest.InteractionRequest(e.url+"/slack/interactions", testSigningSecret, time.Now(), sub.Payload())
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("submission answered %d %s", res.StatusCode, raw)
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return nil
	}
	var out struct {
		ResponseAction string         `json:"response_action"`
		Errors         map[string]any `json:"errors"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.ResponseAction != "errors" {
		e.t.Fatalf("submission answered %s", raw)
	}
	return out.Errors
}

func status(task map[string]any) string {
	s, _ := task["status"].(string)
	return s
}

func approvalsOf(task map[string]any) int {
	list, _ := task["approvals"].([]any)
	return len(list)
}

const fourEyesPolicies = `
  - name: four-eyes
    match: {environment: "PROD"}
    channel: CPROD
    approvers: {users: [UCAROL]}
    required_approvals: 2
    require_from:
      - {name: SRE, group: SSRE, count: 1}
      - {name: QA, group: SQA, count: 1}
  - name: four-eyes-overlap
    match: {environment: "PROD-OVERLAP"}
    channel: CPROD
    required_approvals: 2
    overlap: true
    require_from:
      - {name: SRE, group: SSRE, count: 1}
      - {name: QA, group: SQA, count: 1}
`

// TestQuorumPerGroupInEveryOrder: one SRE and one QA are needed, in either
// order; one person in both groups counts for one entry only (for both
// with overlap, still one of two people); a person votes once. Each vote
// that does not decide is answered with every entry's count, and the
// message shows them.
func TestQuorumPerGroupInEveryOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = fourEyesPolicies
	e.slack.Groups["SSRE"] = []string{"USRE1", "USRE2", "UBOTH"}
	e.slack.Groups["SQA"] = []string{"UQA", "UBOTH"}
	e.start()

	tests := []struct {
		name    string
		env     string
		votes   []string
		decided int      // the vote (from 1) that decides; 0: none does
		entries []string // the entries' line after each vote that does not decide
	}{
		{"SRE then QA", "PROD", []string{"USRE1", "UQA"}, 2, []string{"SRE 1/1 · QA 0/1"}},
		{"QA then SRE", "PROD", []string{"UQA", "USRE1"}, 2, []string{"SRE 0/1 · QA 1/1"}},
		{"two SREs are not a QA", "PROD", []string{"USRE1", "USRE2"}, 0, []string{"SRE 1/1 · QA 0/1", "SRE 1/1 · QA 0/1"}},
		{"one in both, then an SRE: both filled", "PROD", []string{"UBOTH", "USRE1"}, 2, []string{"SRE 1/1 · QA 0/1"}},
		{"an SRE, then one in both", "PROD", []string{"USRE1", "UBOTH"}, 2, []string{"SRE 1/1 · QA 0/1"}},
		{"one in both, then a QA", "PROD", []string{"UBOTH", "UQA"}, 2, []string{"SRE 1/1 · QA 0/1"}},
		{"one in both counts for one entry", "PROD", []string{"UBOTH"}, 0, []string{"SRE 1/1 · QA 0/1"}},
		{"an approver of no entry, then one in both", "PROD", []string{"UCAROL", "UBOTH"}, 0, []string{"SRE 0/1 · QA 0/1", "SRE 1/1 · QA 0/1"}},
		{"overlap: one in both fills both, but two people are needed", "PROD-OVERLAP", []string{"UBOTH"}, 0, []string{"SRE 1/1 · QA 1/1"}},
		{"overlap: one in both, then an SRE", "PROD-OVERLAP", []string{"UBOTH", "USRE2"}, 2, []string{"SRE 1/1 · QA 1/1"}},
	}
	for i, tc := range tests {
		taskID := fmt.Sprintf("grp-%02d", i)
		id := e.submit(fmt.Sprintf(`{"taskId":%q,"environment":%q}`, taskID, tc.env))
		msg := e.message(taskID)
		if !strings.Contains(msg.Text(), "0 of 2 approvals") || !strings.Contains(msg.Text(), "SRE 0/1 · QA 0/1") {
			t.Errorf("%s: the new message does not show the entries: %s", tc.name, msg.Text())
		}
		for v, user := range tc.votes {
			if v+1 == tc.decided {
				e.click(msg, "approve", user, user)
				e.waitTask(id, tc.name+": approved", func(task map[string]any) bool { return status(task) == "approved" })
				break
			}
			clickAndReply(e, msg, "approve", user, fmt.Sprintf("Your approval is counted (%d of 2 · %s).", v+1, tc.entries[v]))
			if _, task := e.task(id); status(task) != "pending" || approvalsOf(task) != v+1 {
				t.Fatalf("%s: after vote %d by %s: %v", tc.name, v+1, user, task)
			}
			if v == 0 {
				// A later update may be lost while this one is under way
				// (see the report on approvals.EnsureUpdate); the first
				// never is.
				waitUpdate(e, taskID, "1 of 2 approvals", tc.entries[0])
			}
		}
		if tc.decided == 0 {
			// Clicking again counts nothing.
			last := tc.votes[len(tc.votes)-1]
			clickAndReply(e, msg, "approve", last, "already counted")
			if _, task := e.task(id); status(task) != "pending" || approvalsOf(task) != len(tc.votes) {
				t.Errorf("%s: a second click changed the task: %v", tc.name, task)
			}
			continue
		}
		e.waitTask(id, tc.name+": delivered", delivered)
		notes := decisionsFor(e, taskID)
		if len(notes) != 1 || !strings.Contains(notes[0].Notes(), "("+tc.votes[0]+") and ") || !strings.Contains(notes[0].Notes(), "("+tc.votes[1]+")") {
			t.Errorf("%s: decisions %+v", tc.name, notes)
		}
		waitUpdate(e, taskID, "Approved by")
	}
}

// officeHours are a window on weekdays, 09:00 to 17:00, in each of three
// zones: two with daylight saving time, changing on different Sundays,
// and one without.
const officeHours = `
  - name: office-ams
    match: {environment: ams}
    channel: CPROD
    approvers: {users: [UALICE]}
    windows: [{days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00", timezone: Europe/Amsterdam}]
  - name: office-nyc
    match: {environment: nyc}
    channel: CPROD
    approvers: {users: [UALICE]}
    windows: [{days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00", timezone: America/New_York}]
  - name: office-tyo
    match: {environment: tyo}
    channel: CPROD
    approvers: {users: [UALICE]}
    windows: [{days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00", timezone: Asia/Tokyo}]
`

// sundayOf is the n-th Sunday of the month (n < 0: the last).
func sundayOf(year int, month time.Month, n int, loc *time.Location) time.Time {
	if n < 0 {
		d := time.Date(year, month+1, 0, 12, 0, 0, 0, loc) // the month's last day
		for d.Weekday() != time.Sunday {
			d = d.AddDate(0, 0, -1)
		}
		return d
	}
	d := time.Date(year, month, 1, 12, 0, 0, 0, loc)
	for d.Weekday() != time.Sunday {
		d = d.AddDate(0, 0, 1)
	}
	return d.AddDate(0, 0, 7*(n-1))
}

func at(day time.Time, hour, minute int) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), hour, minute, 0, 0, day.Location())
}

// TestWindowClicksAcrossZonesAndDST: a click one minute before a window
// opens is refused with when it opens, one at the opening and one a
// minute before it closes decide, one a minute after it closed is refused
// with the next opening; on the Mondays before and after spring's change
// in Amsterdam and New York (on different Sundays), and in Tokyo (no
// change). Next year's dates, so that the wall clock, which renders the
// message, never finds the tasks expired.
func TestWindowClicksAcrossZonesAndDST(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = officeHours
	clock := useClock(e, time.Now())
	e.start()

	year := time.Now().Year() + 1
	zone := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	ams, nyc, tyo := zone("Europe/Amsterdam"), zone("America/New_York"), zone("Asia/Tokyo")
	euChange := sundayOf(year, time.March, -1, ams) // the last Sunday of March
	usChange := sundayOf(year, time.March, 2, nyc)  // the second Sunday of March
	type day struct {
		env    string
		monday time.Time
	}
	days := []day{
		{"tyo", sundayOf(year, time.March, 2, tyo).AddDate(0, 0, -6)},
		{"nyc", usChange.AddDate(0, 0, -6)},
		{"tyo", sundayOf(year, time.March, 2, tyo).AddDate(0, 0, 1)},
		{"nyc", usChange.AddDate(0, 0, 1)},
		{"ams", euChange.AddDate(0, 0, -6)},
		{"ams", euChange.AddDate(0, 0, 1)},
	}
	// The Mondays around a change are in different offsets: the change is
	// crossed.
	for _, pair := range [][2]day{{days[1], days[3]}, {days[4], days[5]}} {
		_, before := at(pair[0].monday, 9, 0).Zone()
		_, after := at(pair[1].monday, 9, 0).Zone()
		if before == after {
			t.Fatalf("%s: no change of offset between %s and %s", pair[0].env, pair[0].monday, pair[1].monday)
		}
	}
	var last time.Time
	for i, d := range days {
		if d.monday.Weekday() != time.Monday {
			t.Fatalf("%s is not a Monday", d.monday)
		}
		if start := at(d.monday, 8, 59); !start.After(last) {
			t.Fatalf("the days overlap: %s starts before %s", start, last)
		}
		name := d.monday.Location().String()
		task := func(n int) (string, string) {
			taskID := fmt.Sprintf("win-%02d-%d", i, n)
			return taskID, e.submit(fmt.Sprintf(`{"taskId":%q,"environment":%q}`, taskID, d.env))
		}
		approve := func(taskID, id string, msg slacktest.Call, when string) {
			e.click(msg, "approve", "UALICE", "Alice")
			e.waitTask(id, fmt.Sprintf("%s %s: approved", name, when), func(task map[string]any) bool { return status(task) == "approved" })
		}

		// One minute before the opening: refused, saying when it opens.
		clock.Set(at(d.monday, 8, 59))
		early, earlyID := task(1)
		msg := e.message(early)
		clickAndReply(e, msg, "approve", "UALICE", "Approving is closed now: outside the approval windows; opens Mon 09:00 "+name+". Rejecting still works.")
		if _, task := e.task(earlyID); status(task) != "pending" || approvalsOf(task) != 0 {
			t.Fatalf("%s 08:59: %v", name, task)
		}
		// At the opening: decided.
		clock.Set(at(d.monday, 9, 0))
		approve(early, earlyID, msg, "09:00")

		// One minute before the close: decided; one minute after: refused
		// until the next day.
		clock.Set(at(d.monday, 16, 59))
		inside, insideID := task(2)
		late, lateID := task(3)
		approve(inside, insideID, e.message(inside), "16:59")
		lateMsg := e.message(late)
		clock.Set(at(d.monday, 17, 1))
		clickAndReply(e, lateMsg, "approve", "UALICE", "opens Tue 09:00 "+name)
		if _, task := e.task(lateID); status(task) != "pending" {
			t.Fatalf("%s 17:01: %v", name, task)
		}
		// Rejecting works outside the window.
		e.click(lateMsg, "reject", "UALICE", "Alice")
		e.waitTask(lateID, name+" 17:01: rejected", func(task map[string]any) bool { return status(task) == "rejected" })
		last = at(d.monday, 17, 1)
	}
}

// freezeAroundNow is a freeze the wall clock is in, for the tests whose
// messages (rendered at the wall clock) must show it.
func freezeAroundNow() (from, to time.Time) {
	now := time.Now().UTC().Truncate(time.Minute)
	return now.Add(-time.Hour), now.Add(72 * time.Hour)
}

// TestFreezeRefusesApproveNotReject: inside a freeze, an approve click is
// refused with the reason and the end, the message says so, and a reject
// decides; once the freeze has ended, approving works.
func TestFreezeRefusesApproveNotReject(t *testing.T) {
	t.Parallel()
	from, to := freezeAroundNow()
	e := newEnv(t)
	clock := useClock(e, from.Add(time.Hour))
	e.policies = fmt.Sprintf(`
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {users: [UALICE, UBOB]}
    freezes:
      - {from: %s, to: %s, reason: Year-end freeze}
`, from.Format(time.RFC3339), to.Format(time.RFC3339))
	e.start()
	until := "Year-end freeze: frozen until " + to.Format("2006-01-02 15:04 UTC")

	id := e.submit(`{"taskId":"frz-1","environment":"PROD"}`)
	msg := e.message("frz-1")
	if !strings.Contains(msg.Text(), until) || !strings.Contains(msg.Text(), "rejecting still works") || len(msg.Buttons()) != 2 {
		t.Errorf("the message does not show the freeze: %s", msg.Text())
	}
	clickAndReply(e, msg, "approve", "UALICE", "Approving is closed now: "+until+". Rejecting still works.")
	if _, task := e.task(id); status(task) != "pending" || approvalsOf(task) != 0 {
		t.Fatalf("approved in a freeze: %v", task)
	}
	e.click(msg, "reject", "UBOB", "Bob")
	task := e.waitTask(id, "rejected and delivered", delivered)
	if status(task) != "rejected" {
		t.Fatalf("task %v", task)
	}
	if d := decisionsFor(e, "frz-1"); len(d) != 1 || !strings.Contains(d[0].Path, "/reject/") {
		t.Fatalf("decisions %+v", d)
	}

	// The freeze over, the same policy lets approving happen.
	clock.Set(to.Add(time.Minute))
	id = e.submit(`{"taskId":"frz-2","environment":"PROD"}`)
	e.click(e.message("frz-2"), "approve", "UALICE", "Alice")
	if task := e.waitTask(id, "approved after the freeze", delivered); status(task) != "approved" {
		t.Fatalf("task %v", task)
	}
}

// TestBreakGlassDuringFreeze: the requester, on call, approves their own
// task in a freeze by breaking glass: without a reason nothing is decided;
// with one the task is approved at once (of two approvals), delivered with
// BREAK-GLASS in the notes, marked on the message and announced in the
// thread to every approver. Others cannot break glass, not even with a
// forged submission.
func TestBreakGlassDuringFreeze(t *testing.T) {
	t.Parallel()
	from, to := freezeAroundNow()
	e := newEnv(t)
	useClock(e, from.Add(time.Hour))
	e.slack.Groups["SONCALL"] = []string{"UDEV"}
	e.policies = fmt.Sprintf(`
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {users: [UALICE, UDEV], groups: [SREL]}
    required_approvals: 2
    freezes:
      - {from: %s, to: %s, reason: Year-end freeze}
    break_glass: {groups: [SONCALL]}
`, from.Format(time.RFC3339), to.Format(time.RFC3339))
	e.start()

	id := e.submit(`{"taskId":"bg-1","environment":"PROD","requestedBy":"dev@example.com"}`)
	msg := e.message("bg-1")
	clickAndReply(e, msg, "approve", "UALICE", "Approving is closed now: Year-end freeze")

	// The requester's click opens the break-glass dialog.
	e.click(msg, "approve", "UDEV", "Dev")
	view := waitView(e, "UDEV", "break_glass", 1)
	raw, _ := json.Marshal(view)
	if !strings.Contains(string(raw), "Year-end freeze: frozen until") || view["private_metadata"] != msg.Buttons()[0].Value {
		t.Errorf("break-glass dialog %s", raw)
	}
	if n := ephemerals(e, "UDEV", ""); n != 0 {
		t.Errorf("the requester got %d replies besides the dialog", n)
	}

	// Without a reason: refused in the dialog, nothing decided.
	errs := submitView(e, view, "UDEV", "reason", "reason", "   ")
	if got, _ := errs["reason"].(string); got != "A reason is required to break glass." {
		t.Errorf("a submission without a reason answered %v", errs)
	}
	// Someone not on call: refused too, forged submission or not.
	errs = submitView(e, view, "UALICE", "reason", "reason", "I want to")
	if got, _ := errs["reason"].(string); !strings.Contains(got, "not an approver") {
		t.Errorf("a break glass by someone not on call answered %v", errs)
	}
	if _, task := e.task(id); status(task) != "pending" || approvalsOf(task) != 0 || len(decisionsFor(e, "bg-1")) != 0 {
		t.Fatalf("a refused break glass decided: %v", task)
	}

	// With a reason: approved at once, and said so everywhere.
	if errs := submitView(e, view, "UDEV", "reason", "reason", "payments are down, hotfix"); errs != nil {
		t.Fatalf("break glass with a reason answered %v", errs)
	}
	task := e.waitTask(id, "approved and delivered", delivered)
	if status(task) != "approved" || task["decidedBy"].(map[string]any)["user"] != "UDEV" || task["reason"] != "payments are down, hotfix" {
		t.Fatalf("task %v", task)
	}
	d := decisionsFor(e, "bg-1")
	if len(d) != 1 || !strings.Contains(d[0].Path, "/approve/") || !strings.HasPrefix(d[0].Notes(), "BREAK-GLASS: ") || !strings.Contains(d[0].Notes(), "payments are down, hotfix") {
		t.Fatalf("decisions %+v", d)
	}
	final := waitUpdate(e, "bg-1", "BREAK-GLASS", "Approved by", "payments are down, hotfix")
	if len(final.Buttons()) != 0 {
		t.Errorf("the decided message keeps its buttons")
	}
	waitFor(t, "the announcement in the thread", func() bool {
		for _, c := range e.slack.CallsTo("chat.postMessage") {
			text := c.Form.Get("text")
			if c.Form.Get("thread_ts") != "" && strings.Contains(text, "BREAK-GLASS") &&
				strings.Contains(text, "<@UALICE>") && strings.Contains(text, "<@UDEV>") && strings.Contains(text, "<!subteam^SREL>") &&
				strings.Contains(text, "payments are down, hotfix") {
				return true
			}
		}
		return false
	})
}

// TestConfirmByTypingTheEnvironment: approving opens a dialog; a wrong
// environment is answered in it and decides nothing, the right one
// (whatever its case) approves.
func TestConfirmByTypingTheEnvironment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = `
  - name: production
    match: {environment: "PROD*"}
    channel: CPROD
    approvers: {users: [UALICE]}
    confirm: type_environment
`
	e.start()
	id := e.submit(`{"taskId":"cnf-1","environment":"PROD-EU"}`)
	msg := e.message("cnf-1")
	e.click(msg, "approve", "UALICE", "Alice")
	view := waitView(e, "UALICE", "confirm_environment", 1)
	if raw, _ := json.Marshal(view); !strings.Contains(string(raw), "Type PROD-EU to approve.") {
		t.Errorf("confirm dialog %s", raw)
	}
	if _, task := e.task(id); status(task) != "pending" {
		t.Fatalf("the click alone decided: %v", task)
	}

	errs := submitView(e, view, "UALICE", "environment", "environment", "PROD-US")
	if got, _ := errs["environment"].(string); !strings.Contains(got, "does not match; nothing was decided") {
		t.Errorf("a wrong environment answered %v", errs)
	}
	errs = submitView(e, view, "UALICE", "environment", "environment", "")
	if got, _ := errs["environment"].(string); !strings.Contains(got, "Type the environment's name") {
		t.Errorf("an empty environment answered %v", errs)
	}
	if _, task := e.task(id); status(task) != "pending" || approvalsOf(task) != 0 || len(decisionsFor(e, "cnf-1")) != 0 {
		t.Fatalf("a wrong confirmation decided: %v", task)
	}

	if errs := submitView(e, view, "UALICE", "environment", "environment", " prod-eu "); errs != nil {
		t.Fatalf("the right environment answered %v", errs)
	}
	if task := e.waitTask(id, "approved and delivered", delivered); status(task) != "approved" {
		t.Fatalf("task %v", task)
	}
	waitUpdate(e, "cnf-1", "Approved by")
}

// TestPolicyRulesConfigCheck: config check names every invalid form of the
// rules' keys by its path, all at once, and warns of a freeze that ended.
func TestPolicyRulesConfigCheck(t *testing.T) {
	t.Parallel()
	const base = "tokens: {signing_keys: [{id: k1, secret: " + testSigningKey + "}]}\npolicies:\n"
	bad := writeConfig(t, base+`
  - name: p
    approvers: {users: [U1, U2]}
    require_from:
      - {name: leads, users: [U1, U2], count: 3}
      - {group: S0QA, count: 0}
      - {name: both, group: S0SRE, users: [U1], count: 1}
      - {name: Leads, users: [U3], count: 1}
    windows:
      - {days: [mon, funday], from: "09:00", to: "17:00", timezone: Europe/Amsterdam}
      - {days: [tue], from: "9am", to: "24:01", timezone: Mars/Olympus}
      - {days: [wed], from: "22:00", to: "06:00", timezone: UTC}
      - {from: "09:00", to: "17:00", timezone: Local}
    freezes:
      - {from: 2026-12-20T00:00:00Z, to: 2027-01-04T00:00:00Z, reason: Year-end freeze}
      - {from: 2027-01-03T00:00:00Z, to: 2027-01-10T00:00:00Z}
      - {from: 2027-02-01T00:00:00Z, to: 2027-01-01T00:00:00Z}
      - {from: "tomorrow", to: 2027-03-01T00:00:00Z}
    confirm: type_project
`)
	_, errOut, err := runCLI(t, "config", "check", "--config", bad)
	if !errors.Is(err, errReported) {
		t.Fatalf("config check of an invalid file: %v", err)
	}
	for _, want := range []string{
		`policies[0].require_from[0].count: 3 approvals needed but only 2 people are named`,
		`policies[0].require_from[1].count: must be at least 1, got 0`,
		`policies[0].require_from[2]: give a group or users and emails, not both`,
		`policies[0].require_from[3].name: "Leads" is also the name of require_from[0]`,
		`policies[0].windows[0].days[1]: unknown day "funday", must be one of mon, tue, wed, thu, fri, sat, sun`,
		`policies[0].windows[1].from: must be a time of day from "00:00" to "23:59", like "09:00", got "9am"`,
		`policies[0].windows[1].to: must be a time of day from "00:01" to "24:00", like "17:00", got "24:01"`,
		`policies[0].windows[1].timezone: unknown time zone "Mars/Olympus"`,
		`policies[0].windows[2].to: "06:00" is not after from ("22:00")`,
		`policies[0].windows[3].days: must name at least one day`,
		`policies[0].windows[3].timezone: must name an IANA time zone, like Europe/Amsterdam or UTC: Local is whatever the host says`,
		`policies[0].freezes[1]: overlaps freezes[0] (2026-12-20T00:00:00Z to 2027-01-04T00:00:00Z): merge them into one freeze`,
		`policies[0].freezes[2].to: 2027-01-01T00:00:00Z is not after from (2027-02-01T00:00:00Z)`,
		`policies[0].freezes[3].from: must be an RFC 3339 time with its zone, like 2026-12-20T00:00:00Z, or a date, got "tomorrow"`,
		`policies[0].confirm: must be type_environment (or left out), got "type_project"`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("config check does not say %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(errOut, "(15 problems)") {
		t.Errorf("config check does not list 15 problems:\n%s", errOut)
	}

	ended := writeConfig(t, base+`
  - name: p
    approvers: {users: [U1]}
    freezes: [{from: 2020-12-20T00:00:00Z, to: 2021-01-04T00:00:00Z, reason: long ago}]
`)
	out, _, err := runCLI(t, "config", "check", "--config", ended)
	if err != nil || !strings.Contains(out, "is valid") || !strings.Contains(out, "warning: policies[0].freezes[0]: ended at 2021-01-04T00:00:00Z") {
		t.Errorf("config check of an ended freeze: %v\n%s", err, out)
	}
}
