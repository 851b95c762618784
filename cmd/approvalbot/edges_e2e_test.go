package main

import (
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// TestRequesterInChatMarkup: a requester written as Slack's email link or
// as a lower-case mention is read as the person it names, so their own
// approve is refused as a self-approval and another approver decides; a
// requester written as a user group names nobody, so every approve is
// refused and nothing is decided. (Before, all three were "names", and the
// requester's own click approved.)
func TestRequesterInChatMarkup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.slack.Emails["dev@example.com"] = "UALICE" // Alice asked for these deployments
	e.start()
	for i, by := range []string{`<mailto:dev@example.com|dev@example.com>`, `<@ualice>`} {
		taskID := []string{"markup1", "markup2"}[i]
		id := e.submit(`{"taskid":"` + taskID + `","environment":"PROD","requestedBy":"` + by + `"}`)
		msg := e.message(taskID)
		e.click(msg, "approve", "UALICE", "Alice")
		waitFor(t, "Alice refused as the requester of "+by, func() bool {
			return countEphemeral(e, "UALICE", "You requested this deployment") == i+1
		})
		if _, task := e.task(id); task["status"] != "pending" || len(task["approvals"].([]any)) != 0 {
			t.Fatalf("requestedBy %s: the requester's click changed the task: %v", by, task)
		}
		e.click(msg, "approve", "UBOB", "Bob")
		task := e.waitTask(id, "approved by Bob", func(task map[string]any) bool { return task["status"] == "approved" })
		if by := task["decidedBy"].(map[string]any)["user"]; by != "UBOB" {
			t.Errorf("decided by %v, want UBOB", by)
		}
	}

	id := e.submit(`{"taskid":"markup3","environment":"PROD","requestedBy":"<!subteam^S1|@deployers>"}`)
	msg := e.message("markup3")
	for _, u := range []string{"UALICE", "UBOB"} {
		e.click(msg, "approve", u, u)
		waitFor(t, u+" refused: requester unreadable", func() bool { return ephemeralTo(e, u, "cannot read") })
	}
	if _, task := e.task(id); task["status"] != "pending" || len(task["approvals"].([]any)) != 0 {
		t.Fatalf("a requester that names nobody: the task changed: %v", task)
	}
	e.click(msg, "reject", "UBOB", "Bob")
	e.waitTask(id, "rejected by Bob", func(task map[string]any) bool { return task["status"] == "rejected" })
}

func countEphemeral(e *env, user, contains string) int {
	n := 0
	for _, c := range e.slack.CallsTo("chat.postEphemeral") {
		if c.Form.Get("user") == user && strings.Contains(strings.ToLower(c.Form.Get("text")), strings.ToLower(contains)) {
			n++
		}
	}
	return n
}

// TestReceiptVerifyRefusesAmbiguousJSON: the built binary's `receipt
// verify` takes the genuine receipt of a real decision (exit 0) and
// refuses it (exit 1, INVALID) with a duplicate key placed first, which
// encoding/json let through as the genuine value came last, with an
// unknown field, and with data after it.
func TestReceiptVerifyRefusesAmbiguousJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.extra = "receipts: {signing_key: " + testReceiptSeed + "}\n"
	e.start()
	id := e.submit(`{"taskid":"rcptdup","environment":"PROD","requestedBy":"dev@example.com"}`)
	e.click(e.message("rcptdup"), "approve", "UALICE", "Alice")
	e.waitTask(id, "delivered", delivered)
	status, raw := e.receiptOf(id)
	if status != http.StatusOK {
		t.Fatalf("receipt: %d %s", status, raw)
	}
	key := receiptKeyPublic(t)
	verify := func(data string) (int, string) {
		t.Helper()
		out, err := exec.Command(approvalbotBinary(t), "receipt", "verify", writeFile(t, []byte(data)), "--public-key", key).CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return 0, string(out)
		case errors.As(err, &exit):
			return exit.ExitCode(), string(out)
		}
		t.Fatal(err)
		return 0, ""
	}
	genuine := string(raw)
	if code, out := verify(genuine); code != 0 || !strings.HasPrefix(out, "valid: "+id+" approved") {
		t.Fatalf("the genuine receipt: exit %d\n%s", code, out)
	}
	for name, data := range map[string]string{
		"a duplicate key placed first": `{"status":"rejected",` + genuine[1:],
		"a duplicate key in the trail": strings.Replace(genuine, `"audit":[{`, `"audit":[{"event":"rejected",`, 1),
		"an unknown field":             `{"verdict":"rejected",` + genuine[1:],
		"trailing data":                genuine + `{"status":"rejected"}`,
		"a trailing brace":             genuine + `}`,
	} {
		if code, out := verify(data); code != 1 || !strings.HasPrefix(out, "INVALID: ") {
			t.Errorf("%s: exit %d, want 1 and INVALID\n%s", name, code, out)
		}
	}
}
