package bot

import (
	"context"
	"errors"
	"fmt"
	"html"
	"regexp"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/approvalbot/approvalbot/approvals"
)

// Delegations is what /approvals delegate needs of the service.
type Delegations interface {
	Delegate(ctx context.Context, from, to approvals.Person, until time.Time, reason string) (approvals.Delegation, error)
	CancelDelegation(ctx context.Context, from approvals.Person) (approvals.Delegation, error)
	DelegationsOf(ctx context.Context, u approvals.Person) (given *approvals.Delegation, received []approvals.Delegation, err error)
}

// DelegateTeller tells a delegate by direct message; *Notifier is one.
type DelegateTeller interface {
	TellDelegate(ctx context.Context, d approvals.Delegation, cancelled bool) error
}

var _ DelegateTeller = (*Notifier)(nil)

// mention is a user as Slack escapes a mention in a slash command's text:
// <@U123> or <@U123|bob>.
var mention = regexp.MustCompile(`^<@([UW][A-Z0-9]+)(?:\|([^>]*))?>$`)

// isDelegationCommand reports whether the command's first word is one of
// the delegation commands.
func isDelegationCommand(args []string) bool {
	return len(args) > 0 && (strings.EqualFold(args[0], "delegate") || strings.EqualFold(args[0], "delegations"))
}

// delegation answers /approvals delegate @bob until 2026-12-24 [reason],
// /approvals delegate cancel and /approvals delegations.
func (c *Commands) delegation(ctx context.Context, cmd slack.SlashCommand, args []string) *CommandReply {
	ds, ok := c.svc.(Delegations)
	if !ok {
		return textReply("Delegation is not available here.")
	}
	me := approvals.Person{ID: cmd.UserID, Name: cmd.UserName}
	if strings.EqualFold(args[0], "delegations") {
		return c.listDelegations(ctx, ds, me)
	}
	usage := textReply("Usage: `/approvals delegate @person until YYYY-MM-DD [reason]` (at most 30 days), `/approvals delegate cancel`, `/approvals delegations`.")
	if len(args) == 2 && strings.EqualFold(args[1], "cancel") {
		d, err := ds.CancelDelegation(ctx, me)
		if errors.Is(err, approvals.ErrNotFound) {
			return textReply("You have no delegation to cancel.")
		}
		if err != nil {
			return textReply(commandErrorText(ctx, err))
		}
		c.tell(ctx, d, true)
		return textReply(fmt.Sprintf("Cancelled: %s no longer decides for you.", who(d.Delegate)))
	}
	if len(args) < 4 || !strings.EqualFold(args[2], "until") {
		return usage
	}
	m := mention.FindStringSubmatch(html.UnescapeString(args[1]))
	if m == nil {
		return textReply("Name the person to delegate to with a mention, like `@bob`.")
	}
	day, err := time.Parse(time.DateOnly, args[3])
	if err != nil {
		return textReply("The end date must be written YYYY-MM-DD, like 2026-12-24.")
	}
	to := approvals.Person{ID: m[1], Name: strings.TrimSpace(m[2])}
	// Through the end of the day named (UTC).
	d, err := ds.Delegate(ctx, me, to, day.Add(24*time.Hour), strings.Join(args[4:], " "))
	var de *approvals.DelegationError
	switch {
	case errors.As(err, &de):
		return textReply("Not delegated: " + escape(de.Why) + ".")
	case err != nil:
		return textReply(commandErrorText(ctx, err))
	}
	c.tell(ctx, d, false)
	return textReply(fmt.Sprintf("Until %s, %s may decide wherever you may; their votes count as yours and say so. `/approvals delegate cancel` ends it.",
		d.Until.Add(-time.Second).Format(time.DateOnly), who(d.Delegate)))
}

// tell sends the delegate a direct message, best effort: the delegation
// holds whether or not it arrives.
func (c *Commands) tell(ctx context.Context, d approvals.Delegation, cancelled bool) {
	teller, ok := c.view.(DelegateTeller)
	if !ok {
		return
	}
	if err := teller.TellDelegate(ctx, d, cancelled); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("slack: tell a delegate")
	}
}

func (c *Commands) listDelegations(ctx context.Context, ds Delegations, me approvals.Person) *CommandReply {
	given, received, err := ds.DelegationsOf(ctx, me)
	if err != nil {
		return textReply(commandErrorText(ctx, err))
	}
	var lines []string
	if given != nil {
		lines = append(lines, fmt.Sprintf("%s decides for you until %s.", who(given.Delegate), given.Until.Add(-time.Second).Format(time.DateOnly)))
	} else {
		lines = append(lines, "You have delegated to nobody.")
	}
	for _, d := range received {
		lines = append(lines, fmt.Sprintf("You decide for %s until %s%s.", who(d.Delegator), d.Until.Add(-time.Second).Format(time.DateOnly), reasonSuffix(d.Reason)))
	}
	return textReply(strings.Join(lines, "\n"))
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + escapeTrunc(oneLine(reason), 200) + ")"
}

// who mentions a person.
func who(p approvals.Person) string { return "<@" + p.ID + ">" }

// TellDelegate tells the delegate by direct message that they may decide
// for the delegator, or no longer.
func (n *Notifier) TellDelegate(ctx context.Context, d approvals.Delegation, cancelled bool) error {
	op := "tell delegate " + d.Delegate.ID
	if err := n.ready(op); err != nil {
		return err
	}
	text := fmt.Sprintf("%s has named you their delegate until %s%s: you may approve or reject wherever they may, and your votes count as theirs. Your App Home lists what waits.",
		who(d.Delegator), d.Until.Add(-time.Second).Format(time.DateOnly), reasonSuffix(d.Reason))
	if cancelled {
		text = fmt.Sprintf("%s has cancelled their delegation: you no longer decide for them.", who(d.Delegator))
	}
	if _, _, err := n.api.PostMessageContext(ctx, d.Delegate.ID, slack.MsgOptionText(text, false)); err != nil {
		return fmt.Errorf("slack: %s: %w", op, err)
	}
	return nil
}

var _ Delegations = runtimeService{}

// errNoDelegations: the service in force keeps no delegations.
var errNoDelegations = fmt.Errorf("%w: delegations are not available", approvals.ErrUnavailable)

func (s runtimeService) delegations() (Delegations, error) {
	svc := s.r.service()
	if svc == nil {
		return nil, errNoService
	}
	ds, ok := svc.(Delegations)
	if !ok {
		return nil, errNoDelegations
	}
	return ds, nil
}

func (s runtimeService) Delegate(ctx context.Context, from, to approvals.Person, until time.Time, reason string) (approvals.Delegation, error) {
	ds, err := s.delegations()
	if err != nil {
		return approvals.Delegation{}, err
	}
	return ds.Delegate(ctx, from, to, until, reason)
}

func (s runtimeService) CancelDelegation(ctx context.Context, from approvals.Person) (approvals.Delegation, error) {
	ds, err := s.delegations()
	if err != nil {
		return approvals.Delegation{}, err
	}
	return ds.CancelDelegation(ctx, from)
}

func (s runtimeService) DelegationsOf(ctx context.Context, u approvals.Person) (*approvals.Delegation, []approvals.Delegation, error) {
	ds, err := s.delegations()
	if err != nil {
		return nil, nil, err
	}
	return ds.DelegationsOf(ctx, u)
}
