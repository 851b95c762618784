package approvals

import (
	"strings"
	"time"
)

// MaxNotesRunes bounds the notes sent to a deployment tool; a long reason must not
// make the deployment tool refuse the decision itself.
const MaxNotesRunes = 4000

// Notes is the text a deployment tool keeps with the decision: who decided in Slack
// (name and Slack id), when (RFC 3339, UTC) and why, e.g.
//
//	Approved in Slack by Alice (U123) and Bob (U456) at 2026-11-22T14:02:00Z
//	Rejected in Slack by Carol (U789) at 2026-11-22T14:02:00Z: tests are red
//	Expired without a decision in Slack at 2026-11-22T18:00:00Z; rejected automatically
//
// now stands in for a decision time the task lacks.
func Notes(t *Task, action Action, now time.Time) string {
	if t == nil {
		return ""
	}
	var b strings.Builder
	switch {
	case t.Status == StatusExpired && action == ActionReject:
		b.WriteString("Expired without a decision in Slack at ")
		b.WriteString(timestamp(t.ExpiresAt, now))
		if len(t.Approvals) > 0 {
			// Partial approvals tell the deployment tool's users who did look at it.
			b.WriteString(" (approved only by ")
			b.WriteString(people(voters(t)))
			b.WriteString(")")
		}
		b.WriteString("; rejected automatically")
	case action == ActionReject:
		b.WriteString("Rejected in Slack")
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
		b.WriteString("Approved in Slack")
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

// people joins persons as "A", "A and B", "A, B and C".
func people(ps []Person) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = person(p)
	}
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// person renders "Alice (U123)", or whichever part is known.
func person(p Person) string {
	name, id := strings.TrimSpace(p.Name), strings.TrimSpace(p.ID)
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
