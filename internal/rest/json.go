package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

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
