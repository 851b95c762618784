package approvals

import (
	"context"
	"errors"
	"time"
)

// JobTellRequester tells the person who requested the deployment its
// outcome (approved, rejected with the reason, expired) by direct message,
// unless the policy says notify: {requester: false}. As an outbox job it
// survives restarts and is done once.
const JobTellRequester JobKind = "tell_requester"

// RequesterTeller is a Notifier that can send the requester the outcome
// (bot's Notifier is one). A notifier that cannot leaves the job done.
type RequesterTeller interface {
	// TellRequester sends the chat user the task's final state.
	TellRequester(ctx context.Context, t *Task, userID string) error
}

// queueTellRequester queues telling the requester of a task that became
// final, when its policy asks and the task names a requester.
func (s *Service) queueTellRequester(t *Task, now time.Time) {
	p := FindPolicy(s.cfg.Rules().Policies, t.Policy)
	if p == nil || !p.NotifyRequester || t.RequestedBy == "" || t.RequesterTold || t.HasJob(JobTellRequester) {
		return
	}
	t.Enqueue(JobTellRequester, now)
}

// tellRequester runs the job: the requester is found as the chat user
// they are (a user id, or the user of their email); one who is no chat
// user (a name only, an email nobody has) is not told.
func (s *Service) tellRequester(ctx context.Context, t *Task) (func(*Task, time.Time), error) {
	if t.RequesterTold || !t.Status.Final() {
		return nil, nil
	}
	// A requester's user id is the primary chat's, and so is the one
	// their email is looked up in: they are told there.
	n := s.cfg.Chats.notifier("")
	if n == nil {
		return nil, errNoNotifier(s.cfg.Chats.DisplayName(""))
	}
	teller, ok := n.(RequesterTeller)
	if !ok {
		return nil, nil
	}
	by := ParseRequester(t.RequestedBy, s.cfg.Fold)
	user := by.UserID
	if dir := s.cfg.Chats.directory(""); user == "" && by.Email != "" && dir != nil {
		id, err := dir.UserIDByEmail(ctx, by.Email)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil, nil
		case err != nil:
			return nil, err
		}
		user = id
	}
	if user == "" {
		return nil, nil
	}
	if err := teller.TellRequester(ctx, t, user); err != nil {
		return nil, err
	}
	return func(t *Task, now time.Time) {
		t.RequesterTold = true
		t.Record(AuditRecord{At: now, User: user, Event: "requester_told", Detail: string(t.Status)})
	}, nil
}
