package approvals

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// chatUserID is what a chat user id looks like (Slack: U… or W…).
var chatUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// nameAddr is an address as mail and git write it: `Dev Name <dev@example.com>`.
var nameAddr = regexp.MustCompile(`^[^<>|]*<([^<>|@:\s]+@[^<>|@\s]+)>$`)

// Requester is who asked for a deployment, as the task names them, in the
// order of preference: an email, a chat user id, a name. Unreadable is
// set, and nothing else, when requestedBy is written in chat markup that
// is not understood: nobody can then tell who asked, so the self-approval
// check refuses (ErrRequesterUnreadable) instead of comparing a "name".
type Requester struct {
	Email, UserID, Name string
	// Unreadable says which markup could not be read.
	Unreadable string
}

// ParseRequester reads a task's requestedBy: `mailto:` is dropped, a
// mention `<@U123>` (or `<@U123|name>`, `<@u123>`) is the user id U123,
// Slack's email link `<mailto:a@b|a@b>` and `Name <a@b>` are the email
// a@b, and what looks like neither an email nor a user id is a name.
// Anything else written with `<`, `>` or `|` (user groups, channels,
// `<!here>`, links, Teams' `<at>…</at>`, HTML) is markup not understood:
// Unreadable, never a name. Slack's escapes &lt; &gt; &amp; are read as
// the characters they stand for. Zero-width and control characters are
// removed and space trimmed; fold (which may be nil) normalises emails
// and names for comparison, e.g. NFKC case folding.
func ParseRequester(s string, fold func(string) string) Requester {
	s = strings.TrimSpace(strings.Map(dropInvisible, s))
	if fold == nil {
		fold = strings.ToLower
	}
	s = entityUnescape.Replace(s)
	s = trimMailto(s)
	if strings.ContainsAny(s, "<>|") {
		return parseMarkup(s, fold)
	}
	if s == "" {
		return Requester{}
	}
	if chatUserID.MatchString(s) {
		return Requester{UserID: s}
	}
	folded := fold(s)
	switch {
	case strings.ContainsAny(folded, "<>|"):
		// Folding made markup of look-alikes (＜@U1＞): neither an
		// email nor a name.
		return Requester{Unreadable: "characters that fold to markup"}
	case isEmail(s):
		return Requester{Email: folded}
	}
	return Requester{Name: folded}
}

// entityUnescape undoes the three escapes Slack writes in message text.
var entityUnescape = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

func trimMailto(s string) string {
	if len(s) > 7 && strings.EqualFold(s[:7], "mailto:") {
		return strings.TrimSpace(s[7:])
	}
	return s
}

func isEmail(s string) bool {
	return strings.Count(s, "@") == 1 && !strings.HasPrefix(s, "@") && !strings.HasSuffix(s, "@") &&
		!strings.ContainsAny(s, "<>|")
}

// parseMarkup reads the few forms of markup that name one person, and
// refuses the rest.
func parseMarkup(s string, fold func(string) string) Requester {
	if m := nameAddr.FindStringSubmatch(s); m != nil && !strings.HasPrefix(s, "<") {
		return Requester{Email: fold(m[1])}
	}
	if !strings.HasPrefix(s, "<") || !strings.HasSuffix(s, ">") || strings.Count(s, "<") != 1 || strings.Count(s, ">") != 1 {
		return Requester{Unreadable: "text around or inside chat markup"}
	}
	target, label, labelled := strings.Cut(s[1:len(s)-1], "|")
	if strings.Contains(label, "|") {
		return Requester{Unreadable: "a link with more than one label"}
	}
	switch {
	case strings.HasPrefix(target, "@"):
		// A Slack mention; ids are upper case, so <@u123> is U123.
		id := strings.ToUpper(strings.TrimSpace(target[1:]))
		if !chatUserID.MatchString(id) {
			return Requester{Unreadable: "a mention that is not a user id"}
		}
		return Requester{UserID: id}
	case len(target) > 7 && strings.EqualFold(target[:7], "mailto:"):
		// Slack's email link: the address is the target; a label that is
		// another address is a disguise.
		email := strings.TrimSpace(target[7:])
		if !isEmail(email) {
			return Requester{Unreadable: "a mailto link without an email"}
		}
		if labelled && !strings.EqualFold(strings.TrimSpace(trimMailto(label)), email) {
			return Requester{Unreadable: "a mailto link labelled with something else"}
		}
		return Requester{Email: fold(email)}
	case isEmail(target) && !labelled:
		return Requester{Email: fold(target)}
	case strings.HasPrefix(target, "!"):
		return Requester{Unreadable: "a special mention (user group, @here, @channel, date)"}
	case strings.HasPrefix(target, "#"):
		return Requester{Unreadable: "a channel"}
	}
	return Requester{Unreadable: "a link or markup that names no one person"}
}

// dropInvisible removes zero-width and control characters, which make two
// names look alike that compare unequal (or the reverse).
func dropInvisible(r rune) rune {
	switch {
	case r == '\u200b', r == '\u200c', r == '\u200d', r == '\u2060', r == '\ufeff', r == '\u00ad':
		return -1
	case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
		return -1
	}
	return r
}

// isRequester reports whether the person asked for the deployment. When it
// cannot tell (a chat's look-up failed, timed out or was rate limited, or
// there is no chat connection to ask), it says so with an error matching
// ErrIdentityUnknown: the caller refuses rather than guess.
func (s *Service) isRequester(ctx context.Context, t *Task, u Person) (bool, error) {
	requestedBy := t.RequestedBy
	if requestedBy == "" && t.RequestedByUnmapped != "" {
		if tool, _ := s.cfg.Tools.Get(t.Source); tool != nil && tool.MapRequester != nil {
			requestedBy, _ = tool.MapRequester(t.RequestedByUnmapped)
		}
	}
	by := ParseRequester(requestedBy, s.cfg.Fold)
	who := s.asker(u)
	switch {
	case by.UserID != "":
		// A user id is the primary chat's.
		if who.primary {
			return by.UserID == u.ID, nil
		}
		if u.Email == "" {
			return false, fmt.Errorf("%w: %s gives no email to compare with the requester's", ErrIdentityUnknown, s.cfg.Chats.DisplayName(u.Chat))
		}
		dir, ok := s.cfg.Chats.directory("").(EmailDirectory)
		if !ok {
			return false, fmt.Errorf("%w: no %s connection to look the requester up", ErrIdentityUnknown, s.cfg.Chats.DisplayName(""))
		}
		email, err := dir.EmailOf(ctx, by.UserID)
		if err != nil {
			return false, fmt.Errorf("%w: %w", ErrIdentityUnknown, err)
		}
		if email == "" {
			return false, fmt.Errorf("%w: the requester's %s profile shows no email", ErrIdentityUnknown, s.cfg.Chats.DisplayName(""))
		}
		return s.fold(email) == u.Email, nil
	case by.Email != "":
		if u.Email != "" {
			return by.Email == u.Email, nil
		}
		if who.dir == nil {
			return false, fmt.Errorf("%w: no chat connection to look %s up", ErrIdentityUnknown, "the requester's email")
		}
		id, err := who.dir.UserIDByEmail(ctx, by.Email)
		switch {
		case errors.Is(err, ErrNotFound):
			return false, nil // no chat user has that email
		case err != nil:
			return false, fmt.Errorf("%w: %w", ErrIdentityUnknown, err)
		}
		return id == u.ID, nil
	case by.Name != "":
		return u.Name != "" && ParseRequester(u.Name, s.cfg.Fold).Name == by.Name, nil
	case by.Unreadable != "":
		return false, fmt.Errorf("%w: %s", ErrRequesterUnreadable, by.Unreadable)
	case t.RequestedByUnmapped != "":
		return false, fmt.Errorf("%w (%s)", ErrRequesterUnmapped, t.RequestedByUnmapped)
	}
	return false, nil
}
