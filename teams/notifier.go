package teams

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/pace"
)

// ChatName is Teams' name among the chats: it qualifies the ids of people
// without an email ("teams:<aadObjectId>") and names message references.
const (
	ChatName        = "teams"
	ChatDisplayName = "Microsoft Teams"
)

// NotifierConfig configures a Notifier.
type NotifierConfig struct {
	Connector *Connector
	// ServiceURL is where the bot's posts go (teams.service_url).
	ServiceURL string
	// Channel is the default conversation (teams.channel).
	Channel string
	// PublicURL starts a require_sso task's link (server.public_url).
	PublicURL string
	Tools     *approvals.Tools
	// Policies returns the policies in force; may be nil.
	Policies func() []approvals.Policy
	Now      func() time.Time
}

// Notifier shows tasks in Microsoft Teams as Adaptive Cards.
type Notifier struct {
	cfg NotifierConfig
}

// NewNotifier returns a Notifier.
func NewNotifier(cfg NotifierConfig) *Notifier {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Notifier{cfg: cfg}
}

func (n *Notifier) options(t *approvals.Task, token string) RenderOptions {
	var p *approvals.Policy
	if n.cfg.Policies != nil {
		p = approvals.FindPolicy(n.cfg.Policies(), t.Policy)
	}
	return RenderOptions{Token: token, Policy: p, Tool: n.cfg.Tools.DisplayName(t.Source), Now: n.cfg.Now(), PublicURL: n.cfg.PublicURL}
}

// Post posts the task's card into channel ("" = teams.channel).
func (n *Notifier) Post(ctx context.Context, t *approvals.Task, channel, token string) (approvals.MessageRef, error) {
	if channel == "" {
		channel = n.cfg.Channel
	}
	if channel == "" {
		return approvals.MessageRef{}, approvals.Permanent(errors.New("teams: post: no channel (set teams.channel or the policy's teams.channel)"))
	}
	opts := n.options(t, token)
	ctx = pace.WithOrder(ctx, t.CreatedAt, t.ID) // the conversation's posts keep intake order
	id, err := n.cfg.Connector.Send(ctx, n.cfg.ServiceURL, channel, cardActivity(RenderCard(t, opts), summary(t, opts.Tool)))
	if err != nil {
		return approvals.MessageRef{}, err
	}
	return approvals.MessageRef{Chat: ChatName, Channel: channel, TS: id}, nil
}

// Update replaces every Teams card of the task with its current state;
// token is "" once the task is final.
func (n *Notifier) Update(ctx context.Context, t *approvals.Task, refs []approvals.MessageRef, token string) error {
	opts := n.options(t, token)
	activity := cardActivity(RenderCard(t, opts), summary(t, opts.Tool))
	ctx = pace.WithOrder(ctx, t.CreatedAt, t.ID)
	var errs []error
	for _, ref := range refs {
		if ref.Chat != ChatName || ref.Channel == "" || ref.TS == "" {
			continue
		}
		if err := n.cfg.Connector.Update(ctx, n.cfg.ServiceURL, ref.Channel, ref.TS, activity); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 1 {
		return errs[0] // keeps a RetryAfterError or PermanentError as it is
	}
	return errors.Join(errs...)
}

// Notice replies in the card's thread: a reminder, a break-glass approval,
// an escalation.
func (n *Notifier) Notice(ctx context.Context, t *approvals.Task, ref approvals.MessageRef, kind approvals.NoticeKind) error {
	if ref.Chat != ChatName || ref.Channel == "" || ref.TS == "" {
		return nil
	}
	ctx = pace.WithOrder(ctx, t.CreatedAt, t.ID)
	_, err := n.cfg.Connector.Reply(ctx, n.cfg.ServiceURL, ref.Channel, ref.TS,
		outActivity{Type: "message", TextFormat: "markdown", Text: noticeText(t, n.options(t, ""), kind)})
	return err
}

// Direct sends no direct copies yet: a personal conversation with an
// approver named by email needs the bot installed for them (proactive
// install through Graph), which this version does not do.
func (n *Notifier) Direct(context.Context, *approvals.Task, []approvals.MessageRef, string) ([]approvals.MessageRef, error) {
	return nil, nil
}

func noticeText(t *approvals.Task, opts RenderOptions, kind approvals.NoticeKind) string {
	subject := text(subjectOf(t, opts.Tool), maxFactChars)
	if subject == "" {
		subject = "this deployment"
	}
	switch kind {
	case approvals.NoticeReminder:
		return fmt.Sprintf("⏰ %s still waits for approval; it expires at %s.", capitalize(subject), date(t.ExpiresAt))
	case approvals.NoticeBreakGlass:
		who := "someone"
		if t.DecidedBy != nil {
			who = text(personName(*t.DecidedBy), 200)
		}
		line := fmt.Sprintf("🚨 **BREAK-GLASS**: %s approved %s", who, subject)
		if r := strings.TrimSpace(t.Reason); r != "" {
			line += ". Reason: " + text(flat(r), maxReasonChars)
		}
		if p := opts.Policy; p != nil && len(p.Approvers.Emails) > 0 {
			line += ". Approvers: " + text(joinPeople(p.Approvers.Emails), 600)
		}
		return line
	case approvals.NoticeEscalation:
		line := fmt.Sprintf("📣 %s is still pending; more approvers may decide it now", capitalize(subject))
		if p := opts.Policy; p != nil && p.Escalate != nil && len(p.Escalate.To.Emails) > 0 {
			line += ": " + text(joinPeople(p.Escalate.To.Emails), 600)
		}
		return line + "."
	}
	return capitalize(subject) + ": " + text(string(kind), 40)
}

// summary is the plain text notifications show.
func summary(t *approvals.Task, tool string) string {
	if tool == "" {
		tool = "the deployment tool"
	}
	s := subjectOf(t, tool)
	if s == "" {
		s = "a deployment"
	}
	return flat(headline(t) + ": " + s)
}

var _ approvals.Notifier = (*Notifier)(nil)

// Chat is Teams as the core's registry knows it. Teams is never the
// primary chat: policies name Teams approvers by email.
func (n *Notifier) Chat(postsByDefault bool) approvals.Chat {
	return approvals.Chat{Name: ChatName, DisplayName: ChatDisplayName, Notifier: n, PostsByDefault: postsByDefault}
}

// person is a Teams clicker as the core knows people: their Entra object
// id in the "teams" chat, and their email.
func person(aadObjectID, name, email string) approvals.Person {
	return approvals.Person{ID: aadObjectID, Name: name, Email: email, Chat: ChatName}
}
