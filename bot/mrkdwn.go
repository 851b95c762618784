package bot

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Slack's Block Kit limits, in characters.
const (
	maxHeaderChars  = 150
	maxSectionChars = 3000
	maxFieldChars   = 2000
	maxConfirmChars = 300
	// maxErrorChars keeps a deployment tool's error page from filling the
	// message: the first lines say what went wrong.
	maxErrorChars = 500
	// maxSourceChars bounds the name of the task at its tool.
	maxSourceChars = 200
	// maxNameChars bounds a person's or a policy's name (Slack's display
	// names have at most 80 characters).
	maxNameChars = 100
	// maxFallbackChars bounds a message's text (Slack takes 40,000): it
	// is what notifications show, a line.
	maxFallbackChars = 3000
)

// slackIDPattern is what a Slack user or group id looks like. Ids from the
// configuration are put inside <@…> and <!subteam^…>; anything else is shown
// as escaped text so that a typo cannot turn into a broadcast or a link.
var slackIDPattern = regexp.MustCompile(`^[A-Za-z0-9]{2,32}$`)

// escape makes user-supplied text inert in mrkdwn: Slack parses mentions
// (<!channel>), links (<https://…|…>) and user references only inside angle
// brackets, and needs & escaped so that entities cannot be smuggled in.
func escape(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		b.WriteString(escapeRune(r))
	}
	return b.String()
}

func escapeRune(r rune) string {
	switch r {
	case '&':
		return "&amp;"
	case '<':
		return "&lt;"
	case '>':
		return "&gt;"
	}
	return string(r)
}

// escapeTrunc escapes s and cuts it so that the escaped text has at most max
// characters, ending in "…" when cut. It never cuts through an entity, which
// would leave a stray "&am" in the message.
func escapeTrunc(s string, max int) string {
	var b strings.Builder
	n, fit := 0, -1 // fit: the length of the longest prefix that leaves room for "…"
	for _, r := range s {
		piece := escapeRune(r)
		k := utf8.RuneCountInString(piece)
		if fit < 0 && n+k > max-1 {
			fit = b.Len()
		}
		if n+k > max {
			return b.String()[:fit] + "…"
		}
		b.WriteString(piece)
		n += k
	}
	return b.String()
}

// plainTrunc cuts plain text (not parsed by Slack) to max characters.
func plainTrunc(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max-1 {
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String() + "…"
}

// oneLine folds line breaks and other control characters into spaces, for
// headers and field values that must stay on one line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// mentionUser renders a Slack user: a mention when id is a user id, else the
// escaped name (or id).
func mentionUser(id, name string) string {
	if slackIDPattern.MatchString(id) {
		return "<@" + id + ">"
	}
	if name != "" {
		return escapeTrunc(oneLine(name), maxNameChars)
	}
	return escapeTrunc(oneLine(id), maxNameChars)
}

// mentionGroup renders a Slack user group.
func mentionGroup(id string) string {
	if slackIDPattern.MatchString(id) {
		return "<!subteam^" + id + ">"
	}
	return escapeTrunc(oneLine(id), maxNameChars)
}

// slackDate renders t in each reader's own time zone; the fallback is for
// clients that cannot (notifications, old clients).
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} at {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// safeLink returns rawURL fit for a mrkdwn link, or "" when it is not an
// http(s) URL: a javascript: or slack: link in a deployment tool's payload
// must not become clickable.
func safeLink(rawURL string) string {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	s := u.String()
	// "|" ends the URL part of <url|text>; percent-encode it, and escape the
	// rest like any text.
	s = strings.ReplaceAll(s, "|", "%7C")
	if strings.ContainsAny(s, " \t\n") {
		return ""
	}
	return escape(s)
}
