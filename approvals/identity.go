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

// Requester is who asked for a deployment, as the task names them, in the
// order of preference: an email, a chat user id, a name.
type Requester struct {
	Email, UserID, Name string
}

// ParseRequester reads a task's requestedBy: `mailto:` is dropped, a
// mention `<@U123>` (or `<@U123|name>`) is the user id U123, and what
// looks like neither an email nor a user id is a name. Zero-width and
// control characters are removed and space trimmed; fold (which may be
// nil) normalises emails and names for comparison, e.g. NFKC case folding.
func ParseRequester(s string, fold func(string) string) Requester {
	s = strings.TrimSpace(strings.Map(dropInvisible, s))
	if fold == nil {
		fold = strings.ToLower
	}
	if len(s) > 7 && strings.EqualFold(s[:7], "mailto:") {
		s = strings.TrimSpace(s[7:])
	}
	if strings.HasPrefix(s, "<@") && strings.HasSuffix(s, ">") {
		id, _, _ := strings.Cut(s[2:len(s)-1], "|")
		s = strings.TrimSpace(id)
	}
	switch {
	case s == "":
		return Requester{}
	case chatUserID.MatchString(s):
		return Requester{UserID: s}
	case strings.Count(s, "@") == 1 && !strings.HasPrefix(s, "@") && !strings.HasSuffix(s, "@"):
		return Requester{Email: fold(s)}
	}
	return Requester{Name: fold(s)}
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
	case t.RequestedByUnmapped != "":
		return false, fmt.Errorf("%w (%s)", ErrRequesterUnmapped, t.RequestedByUnmapped)
	}
	return false, nil
}
