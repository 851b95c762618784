package main

import (
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/flexdeploytest"
)

var updateScreenshots = flag.Bool("update", false, "rewrite the web page's screenshots in testdata/web")

// screenshotDir is where -update writes the page's screenshots (shown in
// docs/web-and-receipts.md).
const screenshotDir = "../../testdata/web"

func saveScreenshot(t *testing.T, b *tab, name string) {
	t.Helper()
	if !*updateScreenshots {
		return
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name), b.screenshot(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// decisionsOf are FlexDeploy's approve and reject calls for one task.
func decisionsOf(fd *flexdeploytest.Server, taskID string) []flexdeploytest.Call {
	var out []flexdeploytest.Call
	for _, c := range fd.Decisions() {
		if strings.HasSuffix(c.Path, "/"+taskID) {
			out = append(out, c)
		}
	}
	return out
}

// assertUndecided: the task is still pending and FlexDeploy heard nothing.
func (w *webEnv) assertUndecided(t *testing.T, taskID string) {
	t.Helper()
	if _, task := w.task("flexdeploy-" + taskID); task["status"] != "pending" || len(task["approvals"].([]any)) != 0 {
		t.Errorf("task %s: status %v, approvals %v; want pending with none", taskID, task["status"], task["approvals"])
	}
	if n := len(decisionsOf(w.fd, taskID)); n != 0 {
		t.Errorf("task %s: FlexDeploy received %d decisions, want none", taskID, n)
	}
}

func prodTask(taskID string) string {
	return `{"taskid":"` + taskID + `","description":"v2.3 is about to be deployed to PROD","environment":"PROD","project":"shop","release":"v2.3","requestedBy":"dev@example.com"}`
}

// TestWebApproval follows a require_sso task's link from its Slack
// message in headless Chromium, signs in at a real OpenID Connect provider
// and decides on the page; and checks that every way in that must not
// decide decides nothing. One browser serves every subtest, each person in
// a browser context of their own.
func TestWebApproval(t *testing.T) {
	t.Parallel()
	browser := startBrowser(t)
	// Each subtest has a bot and a provider of its own (so that its
	// helpers fail it, not the parent); the browser is shared.
	started := func(t *testing.T) *webEnv {
		w := newWebEnv(t)
		w.start()
		return w
	}

	t.Run("approve with a reason", func(t *testing.T) {
		t.Parallel()
		w := started(t)
		w.submit(prodTask("web1"))
		link, _ := w.reviewLink("web1")
		b := newTab(t, browser)
		b.open(link, "#username") // not signed in: off to the provider
		b.signIn("alice@example.com", "#approve")
		page := b.text()
		for _, want := range []string{"v2.3 is about to be deployed to PROD", "FlexDeploy task web1", "PROD", "shop",
			"dev@example.com", "Approvals: 0 of 1", "Policy production", "decided here after signing in",
			"Signed in as Alice Approver (alice@example.com), Slack user UALICE"} {
			if !strings.Contains(page, want) {
				t.Errorf("the page does not show %q:\n%s", want, page)
			}
		}
		saveScreenshot(t, b, "approve.png")

		if got := b.submit("approve", "change window agreed with ops"); !strings.Contains(got, "Approved. FlexDeploy is being told.") {
			t.Fatalf("after approving:\n%s", got)
		}
		task := w.waitTask("flexdeploy-web1", "delivered", delivered)
		if by, _ := task["decidedBy"].(map[string]any); by["user"] != "UALICE" || by["userName"] != "Alice Approver" {
			t.Errorf("decidedBy %v", task["decidedBy"])
		}
		puts := decisionsOf(w.fd, "web1")
		if len(puts) != 1 || puts[0].Path != flexdeploytest.Root+"/tasks/approval/approve/web1" || !strings.Contains(puts[0].Notes(), "UALICE") {
			t.Fatalf("FlexDeploy decisions %+v, want one approve naming UALICE", puts)
		}

		// The link again, once decided: refused, and nothing more is sent.
		b.open(link, "#notice")
		if got := b.text(); !strings.Contains(got, "already been decided") || strings.Contains(got, "Approve\n") {
			t.Errorf("the replayed link:\n%s", got)
		}
		saveScreenshot(t, b, "refused.png")
		if n := len(decisionsOf(w.fd, "web1")); n != 1 {
			t.Errorf("FlexDeploy received %d decisions after the replay, want 1", n)
		}

		// The decision made on the web has a receipt that verifies.
		status, raw := w.receiptOf("flexdeploy-web1")
		if status != http.StatusOK {
			t.Fatalf("receipt: %d %s", status, raw)
		}
		if out, errOut, err := runCLI(t, "receipt", "verify", writeFile(t, raw), "--public-key", receiptKeyPublic(t)); err != nil || !strings.HasPrefix(out, "valid: flexdeploy-web1 approved, decided by Alice Approver (UALICE)") {
			t.Errorf("receipt verify: %v\n%s%s", err, out, errOut)
		}
	})

	t.Run("a signed-in non-approver is refused", func(t *testing.T) {
		t.Parallel()
		w := started(t)
		w.submit(prodTask("web2"))
		link, _ := w.reviewLink("web2")
		b := newTab(t, browser)
		b.open(link, "#username")
		b.signIn("eve@example.com", "#approve")
		if got := b.submit("approve", ""); !strings.Contains(got, "You are not an approver for this deployment.") {
			t.Errorf("after approving:\n%s", got)
		}
		w.assertUndecided(t, "web2")
	})

	t.Run("an unverified email is refused", func(t *testing.T) {
		t.Parallel()
		w := started(t)
		w.submit(prodTask("web3"))
		link, _ := w.reviewLink("web3")
		b := newTab(t, browser)
		b.open(link, "#username")
		b.signIn("una@example.com", "#notice")
		if got := b.text(); !strings.Contains(got, "has not verified your email address (una@example.com)") || strings.Contains(got, "Approve") {
			t.Errorf("after signing in:\n%s", got)
		}
		w.assertUndecided(t, "web3")
	})

	t.Run("a forged state is refused", func(t *testing.T) {
		t.Parallel()
		w := started(t)
		w.submit(prodTask("web4"))
		link, _ := w.reviewLink("web4")
		// The sign-in of one tab comes back to a browser whose sign-in under
		// way is another's: a real code, with a state not this browser's.
		first := newTab(t, browser)
		first.open(link, "#username")
		second := first.sameBrowser()
		second.open(link, "#username")
		first.signIn("alice@example.com", "#notice")
		if got := first.text(); !strings.Contains(got, "its state differs") || strings.Contains(got, "Approve") {
			t.Errorf("after signing in:\n%s", got)
		}
		w.assertUndecided(t, "web4")
	})

	t.Run("a form without its CSRF token is refused", func(t *testing.T) {
		t.Parallel()
		w := started(t)
		w.submit(prodTask("web5"))
		link, _ := w.reviewLink("web5")
		b := newTab(t, browser)
		b.open(link, "#username")
		b.signIn("alice@example.com", "#approve")
		b.do("drop the CSRF token", chromedpRemove(`input[name="csrf"]`))
		if got := b.submit("approve", "no token"); !strings.Contains(got, "nothing was decided") {
			t.Errorf("after approving:\n%s", got)
		}
		w.assertUndecided(t, "web5")
	})

	t.Run("an expired link is refused", func(t *testing.T) {
		t.Parallel()
		// The bot's clock jumps past the task's expiry.
		var ahead atomic.Int64
		w := newWebEnv(t)
		w.clock = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
		w.start()
		w.submit(prodTask("web6"))
		link, _ := w.reviewLink("web6")
		ahead.Store(int64(2 * time.Hour)) // tokens.ttl is 1h
		b := newTab(t, browser)
		b.open(link, "#notice")
		if got := b.text(); !strings.Contains(got, "This approval request has expired") || strings.Contains(got, "Approve") {
			t.Errorf("the expired link:\n%s", got)
		}
		if n := len(decisionsOf(w.fd, "web6")); n != 0 {
			t.Errorf("FlexDeploy received %d decisions, want none", n)
		}
	})
}

// TestSSORequiredRefusesSlackClicks: a require_sso task cannot be decided
// from Slack, whatever is clicked; a policy without it still can.
func TestSSORequiredRefusesSlackClicks(t *testing.T) {
	t.Parallel()
	w := newWebEnv(t)
	w.start()
	w.submit(prodTask("sso1"))
	msg := w.message("sso1")
	link, token := w.reviewLink("sso1")
	if !strings.Contains(link, "/approve/flexdeploy-sso1?t=") || token == "" {
		t.Fatalf("review link %q", link)
	}
	// The message may carry no deciding button at all; where it still
	// does, a click on it is refused and decides nothing.
	if buttons := msg.Buttons(); len(buttons) > 0 && buttons[0].ActionID == "approve" {
		w.click(msg, "approve", "UALICE", "Alice")
		waitFor(t, "the refusal", func() bool { return ephemeralTo(w.env, "UALICE", "decided on the web after signing in") })
	}
	w.assertUndecided(t, "sso1")

	// The qa policy has no require_sso: its clicks decide.
	w.submit(`{"taskid":"sso2","environment":"QA"}`)
	w.click(w.message("sso2"), "approve", "UALICE", "Alice")
	w.waitTask("flexdeploy-sso2", "approved in Slack", func(task map[string]any) bool { return task["status"] == "approved" })
}
