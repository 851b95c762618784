package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/slack-go/slack"

	"github.com/approvalbot/approvalbot/approvals"
)

// Direct sends the task's message, buttons and all, to every approver the
// policy names (its escalation's too, once escalated) who has no copy yet:
// named users, the members of named groups, and emails resolved to users.
// It returns the copies it sent; when some could not be sent, it returns
// those that were and the error, so the retry sends only the rest.
func (n *Notifier) Direct(ctx context.Context, t *approvals.Task, have []approvals.MessageRef, token string) ([]approvals.MessageRef, error) {
	op := "send task " + t.ID + " to its approvers"
	p := n.policyFor(t)
	if p == nil || t.Status.Final() {
		return nil, nil
	}
	if err := n.ready(op); err != nil {
		return nil, err
	}
	named := []approvals.Approvers{p.Approvers}
	for _, r := range p.RequireFrom {
		named = append(named, approvals.Approvers{Users: r.Users, Groups: groupOf(r)})
	}
	if t.Escalated && p.Escalate != nil {
		named = append(named, p.Escalate.To)
	}
	people, lookupErr := n.resolve(ctx, named)
	var sent []approvals.MessageRef
	var errs []error
	if lookupErr != nil {
		errs = append(errs, lookupErr)
	}
	for _, user := range people {
		if hasCopy(have, user) {
			continue
		}
		var channel, ts string
		err := n.sendTask(ctx, op, t, token, func(text string, blocks []slack.Block) (err error) {
			channel, ts, err = n.api.PostMessageContext(ctx, user,
				slack.MsgOptionText(text, false),
				slack.MsgOptionBlocks(blocks...),
				slack.MsgOptionDisableLinkUnfurl(),
				slack.MsgOptionDisableMediaUnfurl(),
			)
			return err
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sent = append(sent, approvals.MessageRef{Chat: ChatName, Channel: channel, TS: ts, User: user})
	}
	return sent, errors.Join(errs...)
}

func groupOf(r approvals.Requirement) []string {
	if r.Group == "" {
		return nil
	}
	return []string{r.Group}
}

// hasCopy reports whether the user was sent a copy already.
func hasCopy(have []approvals.MessageRef, user string) bool {
	for _, c := range have {
		if c.User == user {
			return true
		}
	}
	return false
}

// resolve turns named approvers into user ids, each once, in order.
func (n *Notifier) resolve(ctx context.Context, named []approvals.Approvers) ([]string, error) {
	var out []string
	add := func(id string) {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	var errs []error
	for _, a := range named {
		for _, u := range a.Users {
			add(u)
		}
		for _, g := range a.Groups {
			members, err := n.dir().GroupMembers(ctx, g)
			if err != nil {
				errs = append(errs, fmt.Errorf("slack: members of %s: %w", g, err))
				continue
			}
			for _, m := range members {
				add(m)
			}
		}
		for _, e := range a.Emails {
			id, err := n.dir().UserIDByEmail(ctx, e)
			switch {
			case errors.Is(err, approvals.ErrNotFound):
			case err != nil:
				errs = append(errs, fmt.Errorf("slack: look up an approver's email: %w", err))
			default:
				add(id)
			}
		}
	}
	return out, errors.Join(errs...)
}

// dir is the directory Direct resolves approvers through: the one the
// runtime built for this notifier, or one of its own.
func (n *Notifier) dir() *Directory {
	n.dirOnce.Do(func() { n.directory = newDirectory(n, 0) })
	return n.directory
}
