package rest

import (
	"strings"
	"unicode"

	"github.com/approvalbot/approvalbot/approvals"
)

// ExcerptRunes is how much of an answer an error quotes.
const ExcerptRunes = 200

// Excerpt makes text (an answer, or the message picked out of it) fit to
// quote in an error: valid UTF-8, on one line, without secrets, at most
// ExcerptRunes runes. redact runs again after the lines are joined, since
// joining may make a secret whole that a line break had split.
func Excerpt(text string, redact func(string) string) string {
	text = redact(strings.ToValidUTF8(text, "\uFFFD"))
	text = strings.Join(strings.FieldsFunc(text, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	text = redact(text)
	if capped := approvals.CapRunes(text, ExcerptRunes-1); capped != text {
		text = capped + "…"
	}
	return text
}

// Redact replaces each secret in s with "[redacted]", in the order given;
// empty ones are skipped. A caller lists every form its secret may take (as
// a URL or a header carries it), longest first where one holds another.
func Redact(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// RedactError is err with each secret removed from its text (as Redact
// does); errors.Is and errors.As still see what it wraps (context.Canceled,
// a net.Error).
func RedactError(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	return redactedError{err: err, secrets: secrets}
}

type redactedError struct {
	err     error
	secrets []string
}

func (e redactedError) Error() string { return Redact(e.err.Error(), e.secrets...) }
func (e redactedError) Unwrap() error { return e.err }
