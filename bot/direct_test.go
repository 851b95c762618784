package bot

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// TestDirectAndEscalationNotices: Direct sends each named approver (users,
// group members, resolved emails) one copy with working buttons and skips
// those who have one; Update reaches every copy; the escalation notice
// mentions the escalation's approvers.
func TestDirectAndEscalationNotices(t *testing.T) {
	t.Parallel()
	fake := newFakeSlack(t)
	fake.Groups["SREL"] = []string{"UGROUPIE", "UALICE"}
	fake.Emails["lead@example.com"] = "ULEAD"
	policy := approvals.Policy{Name: "prod", NotifyDM: true,
		Approvers: approvals.Approvers{Users: []string{"UALICE"}, Groups: []string{"SREL"}, Emails: []string{"lead@example.com"}},
		Escalate:  &approvals.Escalation{After: 30 * time.Minute, To: approvals.Approvers{Users: []string{"UBOSS"}}}}
	n := notifierFor(fake, func(c *Config) { c.Policies = func() []approvals.Policy { return []approvals.Policy{policy} } })
	task := fixtureTask()
	task.Policy = "prod"
	task.ExpiresAt = time.Now().Add(time.Hour) // pending, not timed out: its copies carry buttons
	task.Messages = []approvals.MessageRef{approvals.MessageRef{Channel: "CPROD", TS: "1.1"}}
	ctx := context.Background()
	copies, err := n.Direct(ctx, task, slackCopies(task), "tok-123")
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, c := range copies {
		users = append(users, c.User)
	}
	if strings.Join(users, ",") != "UALICE,UGROUPIE,ULEAD" {
		t.Fatalf("copies to %v", users)
	}
	for _, call := range fake.CallsTo("chat.postMessage") {
		if b := call.Buttons(); len(b) != 2 || b[0].Value != "tok-123" {
			t.Errorf("a copy to %s has buttons %+v", call.Form.Get("channel"), b)
		}
	}
	task.Messages = append(task.Messages, copies...)
	task.Escalated = true
	more, err := n.Direct(ctx, task, slackCopies(task), "tok-123")
	if err != nil || len(more) != 1 || more[0].User != "UBOSS" {
		t.Fatalf("after the escalation: %+v %v; want one copy, to UBOSS", more, err)
	}
	task.Messages = append(task.Messages, more...)
	before := len(fake.CallsTo("chat.update"))
	if err := n.Update(ctx, task, slackRefs(task), "tok-123"); err != nil {
		t.Fatal(err)
	}
	if got := len(fake.CallsTo("chat.update")) - before; got != 5 {
		t.Errorf("an update made %d chat.update calls, want 5 (the channel message and 4 copies)", got)
	}
	if err := n.Notice(ctx, task, slackMessage(task), approvals.NoticeEscalation); err != nil {
		t.Fatal(err)
	}
	posts := fake.CallsTo("chat.postMessage")
	last := posts[len(posts)-1]
	if last.Form.Get("thread_ts") != "1.1" || !strings.Contains(last.Text(), "<@UBOSS>") {
		t.Errorf("escalation notice %q in thread %q", last.Text(), last.Form.Get("thread_ts"))
	}
}
