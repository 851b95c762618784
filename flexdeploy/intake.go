// Package flexdeploy adapts FlexDeploy to approvalbot: it parses what
// FlexDeploy (or a script in it) posts to the intake, and it hands decisions
// back through FlexDeploy's REST API (v1 approval tasks).
package flexdeploy

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/rest"
)

// Source is the name approvalbot knows FlexDeploy's tasks by.
const Source = "flexdeploy"

const (
	// maxTaskIDBytes bounds the task id; FlexDeploy's ids are numbers, so a
	// longer one is garbage, and it ends up in keys, URLs and Slack values.
	maxTaskIDBytes = 256
	// maxFieldRunes bounds every other field: they are shown in Slack and
	// matched by policies, never stored without limit.
	maxFieldRunes = 2000
)

// ParseTask parses an intake body: either a task object
// ({"taskId": "8900", "description": "…", …}) or FlexDeploy's
// outgoing-webhook envelope ({"eventType", "actor", "object", "timestamp",
// "payload": {…task fields…}}). Field names match case-insensitively, the task
// id may be a JSON string or a whole number, and fields it does not know are
// ignored because FlexDeploy sends many. Every error wraps
// approvals.ErrInvalid and says which field is wrong without echoing the input.
func ParseTask(body []byte) (approvals.Submission, error) {
	top, err := decodeObject(body, "body")
	if err != nil {
		return approvals.Submission{}, err
	}

	fields := top
	requestedByFallback := ""
	if raw, ok, err := top.get("payload"); err != nil {
		return approvals.Submission{}, err
	} else if ok && !isNull(raw) {
		// The webhook envelope: the task is the payload; the envelope's actor
		// is who made FlexDeploy raise it.
		if fields, err = decodeObject(raw, "payload"); err != nil {
			return approvals.Submission{}, err
		}
		if requestedByFallback, err = actorName(top); err != nil {
			return approvals.Submission{}, err
		}
	}

	values, err := taskFields(fields)
	if err != nil {
		return approvals.Submission{}, err
	}
	if values[fTaskID] == "" {
		return approvals.Submission{}, approvals.Invalidf("taskId is required")
	}
	sub := approvals.Submission{
		Source: Source,
		TaskID: values[fTaskID],
		Context: approvals.Context{
			Description: values[fDescription],
			Environment: firstNonEmpty(values[fEnvironment], values[fEnvironmentName]),
			Project:     firstNonEmpty(values[fProject], values[fProjectName]),
			Release:     firstNonEmpty(values[fRelease], values[fReleaseName]),
			Pipeline:    firstNonEmpty(values[fPipeline], values[fPipelineName]),
			Stage:       values[fStage],
			RequestedBy: firstNonEmpty(values[fRequestedBy], requestedByFallback),
			URL:         values[fURL],
		},
	}
	if sub.Artifact, sub.Change, err = rest.ChangeFields(fields); err != nil {
		return approvals.Submission{}, err
	}
	return sub, nil
}

// field is a task field ParseTask knows.
type field int

const (
	fTaskID field = iota
	fDescription
	fEnvironment
	fProject
	fRelease
	fPipeline
	fStage
	fRequestedBy
	fURL
	fEnvironmentName
	fProjectName
	fReleaseName
	fPipelineName
	fieldCount
)

// String is the field's canonical spelling, used in error messages.
func (f field) String() string {
	switch f {
	case fTaskID:
		return "taskId"
	case fDescription:
		return "description"
	case fEnvironment:
		return "environment"
	case fProject:
		return "project"
	case fRelease:
		return "release"
	case fPipeline:
		return "pipeline"
	case fStage:
		return "stage"
	case fRequestedBy:
		return "requestedBy"
	case fURL:
		return "url"
	case fEnvironmentName:
		return "environmentName"
	case fProjectName:
		return "projectName"
	case fReleaseName:
		return "releaseName"
	case fPipelineName:
		return "pipelineName"
	}
	return "field" + strconv.Itoa(int(f))
}

// lookupField finds the field a JSON key names, ignoring case.
func lookupField(key string) (field, bool) {
	for f := field(0); f < fieldCount; f++ {
		if strings.EqualFold(key, f.String()) {
			return f, true
		}
	}
	return 0, false
}

// taskFields reads the known fields of a task object. A field given twice
// (in any mix of cases) is refused: which one policies would match on must
// not depend on JSON key order.
func taskFields(obj object) ([fieldCount]string, error) {
	var values [fieldCount]string
	var seen [fieldCount]bool
	for _, m := range obj {
		f, ok := lookupField(m.Key)
		if !ok {
			continue
		}
		if seen[f] {
			return values, approvals.Invalidf("%s is given more than once", f)
		}
		seen[f] = true
		var (
			v   string
			err error
		)
		switch f {
		case fTaskID:
			v, err = taskIDValue(m.Raw)
		case fURL:
			v, err = urlValue(m.Raw)
		default:
			v, err = textValue(f.String(), m.Raw)
		}
		if err != nil {
			return values, err
		}
		values[f] = v
	}
	return values, nil
}

// actorName is the envelope's actor as a requester: the actor itself when it
// is a string, or its name, email or userName when it is an object. Any other
// shape says nothing about the requester and is ignored.
func actorName(top object) (string, error) {
	raw, ok, err := top.get("actor")
	if err != nil || !ok {
		return "", err
	}
	switch firstByte(raw) {
	case '"':
		return textValue("actor", raw)
	case '{':
		actor, err := decodeObject(raw, "actor")
		if err != nil {
			return "", err
		}
		// An email identifies the person (the self-approval check looks it
		// up in Slack); a name only may.
		for _, key := range []string{"email", "name", "userName"} {
			v, ok, err := actor.get(key)
			if err != nil {
				return "", approvals.Invalidf("actor.%s is given more than once", key)
			}
			if !ok || firstByte(v) != '"' {
				continue
			}
			s, err := textValue("actor."+key, v)
			if err != nil {
				return "", err
			}
			if s != "" {
				return s, nil
			}
		}
	}
	return "", nil
}

// taskIDValue reads the task id: a string, or a whole number rendered in
// plain digits (8900, 8.9e3, 8900.0 and "08900" all become "8900").
func taskIDValue(raw json.RawMessage) (string, error) {
	var id string
	switch c := firstByte(raw); {
	case c == 'n':
		return "", nil // null: absent, reported as missing by the caller
	case c == '"':
		var ok bool
		if id, ok = stringValue(raw); !ok {
			return "", approvals.Invalidf("taskId is not a valid JSON string")
		}
		id = strings.TrimSpace(id)
		if id == "" {
			return "", approvals.Invalidf("taskId must not be empty")
		}
		// FlexDeploy's ids are numbers: "08900" is task 8900, as 8900 is.
		if strings.Trim(id, "0123456789") == "" {
			if id = strings.TrimLeft(id, "0"); id == "" {
				id = "0"
			}
		}
	case c == '-' || (c >= '0' && c <= '9'):
		var err error
		if id, err = wholeNumber(string(bytes.TrimSpace(raw))); err != nil {
			return "", err
		}
	default:
		return "", approvals.Invalidf("taskId must be a string or a whole number")
	}
	if len(id) > maxTaskIDBytes {
		return "", approvals.Invalidf("taskId is longer than %d characters", maxTaskIDBytes)
	}
	if strings.IndexFunc(id, unicode.IsControl) >= 0 {
		return "", approvals.Invalidf("taskId must not contain control characters")
	}
	return id, nil
}

// wholeNumber renders a JSON number literal that is a whole number ≥ 0 in
// plain decimal digits, without exponent or fraction. It works on the digits
// rather than on a float64 so that large ids keep every digit, and it bounds
// the exponent so that 1e999999999 cannot make it allocate.
func wholeNumber(lit string) (string, error) {
	notWhole := approvals.Invalidf("taskId must be a whole number")
	neg := strings.HasPrefix(lit, "-")
	s := strings.TrimPrefix(lit, "-")
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 1<<20 || e < -(1<<20) {
			return "", approvals.Invalidf("taskId is not a whole number of at most %d digits", maxTaskIDBytes)
		}
		mant, exp = s[:i], e
	}
	intPart, frac := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
	}
	if intPart == "" || strings.Trim(intPart+frac, "0123456789") != "" {
		return "", notWhole
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return "0", nil // zero, whatever its sign, fraction or exponent
	}
	if neg {
		return "", approvals.Invalidf("taskId must not be negative")
	}
	shift := exp - len(frac)
	trimmed := strings.TrimRight(digits, "0")
	shift += len(digits) - len(trimmed)
	if shift < 0 {
		return "", notWhole
	}
	if len(trimmed)+shift > maxTaskIDBytes {
		return "", approvals.Invalidf("taskId is longer than %d characters", maxTaskIDBytes)
	}
	return trimmed + strings.Repeat("0", shift), nil
}

// textValue reads an optional text field: a string, or a number kept as it
// was written (release 2.10 stays "2.10"); null is absent. It is trimmed and
// capped at maxFieldRunes.
func textValue(name string, raw json.RawMessage) (string, error) {
	var s string
	switch c := firstByte(raw); {
	case c == 'n':
		return "", nil
	case c == '"':
		var ok bool
		if s, ok = stringValue(raw); !ok {
			return "", approvals.Invalidf("%s is not a valid JSON string", name)
		}
	case c == '-' || (c >= '0' && c <= '9'):
		s = string(bytes.TrimSpace(raw))
	default:
		return "", approvals.Invalidf("%s must be a string or a number", name)
	}
	return approvals.CapRunes(strings.TrimSpace(s), maxFieldRunes), nil
}

// urlValue reads the optional link to the task. It is shown as a link in
// Slack, so only absolute http(s) URLs pass; a cut-off URL would be a broken
// link, so a long one is refused rather than capped.
func urlValue(raw json.RawMessage) (string, error) {
	if c := firstByte(raw); c != '"' && c != 'n' {
		return "", approvals.Invalidf("url must be a string")
	}
	s, ok := "", true
	if firstByte(raw) == '"' {
		s, ok = stringValue(raw)
	}
	if !ok {
		return "", approvals.Invalidf("url is not a valid JSON string")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if utf8.RuneCountInString(s) > maxFieldRunes {
		return "", approvals.Invalidf("url is longer than %d characters", maxFieldRunes)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", approvals.Invalidf("url must be an absolute http or https URL")
	}
	return s, nil
}

// object is a decoded JSON object whose values are left raw.
type object []rest.Member

// get returns the value of key, matched case-insensitively, and refuses a key
// given more than once.
func (o object) get(key string) (json.RawMessage, bool, error) {
	var (
		found json.RawMessage
		ok    bool
	)
	for _, m := range o {
		if !strings.EqualFold(m.Key, key) {
			continue
		}
		if ok {
			return nil, false, approvals.Invalidf("%s is given more than once", key)
		}
		found, ok = m.Raw, true
	}
	return found, ok, nil
}

// decodeObject is rest.DecodeObject (exactly one JSON object, duplicate keys
// kept, values raw) as an object, for its lookups. A valid object is split
// by a scan of its own, which allocates the members and nothing else (the
// values stay slices of data); anything else goes to rest.DecodeObject,
// whose error says what is wrong. Both give the same members.
func decodeObject(data []byte, what string) (object, error) {
	if obj, ok := splitObject(data); ok {
		return obj, nil
	}
	return rest.DecodeObject(data, what)
}

// splitObject splits data, which json.Valid must accept as exactly one
// JSON object, into its members; ok is false for anything else. The keys
// are unescaped (through encoding/json when they hold an escape or are not
// valid UTF-8, which it replaces); the values are the bytes as written.
func splitObject(data []byte) (obj object, ok bool) {
	if !json.Valid(data) {
		return nil, false
	}
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return nil, false
	}
	i = skipSpace(data, i+1)
	if data[i] == '}' {
		return object{}, true
	}
	obj = make(object, 0, 8)
	for {
		end := stringEnd(data, i) // data[i] is the key's opening quote
		key, ok := unquote(data[i:end])
		if !ok {
			return nil, false
		}
		i = skipSpace(data, skipSpace(data, end)+1) // past the colon
		vend := valueEnd(data, i)
		obj = append(obj, rest.Member{Key: key, Raw: data[i:vend:vend]})
		i = skipSpace(data, vend)
		if data[i] == '}' {
			return obj, true
		}
		i = skipSpace(data, i+1) // past the comma
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// stringEnd is the index after the closing quote of the string whose
// opening quote is at i.
func stringEnd(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(data)
}

// valueEnd is the index after the value that starts at i.
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				i = stringEnd(data, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(data)
	}
	for ; i < len(data); i++ { // a number, true, false or null
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}

// unquote decodes a JSON string literal (quotes included) that json.Valid
// accepted: taken as it is when it holds no escape and is valid UTF-8,
// which is what decoding it would give.
func unquote(lit []byte) (string, bool) {
	inner := lit[1 : len(lit)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "", false
	}
	return s, true
}

// stringValue decodes a raw JSON string value (as decodeObject gives it),
// without encoding/json when it holds no escape.
func stringValue(raw json.RawMessage) (string, bool) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		inner := raw[1 : len(raw)-1]
		if bytes.IndexByte(inner, '\\') < 0 && bytes.IndexByte(inner, '"') < 0 && utf8.Valid(inner) && !hasControl(inner) {
			return string(inner), true
		}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// hasControl reports a byte JSON does not allow unescaped in a string.
func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

func firstByte(raw json.RawMessage) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
