package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/slacktest"
	"github.com/slack-go/slack"
)

// closedByFreeze is the service's answer to an approve click of someone who
// may break glass, during a freeze.
func closedByFreeze() error {
	return fmt.Errorf("%w (%w)", approvals.ErrBreakGlassNeeded,
		&approvals.Refusal{Err: approvals.ErrApprovingClosed, Detail: "Year-end freeze: frozen until 2027-01-04 00:00 UTC"})
}

func TestInteractionsOpenPromptModals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantKind   string
		wantDetail string
	}{
		{"break glass in a freeze", closedByFreeze(), "break_glass", "Approving is closed now: Year-end freeze: frozen until 2027-01-04 00:00 UTC."},
		{"break glass for one's own task", fmt.Errorf("%w (%w)", approvals.ErrBreakGlassNeeded, approvals.ErrSelfApproval), "break_glass", "You requested this deployment"},
		{"type to confirm", approvals.ErrConfirmRequired, "confirm", "PROD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rig := newInteractionsRig(t, func(context.Context, approvals.DecideRequest) (*approvals.Task, error) {
				return fixtureTask(), tc.err
			})
			body := formBody(blockActionsPayload("approve", clickToken))
			if status, _ := rig.post(t, body, signedHeaders(body, clickTime)); status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			prompts := rig.replier.Prompts()
			if len(prompts) != 1 {
				t.Fatalf("opened %+v, want one %s modal", prompts, tc.wantKind)
			}
			p := prompts[0]
			if p.Kind != tc.wantKind || p.TriggerID != testTriggerID || p.Token != clickToken || !strings.Contains(p.Detail, tc.wantDetail) {
				t.Errorf("opened %+v, want %s with %q", p, tc.wantKind, tc.wantDetail)
			}
			if e := rig.replier.Ephemerals(); len(e) != 0 {
				t.Errorf("replies %+v, want none: the modal asks", e)
			}
			if len(rig.replier.Opened()) != 0 {
				t.Error("the reject reason modal opened")
			}
		})
	}
	t.Run("the modal does not open", func(t *testing.T) {
		t.Parallel()
		rig := newInteractionsRig(t, func(context.Context, approvals.DecideRequest) (*approvals.Task, error) {
			return fixtureTask(), closedByFreeze()
		})
		rig.replier.openErr = errors.New("slack: open break-glass reason: expired_trigger_id")
		body := formBody(blockActionsPayload("approve", clickToken))
		rig.post(t, body, signedHeaders(body, clickTime))
		e := rig.replier.Ephemerals()
		if len(e) != 1 || !strings.Contains(e[0].Text, "only by breaking glass") || !strings.Contains(e[0].Text, "did not open") {
			t.Errorf("replies %+v, want one saying break-glass is needed and the dialog did not open", e)
		}
	})
	t.Run("a reject never prompts", func(t *testing.T) {
		t.Parallel()
		rig := newInteractionsRig(t, func(context.Context, approvals.DecideRequest) (*approvals.Task, error) {
			return fixtureTask(), approvals.ErrConfirmRequired
		})
		body := formBody(blockActionsPayload("reject", clickToken))
		rig.post(t, body, signedHeaders(body, clickTime))
		if p := rig.replier.Prompts(); len(p) != 0 {
			t.Errorf("a reject opened %+v", p)
		}
	})
}

// TestInteractionsRepliesCarryDetail: a refusal's detail (when approving
// opens) reaches the clicker.
func TestInteractionsRepliesCarryDetail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"outside the windows", &approvals.Refusal{Err: approvals.ErrApprovingClosed, Detail: "outside the approval windows; opens Mon 09:00 Europe/Amsterdam"},
			"Approving is closed now: outside the approval windows; opens Mon 09:00 Europe/Amsterdam. Rejecting still works."},
		{"a freeze, its reason escaped", &approvals.Refusal{Err: approvals.ErrApprovingClosed, Detail: "<!channel> freeze: frozen until 2027-01-04 00:00 UTC"},
			"Approving is closed now: &lt;!channel&gt; freeze: frozen until 2027-01-04 00:00 UTC."},
		{"no detail", approvals.ErrApprovingClosed, "Approving is closed now: try again later."},
		{"a wrong environment", approvals.ErrConfirmMismatch, "does not match; nothing was decided"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rig := newInteractionsRig(t, func(context.Context, approvals.DecideRequest) (*approvals.Task, error) {
				return fixtureTask(), tc.err
			})
			body := formBody(blockActionsPayload("approve", clickToken))
			rig.post(t, body, signedHeaders(body, clickTime))
			e := rig.replier.Ephemerals()
			if len(e) != 1 || !strings.Contains(e[0].Text, tc.want) {
				t.Errorf("replies %+v, want one containing %q", e, tc.want)
			}
		})
	}
}

// TestInteractionsCountedShowsEntries: a vote that does not decide is told
// each require_from entry's count.
func TestInteractionsCountedShowsEntries(t *testing.T) {
	t.Parallel()
	replier := &fakeReplier{}
	h := NewInteractions(InteractionsConfig{
		Decider: &fakeDecider{decide: func(_ context.Context, req approvals.DecideRequest) (*approvals.Task, error) {
			task := fixtureTask()
			task.RequiredApprovals = 2
			task.Approvals = []approvals.Vote{{Person: req.User, At: clickTime, Fills: []string{"SRE"}}}
			return task, nil
		}},
		Replier:  replier,
		Policies: func() []approvals.Policy { return []approvals.Policy{*requireFromPolicy()} },
	})
	h.Handle(context.Background(), clickCallback(t, "approve"))
	h.Close()
	e := replier.Ephemerals()
	if len(e) != 1 || e[0].Text != "Your approval is counted (1 of 2 · SRE 1/1 · QA 0/1)." {
		t.Errorf("replies %+v", e)
	}
}

func clickCallback(t *testing.T, actionID string) slack.InteractionCallback {
	t.Helper()
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(blockActionsPayload(actionID, clickToken)), &cb); err != nil {
		t.Fatal(err)
	}
	return cb
}

// submissionPayload is carol's (U3) submission of a modal with one input.
func submissionPayload(callbackID, block, action, value string) string {
	return slacktest.Submission{CallbackID: callbackID, PrivateMetadata: clickToken, UserID: "U3", UserName: "carol",
		TriggerID: "trigger-2", Values: map[string]map[string]string{block: {action: value}}}.Payload()
}

func TestInteractionsPromptSubmissions(t *testing.T) {
	t.Parallel()
	carol := approvals.Person{ID: "U3", Name: "carol", Chat: ChatName}
	tests := []struct {
		name      string
		payload   string
		err       error
		want      approvals.DecideRequest
		wantBlock string // the block the error is shown on; "" closes the modal
		wantError string
	}{
		{name: "break glass with a reason", payload: submissionPayload("break_glass", "reason", "reason", "  payments down  "),
			want: approvals.DecideRequest{Token: clickToken, Action: approvals.ActionApprove, User: carol, BreakGlass: true, Reason: "payments down"}},
		{name: "break glass without a reason", payload: submissionPayload("break_glass", "reason", "reason", "   "), err: approvals.ErrBreakGlassReason,
			want:      approvals.DecideRequest{Token: clickToken, Action: approvals.ActionApprove, User: carol, BreakGlass: true},
			wantBlock: "reason", wantError: "A reason is required to break glass."},
		{name: "the right environment", payload: submissionPayload("confirm_environment", "environment", "environment", " prod "),
			want: approvals.DecideRequest{Token: clickToken, Action: approvals.ActionApprove, User: carol, Confirm: "prod"}},
		{name: "a wrong environment", payload: submissionPayload("confirm_environment", "environment", "environment", "staging"), err: approvals.ErrConfirmMismatch,
			want:      approvals.DecideRequest{Token: clickToken, Action: approvals.ActionApprove, User: carol, Confirm: "staging"},
			wantBlock: "environment", wantError: "does not match; nothing was decided"},
		{name: "closed meanwhile", payload: submissionPayload("confirm_environment", "environment", "environment", "prod"),
			err:       &approvals.Refusal{Err: approvals.ErrApprovingClosed, Detail: "Year-end freeze: frozen until 2027-01-04 00:00 UTC"},
			want:      approvals.DecideRequest{Token: clickToken, Action: approvals.ActionApprove, User: carol, Confirm: "prod"},
			wantBlock: "environment", wantError: "Year-end freeze: frozen until 2027-01-04 00:00 UTC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rig := newInteractionsRig(t, func(context.Context, approvals.DecideRequest) (*approvals.Task, error) {
				return fixtureTask(), tc.err
			})
			body := formBody(tc.payload)
			status, out := rig.post(t, body, signedHeaders(body, clickTime))
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			if reqs := rig.decider.Requests(); len(reqs) != 1 || reqs[0] != tc.want {
				t.Errorf("requests %+v, want %+v", reqs, tc.want)
			}
			if tc.wantBlock == "" {
				if out != "" {
					t.Errorf("body %q, want empty (closes the modal)", out)
				}
				return
			}
			var resp slack.ViewSubmissionResponse
			if err := json.Unmarshal([]byte(out), &resp); err != nil {
				t.Fatalf("body %q: %v", out, err)
			}
			if resp.ResponseAction != slack.RAErrors || !strings.Contains(resp.Errors[tc.wantBlock], tc.wantError) {
				t.Errorf("response %+v, want errors on %s containing %q", resp, tc.wantBlock, tc.wantError)
			}
		})
	}
}

// TestPromptModals: both modals carry the token, fit Slack (with the
// largest token and environment), fall back to minimal ones when Slack
// refuses them, and are golden files.
func TestPromptModals(t *testing.T) {
	t.Parallel()
	largestEnv := runesOf("PROD "+hostileRunes, intakeFieldRunes)
	why := "Approving is closed now: " + runesOf("Freeze "+hostileRunes, 200) + ": frozen until 2027-01-04 00:00 UTC."
	for _, tc := range []struct {
		name     string
		callback string
		open     func(n *Notifier, trigger, token string) error
		golden   slack.ModalViewRequest
	}{
		{"modal_break_glass", callbackBreakGlass, func(n *Notifier, trigger, token string) error {
			return n.OpenBreakGlass(context.Background(), trigger, token, why)
		}, breakGlassView("tok-break-glass", "Approving is closed now: Year-end freeze: frozen until 2027-01-04 00:00 UTC.")},
		{"modal_confirm", callbackConfirm, func(n *Notifier, trigger, token string) error {
			return n.OpenConfirm(context.Background(), trigger, token, largestEnv)
		}, confirmView("tok-confirm", "PROD")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw, err := json.MarshalIndent(tc.golden, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := slacktest.CheckView(raw); err != nil {
				t.Errorf("Slack refuses the golden view: %v", err)
			}
			checkGolden(t, tc.name, append(raw, '\n'))

			fake := newFakeSlack(t)
			n := notifierFor(fake, nil)
			if err := tc.open(n, "trigger-1", largestToken); err != nil {
				t.Fatalf("open: %v", err)
			}
			fake.RefuseBlocks("invalid_arguments", 1)
			if err := tc.open(n, "trigger-2", largestToken); err != nil {
				t.Fatalf("open after a refusal: %v", err)
			}
			calls := fake.CallsTo("views.open")
			if len(calls) != 3 || calls[0].Refused != "" || calls[1].Refused != "invalid_arguments" || calls[2].Refused != "" {
				t.Fatalf("views.open calls %d, want the full one, a refusal and the minimal one accepted", len(calls))
			}
			for _, c := range []slacktest.Call{calls[0], calls[2]} {
				raw, _ := json.Marshal(c.JSON["view"])
				if err := slacktest.CheckView(raw); err != nil {
					t.Errorf("view refused: %v", err)
				}
				view := c.JSON["view"].(map[string]any)
				if view["private_metadata"] != largestToken || view["callback_id"] != tc.callback || c.JSON["trigger_id"] == "" {
					t.Errorf("view carries %v / %.20v", view["callback_id"], view["private_metadata"])
				}
				if !strings.Contains(string(raw), `"type":"input"`) {
					t.Errorf("view has no input: %s", raw)
				}
			}
			fake.RefuseBlocks("invalid_arguments", -1)
			if err := tc.open(n, "trigger-3", largestToken); !approvals.IsPermanent(err) {
				t.Errorf("all refused: %v, want a permanent error", err)
			}
		})
	}
}

func TestConfirmPrompt(t *testing.T) {
	t.Parallel()
	for env, want := range map[string]string{
		"PROD":          "Type PROD to approve.",
		"  prod-eu\n":   "Type prod-eu to approve.",
		"":              "Type the environment's name to approve.",
		"<!channel> &x": "Type <!channel> &x to approve.", // plain text: shown as typed
	} {
		if got := confirmPrompt(env); got != want {
			t.Errorf("confirmPrompt(%q) = %q, want %q", env, got, want)
		}
	}
	// The view shows it as plain text, where nothing is a mention.
	v := confirmView("tok", "<!channel>")
	raw, _ := json.Marshal(v)
	if !strings.Contains(string(raw), `"type":"plain_text","text":"Type \u003c!channel\u003e to approve."`) {
		t.Errorf("the prompt is not plain text: %s", raw)
	}
}

// TestPolicyStatesFit: the largest task, under a policy with every rule at
// its largest, fits Slack in each state the rules add.
func TestPolicyStatesFit(t *testing.T) {
	t.Parallel()
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	rules := func() *approvals.Policy {
		p := largestPolicy()
		p.RequiredApprovals = 101
		for i := range 20 {
			p.RequireFrom = append(p.RequireFrom, approvals.Requirement{Label: runesOf(fmt.Sprintf("team %d ", i)+hostileRunes, 40), Group: fmt.Sprintf("S%010d", i), Count: 5})
		}
		p.RequireFrom = append(p.RequireFrom, approvals.Requirement{Group: "S0SRE", Count: 1}) // shown as the group's mention
		p.Windows = []approvals.Window{{Days: []time.Weekday{time.Monday}, From: 9 * 60, To: 17 * 60, Location: loc}}
		return p
	}
	frozen := func() *approvals.Policy {
		p := rules()
		p.Windows = nil
		p.Freezes = []approvals.Freeze{{From: renderNow.Add(-time.Hour), To: renderNow.Add(time.Hour), Reason: runesOf("Freeze "+hostileRunes, 200)}}
		return p
	}
	withFills := func(t *approvals.Task) *approvals.Task {
		for i := range t.Approvals {
			t.Approvals[i].Fills = []string{rules().RequireFrom[i%20].Name()}
		}
		return t
	}
	for _, tc := range []struct {
		name    string
		policy  *approvals.Policy
		task    *approvals.Task
		buttons bool
		want    string
	}{
		{"progress outside the window", rules(), withFills(withVotes(largestTask("flexdeploy"), 99)), true, "opens Mon 09:00 America/New_York"},
		{"progress in a freeze", frozen(), withFills(withVotes(largestTask("flexdeploy"), 99)), true, ": frozen until "},
		{"approved by breaking glass", frozen(), func() *approvals.Task {
			t := withVotes(largestTask("flexdeploy"), 100)
			t.Approvals[99].BreakGlass = true
			t.Status = approvals.StatusApproved
			t.DecidedBy = &t.Approvals[99].Person
			t.DecidedAt = &decidedAt
			t.Reason = runesOf("Because "+hostileRunes, maxReasonChars)
			t.Delivery = approvals.Delivery{State: approvals.DeliveryPending, Attempts: 3, LastError: runesOf("HTTP 500 "+hostileRunes, 5000)}
			return t
		}(), false, "BREAK-GLASS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			text, blocks := render(tc.task, largestToken, tc.policy, renderNow)
			checkFits(t, text, blocks)
			if tc.buttons {
				checkButtons(t, blocks, largestToken)
				if !strings.Contains(blockText(findBlock(blocks, blockIDProgress)), "<!subteam^S0SRE> 0/1") {
					t.Errorf("progress %q does not end with every entry", blockText(findBlock(blocks, blockIDProgress)))
				}
			}
			if all := strings.Join(mrkdwnTexts(blocks), "\n"); !strings.Contains(all, tc.want) {
				t.Errorf("the message does not say %q", tc.want)
			}
			_, minimal := RenderMinimal(tc.task, RenderOptions{Token: largestToken, Policy: tc.policy, Tool: "FlexDeploy", Now: renderNow}, true)
			checkFits(t, text, minimal)
			if all := strings.Join(mrkdwnTexts(minimal), "\n"); !strings.Contains(all, tc.want) {
				t.Errorf("the bare message does not say %q", tc.want)
			}
		})
	}
}

// TestRenderGateAtRenderTime: the line saying approving is closed follows
// the time of rendering, and is not shown without one.
func TestRenderGateAtRenderTime(t *testing.T) {
	t.Parallel()
	monday := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) // 11:00 in Amsterdam
	for _, tc := range []struct {
		name   string
		policy *approvals.Policy
		now    time.Time
		want   string // "" when there is no gate line
	}{
		{"outside the window", windowPolicy(), renderNow, "⏸️ Outside the approval windows; opens Mon 09:00 Europe/Amsterdam · rejecting still works"},
		{"inside the window", windowPolicy(), monday, ""},
		{"frozen", frozenPolicy(), renderNow, "⏸️ Black Friday freeze: frozen until 2026-11-30 00:00 UTC · rejecting still works"},
		{"after the freeze", frozenPolicy(), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), ""},
		{"no time given", frozenPolicy(), time.Time{}, ""},
		{"no rules", singlePolicy(), renderNow, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			task := fixtureTask()
			task.ExpiresAt = time.Date(2026, 12, 30, 0, 0, 0, 0, time.UTC)
			_, blocks := render(task, "tok", tc.policy, tc.now)
			if got := blockText(findBlock(blocks, blockIDGate)); got != tc.want {
				t.Errorf("gate line %q, want %q", got, tc.want)
			}
			checkButtons(t, blocks, "tok") // break glass and rejects still need them
		})
	}
}
