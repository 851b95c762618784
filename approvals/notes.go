package approvals

import (
	"strconv"
	"strings"
	"time"
)

// MaxNotesRunes bounds the notes sent to a deployment tool; a long reason must not
// make the deployment tool refuse the decision itself.
const MaxNotesRunes = 4000

// Notes is the text a deployment tool keeps with the decision: in which
// chat and by whom it was decided (name and chat id, or email outside the
// primary chat), when (RFC 3339, UTC) and why, e.g.
//
//	Approved in Slack by Alice (U123) and Bob (U456) at 2026-11-22T14:02:00Z
//	Rejected in Microsoft Teams by Carol (carol@example.com) at 2026-11-22T14:02:00Z: tests are red
//	Expired without a decision in Slack at 2026-11-22T18:00:00Z; rejected automatically
//
// The chat named is the decider's (the primary chat's for an expiry);
// chats (which may be nil) gives the names. now stands in for a decision
// time the task lacks.
func Notes(t *Task, action Action, now time.Time, chats *Chats) string {
	if t == nil {
		return ""
	}
	in := chats.DisplayName(decidingChat(t))
	person := func(p Person) string { return person(p, chats) }
	people := func(ps []Person) string { return people(ps, person) }
	var b strings.Builder
	switch {
	case t.Status == StatusExpired && action == ActionReject:
		b.WriteString("Expired without a decision in " + in + " at ")
		b.WriteString(timestamp(t.ExpiresAt, now))
		if len(t.Approvals) > 0 {
			// Partial approvals tell the deployment tool's users who did look at it.
			b.WriteString(" (approved only by ")
			b.WriteString(people(voters(t)))
			b.WriteString(")")
		}
		b.WriteString("; rejected automatically")
	case action == ActionReject:
		b.WriteString("Rejected in " + in)
		if t.DecidedBy != nil {
			b.WriteString(" by ")
			b.WriteString(person(*t.DecidedBy))
		}
		b.WriteString(" at ")
		b.WriteString(decisionTime(t, now))
	default:
		if t.BrokeGlass() {
			b.WriteString("BREAK-GLASS: ")
		}
		b.WriteString("Approved in " + in)
		if v := voters(t); len(v) > 0 {
			b.WriteString(" by ")
			b.WriteString(people(v))
		}
		b.WriteString(" at ")
		b.WriteString(decisionTime(t, now))
	}
	if reason := strings.TrimSpace(t.Reason); reason != "" && t.Status != StatusExpired {
		b.WriteString(": ")
		b.WriteString(reason)
	}
	if short := t.Seal.ShortHash(); short != "" {
		// The auditor's way from the tool back to the signed receipt.
		b.WriteString(" [receipt ")
		b.WriteString(short)
		b.WriteString("]")
	}
	notes := b.String()
	if capped := CapRunes(notes, MaxNotesRunes-1); capped != notes {
		notes = capped + "…"
	}
	return notes
}

// voters are the people who approved, the decider included even if their
// vote is not among the
func voters(t *Task) []Person {
	out := make([]Person, 0, len(t.Approvals)+1)
	seen := make(map[string]bool, len(t.Approvals)+1)
	for _, v := range t.Approvals {
		if v.ID != "" && seen[v.ID] {
			continue
		}
		seen[v.ID] = true
		out = append(out, v.Person)
	}
	if t.DecidedBy != nil && (t.DecidedBy.ID == "" || !seen[t.DecidedBy.ID]) && t.Status != StatusExpired {
		out = append(out, *t.DecidedBy)
	}
	return out
}

// decidingChat is the chat the decision came from: the decider's, else the
// last voter's; "" (the primary chat) when nobody decided.
func decidingChat(t *Task) string {
	if t.DecidedBy != nil {
		return t.DecidedBy.Chat
	}
	if n := len(t.Approvals); n > 0 && t.Status != StatusExpired {
		return t.Approvals[n-1].Chat
	}
	return ""
}

// people joins persons as "A", "A and B", "A, B and C".
func people(ps []Person, person func(Person) string) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = person(p)
	}
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// person renders "Alice (U123)", or whichever part is known; outside the
// primary chat the email stands for the id, which people cannot read.
func person(p Person, chats *Chats) string {
	name, id := strings.TrimSpace(p.Name), strings.TrimSpace(p.ID)
	if c, ok := chats.Get(p.Chat); ok && !c.Primary && p.Email != "" {
		id = p.Email
	}
	switch {
	case name != "" && id != "":
		return name + " (" + id + ")"
	case id != "":
		return id
	case name != "":
		return name
	}
	return "an unknown user"
}

func decisionTime(t *Task, now time.Time) string {
	if t.DecidedAt != nil {
		return timestamp(*t.DecidedAt, now)
	}
	return timestamp(time.Time{}, now)
}

// timestamp renders at, or now when at is unset, in RFC 3339 UTC.
func timestamp(at, now time.Time) string {
	if at.IsZero() {
		at = now
	}
	return at.UTC().Format(time.RFC3339)
}

// CapRunes cuts s to at most n runes.
func CapRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// WaitingLine is what a deployment tool shows its users while the task
// waits (Tool.Announce), e.g.
//
//	Waiting for approval in Slack channel C0PROD (policy production, expires 2026-11-22T18:00:00Z)
func WaitingLine(t *Task, chats *Chats) string {
	var where []string
	for _, m := range t.Messages {
		if m.User != "" {
			continue
		}
		w := chats.DisplayName(m.Chat)
		if ch := strings.TrimSpace(m.Channel); ch != "" {
			w += " channel " + ch
		}
		where = append(where, w)
	}
	if len(where) == 0 {
		where = []string{chats.DisplayName("")}
	}
	var b strings.Builder
	b.WriteString("Waiting for approval in ")
	b.WriteString(strings.Join(where, " and "))
	b.WriteString(" (")
	if t.Policy != "" {
		b.WriteString("policy ")
		b.WriteString(t.Policy)
		if t.RequiredApprovals > 1 {
			b.WriteString(", " + strconv.Itoa(t.RequiredApprovals) + " approvals needed")
		}
	} else {
		b.WriteString("no policy names approvers, so nobody can approve it from " + chats.DisplayName(""))
	}
	if !t.ExpiresAt.IsZero() {
		b.WriteString(", expires ")
		b.WriteString(t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	b.WriteString(")")
	return b.String()
}
