package approvals

import (
	"context"
	"errors"
	"slices"
	"time"
)

// The outbox's chat jobs: each goes to every chat the task has a message
// in, and a failure in one chat never undoes, or repeats, what went
// through in another.

// chatsOf are the chats the task has a posted channel message in, in the
// order of its messages, with those messages.
func (s *Service) chatsOf(t *Task) []MessageRef {
	var out []MessageRef
	for _, m := range t.Messages {
		if m.User == "" && m.Posted() {
			m.Chat = s.cfg.Chats.Canonical(m.Chat)
			out = append(out, m)
		}
	}
	return out
}

// chatNotifier is the notifier of a registered chat, or the error that
// keeps the job waiting for one; ok is false for a chat no longer
// registered, which nothing can reach.
func (s *Service) chatNotifier(chat string) (n Notifier, ok bool, err error) {
	if _, ok := s.cfg.Chats.Get(chat); !ok {
		return nil, false, nil
	}
	if n = s.cfg.Chats.notifier(chat); n == nil {
		return nil, true, errNoNotifier(s.cfg.Chats.DisplayName(chat))
	}
	return n, true, nil
}

// joinChatErrors is the error of a job done in several chats: one chat's
// error as it is; with several, a retry unless every one is permanent.
func joinChatErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	var retry []error
	for _, err := range errs {
		if !IsPermanent(err) {
			retry = append(retry, err)
		}
	}
	if len(retry) == 0 {
		return Permanent(errors.Join(errs...))
	}
	return errors.Join(retry...)
}

// post posts the task's message in every chat it waits to be posted in.
// What was posted is kept even when a chat failed: the retry posts only in
// the rest.
func (s *Service) post(ctx context.Context, t *Task) (func(*Task, time.Time), error) {
	token, err := s.mint(t)
	if err != nil {
		return nil, err
	}
	var posted []MessageRef
	var errs []error
	for _, m := range t.Messages {
		if m.User != "" || m.Posted() {
			continue
		}
		chat := s.cfg.Chats.Canonical(m.Chat)
		n, ok, err := s.chatNotifier(chat)
		if !ok {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ref, err := n.Post(ctx, t, m.Channel, token)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ref.Chat = chat
		posted = append(posted, ref)
	}
	err = joinChatErrors(errs)
	if len(posted) == 0 {
		return nil, err
	}
	tool, _ := s.cfg.Tools.Get(t.Source)
	announces := tool != nil && tool.Announce != nil
	return func(t *Task, now time.Time) {
		first := !t.PostedAnywhere()
		for _, ref := range posted {
			if _, i := t.Channel(ref.Chat, s.cfg.Chats.Canonical); i >= 0 {
				t.Messages[i] = ref
			} else {
				t.Messages = append(t.Messages, ref)
			}
		}
		if !first {
			return
		}
		if announces && !t.HasJob(JobAnnounce) {
			t.Enqueue(JobAnnounce, now)
		}
		if p := FindPolicy(s.cfg.Rules().Policies, t.Policy); p != nil && p.NotifyDM && !t.HasJob(JobDirect) {
			t.Enqueue(JobDirect, now)
		}
		s.redrawAtGateChange(t, now)
	}, err
}

// direct sends the task's message to the approvers who have no copy yet,
// in every chat it is posted in.
func (s *Service) direct(ctx context.Context, t *Task) (func(*Task, time.Time), error) {
	token, err := s.mint(t)
	if err != nil {
		return nil, err
	}
	var sent []MessageRef
	var errs []error
	for _, m := range s.chatsOf(t) {
		n, ok, err := s.chatNotifier(m.Chat)
		if !ok {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		copies, err := n.Direct(ctx, t, t.Copies(m.Chat, s.cfg.Chats.Canonical), token)
		for _, c := range copies {
			c.Chat = m.Chat
			sent = append(sent, c)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	err = joinChatErrors(errs)
	if len(sent) == 0 {
		return nil, err
	}
	// The copies that went out are kept even when some failed: the retry
	// sends only the missing ones.
	return func(t *Task, _ time.Time) { t.Messages = append(t.Messages, sent...) }, err
}

// update renders the task's current state into every message it has, in
// every chat. Updates show the state as it is when they run, so a retry
// that updates a chat again changes nothing there.
func (s *Service) update(ctx context.Context, t *Task) (func(*Task, time.Time), error) {
	posted := s.chatsOf(t)
	if len(posted) == 0 {
		return nil, nil // not posted yet: the post shows the current state
	}
	token := ""
	var errs []error
	for _, m := range posted {
		n, ok, err := s.chatNotifier(m.Chat)
		if !ok {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if t.Status == StatusPending && token == "" {
			// A pending task's messages keep working buttons.
			if token, err = s.mint(t); err != nil {
				return nil, err
			}
		}
		refs := append([]MessageRef{m}, t.Copies(m.Chat, s.cfg.Chats.Canonical)...)
		if err := n.Update(ctx, t, refs, token); err != nil {
			errs = append(errs, err)
		}
	}
	if err := joinChatErrors(errs); err != nil {
		return nil, err
	}
	return func(t *Task, now time.Time) { s.redrawAtGateChange(t, now) }, nil
}

// notice posts a notice in the thread of the task's message in every chat
// it has not been posted in yet (Job.Done): a notice is a new message, so
// a chat that has it is not sent it again.
func (s *Service) notice(ctx context.Context, t *Task, j Job, kind NoticeKind) (func(*Task, time.Time), error) {
	var done []string
	var errs []error
	for _, m := range s.chatsOf(t) {
		if slices.Contains(j.Done, m.Chat) {
			continue
		}
		n, ok, err := s.chatNotifier(m.Chat)
		if !ok {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := n.Notice(ctx, t, m, kind); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, m.Chat)
	}
	err := joinChatErrors(errs)
	if err == nil || len(done) == 0 {
		return nil, err
	}
	return func(t *Task, _ time.Time) {
		if i := jobIndex(t, j.Seq); i >= 0 {
			t.Outbox[i].Done = append(t.Outbox[i].Done, done...)
		}
	}, err
}
