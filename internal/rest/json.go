package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/approvalbot/approvalbot/approvals"
)

// Member is one key/value pair of a JSON object, in the order given.
type Member struct {
	Key string
	Raw json.RawMessage
}

// DecodeObject decodes data, which must be exactly one JSON object, keeping
// duplicate keys (so that the caller can refuse them: what policies match on
// must not depend on key order) and values raw. what names the object in
// errors; they wrap approvals.ErrInvalid and never quote the input.
func DecodeObject(data []byte, what string) ([]Member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, approvals.Invalidf("%s is empty; it must be a JSON object", what)
		}
		return nil, syntaxError(what, err)
	}
	if tok != json.Delim('{') {
		return nil, approvals.Invalidf("%s must be a JSON object", what)
	}
	var obj []Member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(what, err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, approvals.Invalidf("%s is not valid JSON", what)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(what, err)
		}
		obj = append(obj, Member{Key: key, Raw: raw})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, syntaxError(what, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, approvals.Invalidf("%s has data after the JSON object", what)
	}
	return obj, nil
}

// syntaxError says where the JSON broke without quoting it.
func syntaxError(what string, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return approvals.Invalidf("%s is not valid JSON (at byte %d)", what, se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return approvals.Invalidf("%s is not valid JSON (it ends too early)", what)
	default:
		return approvals.Invalidf("%s is not valid JSON", what)
	}
}

// TextValue reads a field of an intake's JSON: a string, or a number kept
// as written (release 2.10 stays "2.10"); null is absent. The result is
// trimmed and valid UTF-8; quoted reports that it was a JSON string. name
// names the field in errors, which wrap approvals.ErrInvalid.
func TextValue(name string, raw json.RawMessage) (s string, quoted bool, err error) {
	raw = bytes.TrimSpace(raw)
	var c byte
	if len(raw) > 0 {
		c = raw[0]
	}
	switch {
	case c == 'n' && string(raw) == "null":
		return "", false, nil
	case c == '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, approvals.Invalidf("%s is not a valid JSON string", name)
		}
		quoted = true
	case c == '-' || (c >= '0' && c <= '9'):
		s = string(raw)
	default:
		return "", false, approvals.Invalidf("%s must be a string", name)
	}
	return strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD")), quoted, nil
}

// CheckLink accepts an intake's optional link to the task in its tool
// (the url field): it is shown as a link in Slack, so only an absolute
// http(s) URL passes, and one longer than maxRunes is refused rather than
// cut into a broken link. Empty is no link.
func CheckLink(s string, maxRunes int) (string, error) {
	if s == "" {
		return "", nil
	}
	if utf8.RuneCountInString(s) > maxRunes {
		return "", approvals.Invalidf("url is longer than %d characters", maxRunes)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return "", approvals.Invalidf("url must be an absolute http or https URL")
	}
	return s, nil
}
