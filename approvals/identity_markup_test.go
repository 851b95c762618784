package approvals_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/approvalbot/approvalbot/approvals"
)

// TestParseRequesterMarkup reads every form of markup Slack and Teams
// write for people, groups, channels and links: each is parsed into the
// one person it names, or refused (Unreadable), never taken as a name.
func TestParseRequesterMarkup(t *testing.T) {
	t.Parallel()
	type R = approvals.Requester
	unreadable := R{Unreadable: "*"}
	for _, tc := range []struct {
		in   string
		want R
	}{
		// Slack user mentions.
		{"<@U0123ABCD>", R{UserID: "U0123ABCD"}},
		{"<@W0123ABCD>", R{UserID: "W0123ABCD"}},
		{"<@U0123ABCD|dev>", R{UserID: "U0123ABCD"}},
		{"<@u0123abcd>", R{UserID: "U0123ABCD"}},
		{"<@udev>", R{UserID: "UDEV"}},
		{"&lt;@UDEV&gt;", R{UserID: "UDEV"}},
		{"<@UDEV> ", R{UserID: "UDEV"}},
		{"<@>", unreadable},
		{"<@dev>", unreadable},
		{"<@B0123ABCD>", unreadable}, // a bot, not a person
		{"<@UDEV|dev|x>", unreadable},
		{"<@UDEV><@UALICE>", unreadable},
		{"cc <@UDEV>", unreadable},
		{"<@UDEV> and alice", unreadable},
		// Slack email links.
		{"<mailto:dev@example.com|dev@example.com>", R{Email: "dev@example.com"}},
		{"<mailto:Dev@Example.com|dev@example.com>", R{Email: "dev@example.com"}},
		{"<mailto:dev@example.com>", R{Email: "dev@example.com"}},
		{"mailto:<mailto:dev@example.com>", R{Email: "dev@example.com"}},
		{"&lt;mailto:dev@example.com|dev@example.com&gt;", R{Email: "dev@example.com"}},
		{"<mailto:other@example.com|dev@example.com>", unreadable},
		{"<mailto:dev@example.com|Dev>", unreadable},
		{"<mailto:|dev@example.com>", unreadable},
		{"<mailto:dev|dev>", unreadable},
		// Mail and git's `Name <email>`.
		{"Dev Eloper <dev@example.com>", R{Email: "dev@example.com"}},
		{"<dev@example.com>", R{Email: "dev@example.com"}},
		{"Dev <dev@example.com> <alice@example.com>", unreadable},
		{"Dev <dev|x@example.com>", unreadable},
		// Slack special mentions, groups, channels, dates, links.
		{"<!subteam^S1>", unreadable},
		{"<!subteam^S0123ABCD|@deployers>", unreadable},
		{"<!here>", unreadable},
		{"<!here|here>", unreadable},
		{"<!channel>", unreadable},
		{"<!everyone>", unreadable},
		{"<!date^1392734382^{date_short}|Feb 18, 2014>", unreadable},
		{"<#C0123ABCD>", unreadable},
		{"<#C0123ABCD|general>", unreadable},
		{"<https://example.com|dev>", unreadable},
		{"<https://example.com>", unreadable},
		{"<tel:+3120000000|dev>", unreadable},
		// Teams mentions and the HTML around them.
		{"<at>Dev Eloper</at>", unreadable},
		{"<at id=\"0\">Dev Eloper</at>", unreadable},
		{"<at>dev@example.com</at>", unreadable},
		{`<span itemtype="http://schema.skype.com/Mention" itemscope itemid="0">Dev</span>`, unreadable},
		{"<p>dev</p>", unreadable},
		// Half-written markup.
		{"<", unreadable},
		{">", unreadable},
		{"|", unreadable},
		{"<>", unreadable},
		{"<@UDEV", unreadable},
		{"@UDEV>", unreadable},
		{"dev|ops", unreadable},
		{"dev>", unreadable},
		// Look-alikes that fold to markup.
		{"\uff1c@UDEV\uff1e", unreadable},
		// Plain text stays what it was.
		{"Dev Eloper", R{Name: "dev eloper"}},
		{"@dev", R{Name: "@dev"}},
		{"AT&T deployer", R{Name: "at&t deployer"}},
		{"dev@example.com", R{Email: "dev@example.com"}},
		{"UDEV", R{UserID: "UDEV"}},
	} {
		got := approvals.ParseRequester(tc.in, fold)
		if tc.want.Unreadable == "*" {
			if got.Unreadable == "" || got.Email != "" || got.UserID != "" || got.Name != "" {
				t.Errorf("ParseRequester(%q) = %+v, want it refused as unreadable", tc.in, got)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("ParseRequester(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// fold stands in for internal/identity's NFKC case folding, as far as the
// fullwidth look-alikes go.
func fold(s string) string {
	return strings.ToLower(strings.NewReplacer("\uff1c", "<", "\uff1e", ">", "\uff5c", "|").Replace(s))
}

// FuzzParseRequester: no input that contains `<` or `|` parses as a
// name, and whatever folds to markup is no name either.
func FuzzParseRequester(f *testing.F) {
	for _, s := range []string{
		"<mailto:dev@example.com|dev@example.com>", "<@udev>", "<@U1|x>", "<!subteam^S1>",
		"<at>Dev</at>", "Dev <dev@example.com>", "dev|ops", "&lt;@UDEV&gt;", "Dev Eloper", "mailto:dev@example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		got := approvals.ParseRequester(s, fold)
		if strings.ContainsAny(s, "<|") && got.Name != "" {
			t.Fatalf("ParseRequester(%q) = %+v: markup taken as a name", s, got)
		}
		if strings.ContainsAny(got.Name, "<>|") {
			t.Fatalf("ParseRequester(%q) = %+v: a name with markup in it", s, got)
		}
		n := 0
		for _, f := range []string{got.Email, got.UserID, got.Name, got.Unreadable} {
			if f != "" {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("ParseRequester(%q) = %+v: more than one reading", s, got)
		}
	})
}

// TestSelfApprovalRefusedForUnreadableRequester: a requester written in
// markup that cannot be read stops every approval, the requester's first,
// and is answered as such; rejecting still works.
func TestSelfApprovalRefusedForUnreadableRequester(t *testing.T) {
	t.Parallel()
	for _, by := range []string{"<!subteam^S1|@deployers>", "<at>Dev</at>", "<mailto:alice@example.com|dev@example.com>"} {
		svc, store, posted := selfApprovalService(t, func(email string) (string, error) {
			return map[string]string{"dev@example.com": "UDEV", "alice@example.com": "UALICE"}[email], nil
		})
		ctx := context.Background()
		task, _, err := svc.Submit(ctx, approvals.Submission{Source: "acme", TaskID: "1", Context: approvals.Context{RequestedBy: by}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Work(ctx, task.ID); err != nil {
			t.Fatal(err)
		}
		decide := func(user string, action approvals.Action) error {
			_, err := svc.Decide(ctx, approvals.DecideRequest{Token: (*posted)[0], Action: action, User: approvals.Person{ID: user, Name: "Dev"}})
			return err
		}
		for _, user := range []string{"UDEV", "UALICE"} {
			err := decide(user, approvals.ActionApprove)
			if !errors.Is(err, approvals.ErrRequesterUnreadable) {
				t.Fatalf("requestedBy %q: %s's approval: %v, want ErrRequesterUnreadable", by, user, err)
			}
			if k := approvals.KindOf(err); k.Code != "requester_unreadable" || k.HTTPStatus != 403 || !k.Refusal {
				t.Errorf("kind %+v", k)
			}
		}
		if got := store.task(t, task.ID); got.Status != approvals.StatusPending || len(got.Approvals) != 0 {
			t.Fatalf("requestedBy %q: refused clicks changed the task: %s", by, got.Status)
		}
		if err := decide("UALICE", approvals.ActionReject); err != nil {
			t.Fatalf("requestedBy %q: rejecting: %v", by, err)
		}
	}
}
