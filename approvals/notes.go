package approvals

import (
	"fmt"
	"strings"
	"time"
)

// Notes is the text a deployment tool stores with the outcome: who decided,
// in which chat, when and why, naming every approver by name and user id.
func Notes(t *Task, action Action) string {
	at := func(p *time.Time) string {
		if p == nil {
			return ""
		}
		return " at " + p.UTC().Format(time.RFC3339)
	}
	if t.Status == StatusExpired {
		return fmt.Sprintf("Expired without a decision in Slack at %s; rejected automatically", t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	var people []Person
	if action == ActionApprove {
		for _, v := range t.Approvals {
			people = append(people, v.Person)
		}
	}
	if len(people) == 0 && t.DecidedBy != nil {
		people = []Person{*t.DecidedBy}
	}
	verb := "Approved"
	if action == ActionReject {
		verb = "Rejected"
	}
	notes := verb + " in Slack"
	if len(people) > 0 {
		notes += " by " + joinPeople(people)
	}
	notes += at(t.DecidedAt)
	if t.Reason != "" {
		notes += ": " + t.Reason
	}
	return notes
}

func joinPeople(people []Person) string {
	names := make([]string, len(people))
	for i, p := range people {
		if p.Name != "" {
			names[i] = fmt.Sprintf("%s (%s)", p.Name, p.ID)
		} else {
			names[i] = p.ID
		}
	}
	switch len(names) {
	case 1:
		return names[0]
	case 2:
		return names[0] + " and " + names[1]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
