package rest

import (
	"encoding/json"
	"strings"

	"github.com/approvalbot/approvalbot/approvals"
)

// ChangeFields reads an intake's artifact ({"name", "digest"}) and change
// (a change record's number) from its members, names matched
// case-insensitively as the intakes match theirs. Each may be absent or
// null; given twice, malformed, or with an artifact member it does not
// know, the intake is refused: what an approval is bound to must be exactly
// what the tool meant. Errors wrap approvals.ErrInvalid and quote nothing.
func ChangeFields(obj []Member) (artifact *approvals.Artifact, change string, err error) {
	var seenArtifact, seenChange bool
	for _, m := range obj {
		switch {
		case strings.EqualFold(m.Key, "artifact"):
			if seenArtifact {
				return nil, "", approvals.Invalidf("artifact is given more than once")
			}
			seenArtifact = true
			if artifact, err = artifactValue(m.Raw); err != nil {
				return nil, "", err
			}
		case strings.EqualFold(m.Key, "change"):
			if seenChange {
				return nil, "", approvals.Invalidf("change is given more than once")
			}
			seenChange = true
			s, quoted, err := TextValue("change", m.Raw)
			if err != nil {
				return nil, "", err
			}
			if !quoted && s != "" {
				return nil, "", approvals.Invalidf("change must be a string")
			}
			if change, err = approvals.ParseChange(s); err != nil {
				return nil, "", err
			}
		}
	}
	return artifact, change, nil
}

// artifactValue reads {"name": …, "digest": …}; null is none.
func artifactValue(raw json.RawMessage) (*approvals.Artifact, error) {
	if strings.TrimSpace(string(raw)) == "null" {
		return nil, nil
	}
	obj, err := DecodeObject(raw, "artifact")
	if err != nil {
		return nil, err
	}
	var name, digest string
	var seenName, seenDigest bool
	for _, m := range obj {
		var target *string
		switch {
		case strings.EqualFold(m.Key, "name") && !seenName:
			target, seenName = &name, true
		case strings.EqualFold(m.Key, "digest") && !seenDigest:
			target, seenDigest = &digest, true
		case strings.EqualFold(m.Key, "name"), strings.EqualFold(m.Key, "digest"):
			return nil, approvals.Invalidf("artifact.%s is given more than once", strings.ToLower(m.Key))
		default:
			return nil, approvals.Invalidf("artifact has a member other than name and digest")
		}
		s, quoted, err := TextValue("artifact."+strings.ToLower(m.Key), m.Raw)
		if err != nil {
			return nil, err
		}
		if !quoted {
			return nil, approvals.Invalidf("artifact.%s must be a string", strings.ToLower(m.Key))
		}
		*target = s
	}
	return approvals.NewArtifact(name, digest)
}
