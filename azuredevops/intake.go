// Package azuredevops adapts Azure Pipelines to approvalbot: a stage guarded
// by an "Invoke REST API" check in callback mode posts to the intake, and the
// decision made in Slack completes the check through Azure DevOps' REST API
// (distributedtask events), with status lines in the check's log; the
// check's timeline record tells whether it was completed.
package azuredevops

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/hosts"
	"github.com/approvalbot/approvalbot/internal/rest"
)

// Source is the name approvalbot knows Azure DevOps' checks by.
const Source = "azure-devops"

const (
	// maxFieldRunes bounds every context field: they are shown in Slack and
	// matched by policies, never stored without limit.
	maxFieldRunes = 2000
	// maxPlanURLBytes bounds PlanUrl; a collection URI is short.
	maxPlanURLBytes = 2048
	// maxTokenBytes bounds the job token; it is a JWT of a few kilobytes.
	maxTokenBytes = 16 << 10
)

// Header names Azure Pipelines sends with a check (matched
// case-insensitively, as HTTP does).
const (
	hPlanURL        = "PlanUrl"
	hProjectID      = "ProjectId"
	hHubName        = "HubName"
	hPlanID         = "PlanId"
	hJobID          = "JobId"
	hTimelineID     = "TimelineId"
	hTaskInstanceID = "TaskInstanceId"
	hAuthToken      = "AuthToken"
)

// Keys of a task's Extra: where its check lives in Azure DevOps.
const (
	ExtraPlanURL        = "planUrl"
	ExtraProjectID      = "projectId"
	ExtraHubName        = "hubName"
	ExtraPlanID         = "planId"
	ExtraJobID          = "jobId"
	ExtraTimelineID     = "timelineId"
	ExtraTaskInstanceID = "taskInstanceId"
	// ExtraLogID is the log Announce created for the status lines.
	ExtraLogID = "logId"
	// ExtraLogPending is what Announce has still to do with that log
	// ("write", "attach"); empty or absent once it is attached.
	ExtraLogPending = "logPending"
)

// DefaultAllowedHosts are the hosts of Azure DevOps Services; an Azure
// DevOps Server (on premises) needs its own host configured.
func DefaultAllowedHosts() []string {
	return []string{"dev.azure.com", "*.visualstudio.com"}
}

// ValidateAllowedHosts checks host patterns for the configuration: each is a
// glob (path.Match syntax) over a host name, such as "*.visualstudio.com",
// or host:port to pin the port (hosts.Validate).
func ValidateAllowedHosts(patterns []string) error {
	return hosts.Validate(patterns, "azure devops")
}

// Intake parses the requests of Azure Pipelines' "Invoke REST API" checks.
// It is safe for concurrent use.
type Intake struct {
	sealer *Sealer
	hosts  hostList
}

// NewIntake returns an intake that seals job tokens with sealer and accepts
// PlanUrls on allowedHosts only (DefaultAllowedHosts when nil).
func NewIntake(sealer *Sealer, allowedHosts []string) *Intake {
	return &Intake{sealer: sealer, hosts: newHostList(allowedHosts)}
}

// Parse turns a check's request into a submission: the routing headers
// Azure Pipelines sends (see docs/azure-devops.md), and an optional
// JSON body with the context fields environment, project, release,
// pipeline, stage, description, requestedBy and url (names matched
// case-insensitively). The job token is sealed into Submission.Secret and
// never appears in an error; every error about the request wraps
// approvals.ErrInvalid. h reads a request header by its name,
// case-insensitively (as http.Header.Get does).
func (in *Intake) Parse(h func(name string) string, body []byte) (approvals.Submission, error) {
	planURL, err := requiredHeader(h, hPlanURL)
	if err != nil {
		return approvals.Submission{}, err
	}
	if planURL, err = in.hosts.checkPlanURL(planURL); err != nil {
		return approvals.Submission{}, err
	}
	ids := map[string]string{}
	for _, name := range []string{hProjectID, hHubName, hPlanID, hJobID, hTaskInstanceID} {
		v, err := requiredHeader(h, name)
		if err != nil {
			return approvals.Submission{}, err
		}
		if err := checkID(name, v); err != nil {
			return approvals.Submission{}, err
		}
		ids[name] = v
	}
	timelineID := optionalHeader(h, hTimelineID)
	if timelineID != "" {
		if err := checkID(hTimelineID, timelineID); err != nil {
			return approvals.Submission{}, err
		}
	}
	token, err := requiredHeader(h, hAuthToken)
	if err != nil {
		return approvals.Submission{}, err
	}
	if err := checkToken(token); err != nil {
		return approvals.Submission{}, err
	}
	ctx, err := parseContext(body)
	if err != nil {
		return approvals.Submission{}, err
	}

	taskInstanceID := ids[hTaskInstanceID]
	if in.sealer == nil {
		// Not the caller's fault: the bot is wired without a key.
		return approvals.Submission{}, errors.New("azure devops: no encryption key is configured for job tokens")
	}
	sealed, err := in.sealer.Seal([]byte(token), sealAAD(taskInstanceID))
	if err != nil {
		return approvals.Submission{}, err
	}
	extra := map[string]string{
		ExtraPlanURL:        planURL,
		ExtraProjectID:      ids[hProjectID],
		ExtraHubName:        ids[hHubName],
		ExtraPlanID:         ids[hPlanID],
		ExtraJobID:          ids[hJobID],
		ExtraTaskInstanceID: taskInstanceID,
	}
	if timelineID != "" {
		extra[ExtraTimelineID] = timelineID
	}
	return approvals.Submission{
		Source:  Source,
		TaskID:  taskInstanceID,
		Context: ctx,
		Secret:  sealed,
		Extra:   extra,
	}, nil
}

// recordID is the id of the task record of a check.
func recordID(taskInstanceID string) string { return approvals.TaskRecordID(Source, taskInstanceID) }

// optionalHeader returns the header's value, trimmed. A header given more
// than once, should the caller join its copies (as HTTP allows, with
// ", "), holds a space or a comma, which none of the checks below lets
// through: which copy counts must not depend on a proxy's order.
func optionalHeader(h func(string) string, name string) string {
	return strings.TrimSpace(h(name))
}

func requiredHeader(h func(string) string, name string) (string, error) {
	v := optionalHeader(h, name)
	if v == "" {
		return "", approvals.Invalidf("header %s is required (set the check's headers as docs/azure-devops.md shows)", name)
	}
	return v, nil
}

// checkID accepts the GUIDs Azure DevOps uses as ids (and a hub name such
// as "build", "release" or "checks"): they end up in URL paths, so nothing
// else passes. The value is not quoted: it may be anything.
func checkID(name, v string) error {
	if len(v) > 64 || v == "" {
		return approvals.Invalidf("header %s must be 1 to 64 characters%s", name, unexpandedHint(v))
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' ||
			(c == '_' && name == hHubName)
		if !ok {
			allowed := "letters, digits and -"
			if name == hHubName {
				allowed = "letters, digits, - and _"
			}
			return approvals.Invalidf("header %s may hold only %s%s", name, allowed, unexpandedHint(v))
		}
	}
	return nil
}

// unexpandedHint explains the usual cause of a bad header: a $(variable)
// Azure Pipelines did not know and sent as it was written.
func unexpandedHint(v string) string {
	if strings.Contains(v, "$(") {
		return " (it holds a $(…) variable Azure Pipelines did not expand)"
	}
	return ""
}

// checkToken accepts a job token that can be sent back in an Authorization
// header. Errors say what is wrong without a byte of the token.
func checkToken(token string) error {
	if isUnexpanded(token) {
		return approvals.Invalidf("header %s holds a $(…) variable Azure Pipelines did not expand; send $(system.AccessToken)", hAuthToken)
	}
	if len(token) > maxTokenBytes {
		return approvals.Invalidf("header %s is longer than %d bytes", hAuthToken, maxTokenBytes)
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return approvals.Invalidf("header %s must be a token of printable ASCII characters without spaces", hAuthToken)
		}
	}
	return nil
}

// hostList is the hosts the bot may send job tokens to: a hosts.List that
// carries checkPlanURL.
type hostList hosts.List

func newHostList(patterns []string) hostList {
	if patterns == nil {
		patterns = DefaultAllowedHosts()
	}
	return hostList(hosts.New(patterns))
}

// checkPlanURL accepts an absolute http(s) collection URI on an allowed
// host and returns it ending in "/". This is what keeps the job token from
// being sent elsewhere: whoever holds an API key could otherwise name any
// URL, and the bot would POST the token there. Errors do not quote the URL.
func (l hostList) checkPlanURL(raw string) (string, error) {
	if len(raw) > maxPlanURLBytes {
		return "", approvals.Invalidf("header %s is longer than %d bytes", hPlanURL, maxPlanURLBytes)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", approvals.Invalidf("header %s is not a valid URL%s", hPlanURL, unexpandedHint(raw))
	case u.Scheme != "http" && u.Scheme != "https":
		return "", approvals.Invalidf("header %s must be an absolute http or https URL%s", hPlanURL, unexpandedHint(raw))
	case u.Host == "" || u.Opaque != "":
		return "", approvals.Invalidf("header %s has no host", hPlanURL)
	case u.User != nil:
		return "", approvals.Invalidf("header %s must not contain credentials", hPlanURL)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || strings.ContainsAny(raw, "?#"):
		return "", approvals.Invalidf("header %s must not have a query or fragment", hPlanURL)
	case strings.IndexFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }) >= 0:
		return "", approvals.Invalidf("header %s must not contain spaces, control characters or backslashes", hPlanURL)
	}
	if !hosts.ValidName(u.Hostname()) {
		return "", approvals.Invalidf("header %s has an invalid host", hPlanURL)
	}
	if u.Scheme != "https" && !hosts.IsLoopback(u.Hostname()) {
		// The job token is a bearer credential: never in clear text on a
		// network, however the host list reads.
		return "", approvals.Invalidf("header %s must be an https URL (plain http only to a loopback host)", hPlanURL)
	}
	if !hosts.List(l).Allows(u) {
		return "", approvals.Invalidf("header %s names a host that is not allowed (see azure_devops.allowed_hosts)", hPlanURL)
	}
	if !strings.HasSuffix(raw, "/") {
		raw += "/"
	}
	return raw, nil
}

// parseContext reads the optional JSON body. Unknown fields are ignored (a
// check's body may carry anything); a known field given twice, in any mix
// of cases, is refused, so that what policies match on does not depend on
// key order.
func parseContext(body []byte) (approvals.Context, error) {
	var ctx approvals.Context
	if len(bytes.TrimSpace(body)) == 0 {
		return ctx, nil
	}
	obj, err := rest.DecodeObject(body, "body")
	if err != nil {
		return ctx, err
	}
	type field struct {
		name string
		dst  *string
	}
	fields := []field{
		{"environment", &ctx.Environment},
		{"project", &ctx.Project},
		{"release", &ctx.Release},
		{"pipeline", &ctx.Pipeline},
		{"stage", &ctx.Stage},
		{"description", &ctx.Description},
		{"requestedBy", &ctx.RequestedBy},
		{"url", &ctx.URL},
	}
	seen := make([]bool, len(fields))
	for _, m := range obj {
		i := slices.IndexFunc(fields, func(f field) bool { return strings.EqualFold(m.Key, f.name) })
		if i < 0 {
			continue
		}
		name := fields[i].name
		if seen[i] {
			return ctx, approvals.Invalidf("%s is given more than once", name)
		}
		seen[i] = true
		v, err := textValue(name, m.Raw)
		if err != nil {
			return ctx, err
		}
		if name == "url" {
			if v, err = rest.CheckLink(v, maxFieldRunes); err != nil {
				return ctx, err
			}
		}
		*fields[i].dst = approvals.CapRunes(v, maxFieldRunes)
	}
	return ctx, nil
}

// textValue reads a context field (rest.TextValue). A value that is a
// $(…) variable Azure Pipelines did not expand says nothing and counts as
// absent.
func textValue(name string, raw json.RawMessage) (string, error) {
	s, _, err := rest.TextValue(name, raw)
	if err != nil || isUnexpanded(s) {
		return "", err
	}
	return s, nil
}

// isUnexpanded reports whether s is exactly one $(name) macro.
func isUnexpanded(s string) bool {
	if len(s) < 4 || !strings.HasPrefix(s, "$(") || !strings.HasSuffix(s, ")") {
		return false
	}
	return !strings.ContainsAny(s[2:len(s)-1], "$() ")
}
