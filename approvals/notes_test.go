package approvals_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/approvalbot/approvalbot/approvals"
)

func TestNotes(t *testing.T) {
	t.Parallel()
	berlin := time.FixedZone("CET", 3600)
	decided := time.Date(2026, 11, 22, 15, 2, 0, 0, berlin) // 14:02 UTC
	now := time.Date(2026, 11, 22, 14, 5, 0, 0, time.UTC)
	expires := time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC)
	alice := approvals.Person{ID: "U123", Name: "Alice"}
	bob := approvals.Person{ID: "U456", Name: "Bob"}
	carol := approvals.Person{ID: "U789", Name: "Carol"}
	dave := approvals.Person{ID: "U999", Name: "Dave"}
	vote := func(p approvals.Person) approvals.Vote { return approvals.Vote{Person: p, At: decided} }

	tests := []struct {
		name   string
		task   approvals.Task
		action approvals.Action
		want   string
	}{
		{
			name:   "one approver",
			task:   approvals.Task{Status: approvals.StatusApproved, Approvals: []approvals.Vote{vote(alice)}, DecidedBy: &alice, DecidedAt: &decided},
			action: approvals.ActionApprove,
			want:   "Approved in Slack by Alice (U123) at 2026-11-22T14:02:00Z",
		},
		{
			name:   "two approvers",
			task:   approvals.Task{Status: approvals.StatusApproved, Approvals: []approvals.Vote{vote(alice), vote(bob)}, DecidedBy: &bob, DecidedAt: &decided},
			action: approvals.ActionApprove,
			want:   "Approved in Slack by Alice (U123) and Bob (U456) at 2026-11-22T14:02:00Z",
		},
		{
			name:   "three approvers",
			task:   approvals.Task{Status: approvals.StatusApproved, Approvals: []approvals.Vote{vote(alice), vote(bob), vote(carol)}, DecidedBy: &carol, DecidedAt: &decided},
			action: approvals.ActionApprove,
			want:   "Approved in Slack by Alice (U123), Bob (U456) and Carol (U789) at 2026-11-22T14:02:00Z",
		},
		{
			name:   "decider missing from the votes",
			task:   approvals.Task{Status: approvals.StatusApproved, Approvals: []approvals.Vote{vote(alice)}, DecidedBy: &bob, DecidedAt: &decided},
			action: approvals.ActionApprove,
			want:   "Approved in Slack by Alice (U123) and Bob (U456) at 2026-11-22T14:02:00Z",
		},
		{
			name:   "approver without a name, no decision time",
			task:   approvals.Task{Status: approvals.StatusApproved, Approvals: []approvals.Vote{{Person: approvals.Person{ID: "U1"}}}},
			action: approvals.ActionApprove,
			want:   "Approved in Slack by U1 at 2026-11-22T14:05:00Z",
		},
		{
			name:   "approve with a reason",
			task:   approvals.Task{Status: approvals.StatusApproved, Approvals: []approvals.Vote{vote(alice)}, DecidedBy: &alice, DecidedAt: &decided, Reason: " hotfix, CAB-1234 "},
			action: approvals.ActionApprove,
			want:   "Approved in Slack by Alice (U123) at 2026-11-22T14:02:00Z: hotfix, CAB-1234",
		},
		{
			name:   "reject with a reason",
			task:   approvals.Task{Status: approvals.StatusRejected, Approvals: []approvals.Vote{vote(alice)}, DecidedBy: &carol, DecidedAt: &decided, Reason: "tests are red"},
			action: approvals.ActionReject,
			want:   "Rejected in Slack by Carol (U789) at 2026-11-22T14:02:00Z: tests are red",
		},
		{
			name:   "reject without a reason",
			task:   approvals.Task{Status: approvals.StatusRejected, DecidedBy: &dave, DecidedAt: &decided},
			action: approvals.ActionReject,
			want:   "Rejected in Slack by Dave (U999) at 2026-11-22T14:02:00Z",
		},
		{
			name:   "expired, rejected automatically",
			task:   approvals.Task{Status: approvals.StatusExpired, OnExpiry: approvals.ExpiryReject, ExpiresAt: expires},
			action: approvals.ActionReject,
			want:   "Expired without a decision in Slack at 2026-11-22T18:00:00Z; rejected automatically",
		},
		{
			name:   "expired short of the quorum",
			task:   approvals.Task{Status: approvals.StatusExpired, OnExpiry: approvals.ExpiryReject, ExpiresAt: expires, Approvals: []approvals.Vote{vote(alice)}, RequiredApprovals: 2},
			action: approvals.ActionReject,
			want:   "Expired without a decision in Slack at 2026-11-22T18:00:00Z (approved only by Alice (U123)); rejected automatically",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := approvals.Notes(&tc.task, tc.action, now, testChats(nil, nil)); got != tc.want {
				t.Errorf("Notes =\n  %q\nwant\n  %q", got, tc.want)
			}
		})
	}
}

func TestNotesIsBounded(t *testing.T) {
	t.Parallel()
	task := &approvals.Task{Status: approvals.StatusRejected, Reason: strings.Repeat("why ", 2000)}
	got := approvals.Notes(task, approvals.ActionReject, time.Now(), testChats(nil, nil))
	if n := utf8.RuneCountInString(got); n != approvals.MaxNotesRunes || !strings.HasSuffix(got, "…") {
		t.Errorf("notes of %d runes ending %q, want %d ending with …", n, got[len(got)-10:], approvals.MaxNotesRunes)
	}
	if approvals.Notes(nil, approvals.ActionApprove, time.Now(), testChats(nil, nil)) != "" {
		t.Error("approvals.Notes(nil, testChats(nil, nil)) is not empty")
	}
}
