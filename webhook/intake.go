package webhook

import (
	"encoding/json"
	"net/url"
	"strings"
	"unicode"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/hosts"
	"github.com/approvalbot/approvalbot/internal/rest"
)

// ExtraCallbackHost is the key of a task's Extra naming where its decision
// goes (scheme and host only); the whole callback URL is kept sealed in the
// task's Secret.
const ExtraCallbackHost = "callbackHost"

const (
	// maxTaskIDBytes bounds the task id: it ends up in keys, URLs and
	// Slack values.
	maxTaskIDBytes = 256
	// maxFieldRunes bounds every other field.
	maxFieldRunes = 2000
	// maxCallbackBytes bounds the callback URL.
	maxCallbackBytes = 2048
)

// field is a task field the intake knows: its name, and the name of the
// field it is an alias of ("" for none).
type field struct {
	name, aliasOf string
}

// fields are /v1/tasks' fields (FlexDeploy's names as aliases), and the
// callback.
var fields = []field{
	{"taskId", ""}, {"description", ""}, {"environment", ""}, {"project", ""}, {"release", ""},
	{"pipeline", ""}, {"stage", ""}, {"requestedBy", ""}, {"url", ""}, {"callbackUrl", ""},
	{"environmentName", "environment"}, {"projectName", "project"}, {"releaseName", "release"}, {"pipelineName", "pipeline"},
}

// Parse turns a task into a submission: a JSON object with the task
// fields of /v1/tasks (names matched case-insensitively, the task id a
// string or a whole number, FlexDeploy's environmentName, projectName,
// releaseName and pipelineName as aliases, unknown fields ignored) and
// callbackUrl, where the decision will be POSTed. The callback must be an
// https URL (plain http only to a loopback host) on an allowed host;
// otherwise the task is refused and nothing is recorded. The callback URL
// is sealed into the submission's Secret (Extra names only its host).
// Without a callbackUrl the task is a gate (approvals.Task.Gate): a tool
// that polls for the outcome, told nothing.
// Every error wraps approvals.ErrInvalid and quotes nothing of the input.
func (c *Client) Parse(_ func(name string) string, body []byte) (approvals.Submission, error) {
	obj, err := rest.DecodeObject(body, "body")
	if err != nil {
		return approvals.Submission{}, err
	}
	values := map[string]string{}
	for _, m := range obj {
		i := -1
		for j, f := range fields {
			if strings.EqualFold(m.Key, f.name) {
				i = j
			}
		}
		if i < 0 {
			continue
		}
		name := fields[i].name
		if _, dup := values[name]; dup {
			return approvals.Submission{}, approvals.Invalidf("%s is given more than once", name)
		}
		v, err := value(name, m.Raw)
		if err != nil {
			return approvals.Submission{}, err
		}
		values[name] = v
	}
	for _, f := range fields {
		if f.aliasOf != "" && values[f.aliasOf] == "" {
			values[f.aliasOf] = values[f.name]
		}
	}
	id := values["taskId"]
	switch {
	case id == "":
		return approvals.Submission{}, approvals.Invalidf("taskId is required")
	case len(id) > maxTaskIDBytes:
		return approvals.Submission{}, approvals.Invalidf("taskId is longer than %d bytes", maxTaskIDBytes)
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return approvals.Submission{}, approvals.Invalidf("taskId must not contain control characters")
	}
	link, err := rest.CheckLink(values["url"], maxFieldRunes)
	if err != nil {
		return approvals.Submission{}, err
	}
	// Without a callbackUrl the task is a gate: its tool polls for the
	// outcome (the intake's answer, or GET /v1/tasks/{id}) and is told
	// nothing.
	callback := values["callbackUrl"]
	var sealed []byte
	var extra map[string]string
	if callback != "" {
		if err := c.hosts.checkCallback(callback); err != nil {
			return approvals.Submission{}, err
		}
		if sealed, err = c.sealer.seal(callback, approvals.TaskRecordID(Source, id)); err != nil {
			return approvals.Submission{}, err
		}
		extra = map[string]string{ExtraCallbackHost: callbackHost(callback)}
	}
	artifact, change, err := rest.ChangeFields(obj)
	if err != nil {
		return approvals.Submission{}, err
	}
	capped := func(name string) string { return approvals.CapRunes(values[name], maxFieldRunes) }
	return approvals.Submission{
		Source: Source,
		TaskID: id,
		Context: approvals.Context{
			Description: capped("description"),
			Environment: capped("environment"),
			Project:     capped("project"),
			Release:     capped("release"),
			Pipeline:    capped("pipeline"),
			Stage:       capped("stage"),
			RequestedBy: capped("requestedBy"),
			URL:         link,
			Artifact:    artifact,
			Change:      change,
		},
		Secret: sealed,
		Extra:  extra,
		Gate:   callback == "",
	}, nil
}

// value reads a field (rest.TextValue); a task id that is a number must
// be a whole one, and the URLs must be strings.
func value(name string, raw json.RawMessage) (string, error) {
	s, quoted, err := rest.TextValue(name, raw)
	switch {
	case err != nil:
		return "", err
	case name == "taskId" && !quoted && strings.Trim(s, "0123456789") != "":
		return "", approvals.Invalidf("taskId must be a string or a whole number")
	case (name == "callbackUrl" || name == "url") && !quoted && s != "":
		return "", approvals.Invalidf("%s must be a string", name)
	}
	return s, nil
}

// hostList is the hosts decisions may be POSTed to: a hosts.List that
// carries checkCallback.
type hostList hosts.List

func newHostList(patterns []string) hostList { return hostList(hosts.New(patterns)) }

// ValidateAllowedHosts checks host patterns: each a glob (path.Match
// syntax) over a host name, or host:port to pin the port (hosts.Validate).
func ValidateAllowedHosts(patterns []string) error {
	return hosts.Validate(patterns, "webhook")
}

// checkCallback accepts an absolute https URL (plain http only to a
// loopback host) on an allowed host, without credentials or fragment; a
// query is kept (a receiver's token often rides there). Errors do not
// quote the URL, which may hold such a token.
func (l hostList) checkCallback(raw string) error {
	if len(raw) > maxCallbackBytes {
		return approvals.Invalidf("callbackUrl is longer than %d bytes", maxCallbackBytes)
	}
	if strings.IndexFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }) >= 0 {
		return approvals.Invalidf("callbackUrl must not contain spaces, control characters or backslashes")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return approvals.Invalidf("callbackUrl is not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return approvals.Invalidf("callbackUrl must be an absolute https URL")
	case u.Host == "" || u.Opaque != "":
		return approvals.Invalidf("callbackUrl has no host")
	case u.User != nil:
		return approvals.Invalidf("callbackUrl must not contain credentials (the signature proves the sender)")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return approvals.Invalidf("callbackUrl must not have a fragment")
	case !hosts.ValidName(u.Hostname()):
		return approvals.Invalidf("callbackUrl has an invalid host")
	case u.Scheme != "https" && !hosts.IsLoopback(u.Hostname()):
		return approvals.Invalidf("callbackUrl must be an https URL (plain http only to a loopback host)")
	case !hosts.List(l).Allows(u):
		return approvals.Invalidf("callbackUrl names a host that is not allowed (see webhook.allowed_hosts)")
	}
	return nil
}

// callbackHost is the scheme and host of a checked callback URL.
func callbackHost(callback string) string {
	u, err := url.Parse(callback)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
