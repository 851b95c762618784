package bot

import (
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/slack-go/slack"
)

// changeTask is the fixture bound to an artifact and a change record.
func changeTask(rec approvals.ChangeRecord) *approvals.Task {
	task := fixtureTask()
	task.Artifact = &approvals.Artifact{Name: "shop <web>", Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	task.Change = "CHG0030001"
	rec.Number, rec.System = "CHG0030001", "servicenow"
	task.ChangeRecord = &rec
	return task
}

func TestRenderArtifactAndChangeGolden(t *testing.T) {
	t.Parallel()
	start, end := renderNow.Add(-time.Hour), renderNow.Add(time.Hour)
	link := "https://acme.service-now.com/nav_to.do?uri=change_request.do%3Fsysparm_query%3Dnumber%3DCHG0030001"
	waiting := changeTask(approvals.ChangeRecord{State: "Assess", NotApproved: "approval requested, state Assess", URL: link, Start: &start, End: &end})
	text, blocks := render(waiting, "tok-123", singlePolicy(), renderNow)
	checkGolden(t, "pending_artifact_change_waiting", marshalMessage(t, text, blocks))

	approved := changeTask(approvals.ChangeRecord{State: "Implement", Approved: true, URL: link, Start: &start, End: &end})
	approved.Status = approvals.StatusApproved
	approved.DecidedBy = &approvals.Person{ID: "U1", Name: "Alice"}
	approved.DecidedAt = &decidedAt
	approved.Approvals = []approvals.Vote{{Person: approvals.Person{ID: "U1", Name: "Alice"}, At: decidedAt}}
	text, blocks = render(approved, "", singlePolicy(), renderNow)
	checkGolden(t, "approved_artifact_change", marshalMessage(t, text, blocks))

	b := changeBlock(waiting, renderNow).(*slack.ContextBlock)
	all := ""
	for _, e := range b.ContextElements.Elements {
		all += e.(*slack.TextBlockObject).Text + "\n"
	}
	for _, want := range []string{"`sha256:0123456789ab`", "shop &lt;web&gt;", "|CHG0030001>", "Assess", "approving waits: change CHG0030001 is not approved"} {
		if !strings.Contains(all, want) {
			t.Errorf("the change block %q does not show %q", all, want)
		}
	}
	if strings.Contains(all, "0123456789abcdef0123") {
		t.Errorf("the block shows the whole digest, not the short one: %q", all)
	}
}

func TestRenderWithoutArtifactOrChangeHasNoChangeBlock(t *testing.T) {
	t.Parallel()
	if b := changeBlock(fixtureTask(), renderNow); b != nil {
		t.Errorf("a task bound to nothing shows %+v", b)
	}
	task := fixtureTask()
	task.Change = "OPS-7" // not looked up yet: the number alone
	b := changeBlock(task, renderNow).(*slack.ContextBlock)
	if got := b.ContextElements.Elements[0].(*slack.TextBlockObject).Text; got != "Change OPS-7" {
		t.Errorf("got %q", got)
	}
}
