package teams

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

var update = flag.Bool("update", false, "rewrite the golden cards in testdata/")

var renderNow = time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)

func testPolicy() approvals.Policy {
	return approvals.Policy{Name: "production", RequiredApprovals: 1, Approvers: approvals.Approvers{Emails: []string{"alice@example.com", "bob@example.com"}}}
}

func pendingTask() *approvals.Task {
	return &approvals.Task{
		ID: "flexdeploy-8900", Source: "flexdeploy", TaskID: "8900", Status: approvals.StatusPending,
		Context: approvals.Context{
			Description: "v2.3 is about to be deployed to PROD", Environment: "PROD", Project: "shop",
			Release: "v2.3", Pipeline: "main", Stage: "deploy", RequestedBy: "carol@example.com",
			URL: "https://fd.example.com/flexdeploy/tasks/8900",
		},
		Policy: "production", RequiredApprovals: 1,
		CreatedAt: renderNow.Add(-time.Hour), ExpiresAt: renderNow.Add(3 * time.Hour),
	}
}

// TestCardGoldens: each card as the bot sends it, against testdata/*.card.json
// (make lint-teams parses every one with the adaptivecards package).
func TestCardGoldens(t *testing.T) {
	t.Parallel()
	p := testPolicy()
	opts := RenderOptions{Token: "TOKEN", Policy: &p, Tool: "FlexDeploy", Now: renderNow, PublicURL: "https://approvals.example.com"}
	decided := renderNow.Add(-10 * time.Minute)
	alice := approvals.Person{ID: "alice@example.com", Name: "Alice"}
	cases := map[string]func() Card{
		"pending": func() Card { return RenderCard(pendingTask(), opts) },
		"pending_quorum": func() Card {
			t := pendingTask()
			t.RequiredApprovals = 2
			t.Approvals = []approvals.Vote{{Person: alice, At: decided, Fills: []string{"SRE"}}}
			q := p
			q.RequireRejectReason = true
			q.RequireFrom = []approvals.Requirement{{Label: "SRE", Group: "S0SRE", Count: 1}, {Group: "S0QA", Count: 1}}
			o := opts
			o.Policy = &q
			return RenderCard(t, o)
		},
		"pending_frozen": func() Card {
			q := p
			q.Freezes = []approvals.Freeze{{From: renderNow.Add(-time.Hour), To: renderNow.Add(48 * time.Hour), Reason: "Year-end freeze"}}
			o := opts
			o.Policy = &q
			return RenderCard(pendingTask(), o)
		},
		"sso": func() Card {
			q := p
			q.RequireSSO = true
			o := opts
			o.Policy = &q
			return RenderCard(pendingTask(), o)
		},
		"no_policy": func() Card {
			o := opts
			o.Policy = nil
			t := pendingTask()
			t.Policy = ""
			return RenderCard(t, o)
		},
		"approved": func() Card {
			t := pendingTask()
			t.Status, t.DecidedAt, t.DecidedBy = approvals.StatusApproved, &decided, &alice
			t.Approvals = []approvals.Vote{{Person: alice, At: decided}}
			t.Delivery = approvals.Delivery{State: approvals.DeliveryDelivered, Attempts: 1}
			t.Seal = &approvals.Seal{Head: "0123456789abcdef0123"}
			o := opts
			o.Token = ""
			return RenderCard(t, o)
		},
		"rejected": func() Card {
			t := pendingTask()
			t.Status, t.DecidedAt, t.DecidedBy = approvals.StatusRejected, &decided, &alice
			t.Reason = "Tests fail on *staging*; see [the run](https://evil.example)"
			t.Delivery = approvals.Delivery{State: approvals.DeliveryFailed, Attempts: 1, LastError: "400 Bad Request: task is not pending"}
			o := opts
			o.Token = ""
			return RenderCard(t, o)
		},
		"expired": func() Card {
			t := pendingTask()
			t.Status, t.OnExpiry = approvals.StatusExpired, approvals.ExpiryReject
			o := opts
			o.Token = ""
			return RenderCard(t, o)
		},
		"prompt_reason": func() Card {
			c, _ := PromptCard(pendingTask(), approvals.ErrReasonRequired, "TOKEN")
			return c
		},
		"prompt_break_glass": func() Card {
			c, _ := PromptCard(pendingTask(), &approvals.Refusal{Err: approvals.ErrBreakGlassNeeded, Detail: "Year-end freeze until 2027-01-04"}, "TOKEN")
			return c
		},
		"prompt_confirm": func() Card {
			c, _ := PromptCard(pendingTask(), approvals.ErrConfirmRequired, "TOKEN")
			return c
		},
	}
	for name, render := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(render(), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", name+".card.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./teams -update)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs from the golden:\n%s", path, got)
			}
		})
	}
}

// TestCardEscapesOutsideText: a description cannot make links, emphasis or
// template expressions, and a long one is cut.
func TestCardEscapesOutsideText(t *testing.T) {
	t.Parallel()
	p := testPolicy()
	task := pendingTask()
	task.Description = "[click](https://evil.example) **now** ${secret} {{DATE(x)}} " + strings.Repeat("x", 5000)
	task.URL = "javascript:alert(1)"
	raw, _ := json.Marshal(RenderCard(task, RenderOptions{Token: "T", Policy: &p, Now: renderNow}))
	s := string(raw)
	for _, bad := range []string{"[click](", "**now**", "{{DATE", "javascript:"} {
		if strings.Contains(s, bad) {
			t.Errorf("card holds %q unescaped: %s", bad, s)
		}
	}
	if len(raw) > 8<<10 {
		t.Errorf("card is %d bytes; the description was not cut", len(raw))
	}
}

// TestPromptCardOnlyForPrompts: a refusal that asks for nothing has no
// prompt card.
func TestPromptCardOnlyForPrompts(t *testing.T) {
	t.Parallel()
	for _, err := range []error{approvals.ErrNotApprover, approvals.ErrExpired, errors.New("boom")} {
		if _, ok := PromptCard(pendingTask(), err, "T"); ok {
			t.Errorf("%v got a prompt card", err)
		}
	}
}
