package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/hosts"
)

// Source is the name approvalbot knows GitHub's tasks by.
const Source = "github"

// Keys of a task's Extra: where its rule waits in GitHub.
const (
	// ExtraCallbackURL is the run's deployment_callback_url, checked to be
	// an address of github.api_url.
	ExtraCallbackURL = "callbackUrl"
	// ExtraInstallationID is the App installation whose token reviews it.
	ExtraInstallationID = "installationId"
	// ExtraRepository is the repository's full name, owner/repo.
	ExtraRepository = "repository"
	// ExtraRunID is the workflow run's id.
	ExtraRunID = "runId"
	// ExtraEnvironment is the environment's name as GitHub spells it (the
	// review's environment_name).
	ExtraEnvironment = "environment"
	// ExtraDeliveryID is the X-GitHub-Delivery of the webhook that made
	// the task, for tracing it in the App's delivery log.
	ExtraDeliveryID = "deliveryId"
)

// Headers of GitHub's webhook deliveries.
const (
	hEvent     = "X-GitHub-Event"
	hDelivery  = "X-GitHub-Delivery"
	hSignature = "X-Hub-Signature-256"
)

const (
	// maxFieldRunes bounds every context field: they are shown in Slack
	// and matched by policies.
	maxFieldRunes = 2000
	// maxEnvironmentRunes is GitHub's own limit of an environment's name.
	maxEnvironmentRunes = 255
	// maxURLBytes bounds the callback URL and the repository's page.
	maxURLBytes = 2048
)

var (
	// fullNamePattern is a repository's owner/name as GitHub allows them.
	fullNamePattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$`)
	// loginPattern is a GitHub login, a bot's included (dependabot[bot]).
	loginPattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$`)
	// shaPattern is a commit id (SHA-1 or SHA-256).
	shaPattern = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)
	// deliveryPattern is an X-GitHub-Delivery GUID.
	deliveryPattern = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
)

// payload is the part of a deployment_protection_rule webhook the bot reads.
type payload struct {
	Action                string `json:"action"`
	Environment           string `json:"environment"`
	Event                 string `json:"event"`
	Ref                   string `json:"ref"`
	SHA                   string `json:"sha"`
	DeploymentCallbackURL string `json:"deployment_callback_url"`
	Deployment            *struct {
		Ref     string `json:"ref"`
		SHA     string `json:"sha"`
		Creator *user  `json:"creator"`
	} `json:"deployment"`
	Repository *struct {
		FullName string `json:"full_name"`
		HTMLURL  string `json:"html_url"`
	} `json:"repository"`
	Installation *struct {
		ID int64 `json:"id"`
	} `json:"installation"`
	Sender *user `json:"sender"`
}

type user struct {
	Login string `json:"login"`
}

// Parse turns a webhook delivery into a submission. The signature
// (X-Hub-Signature-256: sha256= and the hex HMAC-SHA256 of the raw body
// with the webhook secret) is checked first, in constant time, before a
// byte is parsed: a failure wraps approvals.ErrUnauthenticated. A ping,
// another event, or an action other than requested carries no task
// (approvals.ErrNoTask). The task is the run and the environment, so that a
// redelivery (same X-GitHub-Delivery) or a second request for the same
// environment of the same run is the same task. A callback URL that is not
// an address of github.api_url is refused (approvals.ErrInvalid): the
// installation token is sent nowhere else.
func (c *Client) Parse(h func(name string) string, body []byte) (approvals.Submission, error) {
	if err := c.verify(h(hSignature), body); err != nil {
		return approvals.Submission{}, err
	}
	switch event := strings.TrimSpace(h(hEvent)); event {
	case "deployment_protection_rule":
	case "ping":
		return approvals.Submission{}, fmt.Errorf("github: ping: %w", approvals.ErrNoTask)
	default:
		return approvals.Submission{}, fmt.Errorf("github: event %q is not acted on: %w", approvals.CapRunes(event, 64), approvals.ErrNoTask)
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		return approvals.Submission{}, approvals.Invalidf("github: the payload is not a JSON object of a deployment_protection_rule event")
	}
	if p.Action != "requested" {
		return approvals.Submission{}, fmt.Errorf("github: deployment_protection_rule action %q is not acted on: %w", approvals.CapRunes(p.Action, 64), approvals.ErrNoTask)
	}

	env := strings.TrimSpace(p.Environment)
	switch {
	case env == "":
		return approvals.Submission{}, approvals.Invalidf("github: environment is missing")
	case utf8.RuneCountInString(env) > maxEnvironmentRunes || !utf8.ValidString(env) || strings.IndexFunc(env, unicode.IsControl) >= 0:
		return approvals.Submission{}, approvals.Invalidf("github: environment must be at most %d printable characters", maxEnvironmentRunes)
	}
	if p.Repository == nil || !fullNamePattern.MatchString(p.Repository.FullName) {
		return approvals.Submission{}, approvals.Invalidf("github: repository.full_name is missing or not owner/name")
	}
	repo := p.Repository.FullName
	if p.Installation == nil || p.Installation.ID <= 0 {
		return approvals.Submission{}, approvals.Invalidf("github: installation.id is missing: the event must come from the GitHub App")
	}
	callback, runID, err := c.api.checkCallback(p.DeploymentCallbackURL, repo)
	if err != nil {
		return approvals.Submission{}, err
	}

	ref, sha := p.Ref, p.SHA
	var creator string
	if d := p.Deployment; d != nil {
		ref, sha = firstNonEmpty(d.Ref, ref), firstNonEmpty(d.SHA, sha)
		if d.Creator != nil {
			creator = d.Creator.Login
		}
	}
	if creator == "" && p.Sender != nil {
		creator = p.Sender.Login
	}

	ctx := approvals.Context{
		Environment: env,
		Project:     repo,
		Release:     release(ref, sha),
		URL:         runPage(p.Repository.HTMLURL, runID),
		Artifact:    commitArtifact(repo, sha),
	}
	desc := "Deployment of " + repo + " to " + env + " (GitHub Actions run " + runID + ")"
	if login := strings.TrimSpace(creator); loginPattern.MatchString(login) {
		if mapped, ok := c.MapLogin(login); ok {
			ctx.RequestedBy = mapped
		} else {
			ctx.RequestedByUnmapped = login
			desc += ". GitHub user " + login + " is not mapped to a Slack user (github.users): under a policy that forbids self-approval nobody can approve it here until they are mapped and the bot restarted"
		}
	}
	ctx.Description = approvals.CapRunes(desc, maxFieldRunes)

	extra := map[string]string{
		ExtraCallbackURL:    callback,
		ExtraInstallationID: fmt.Sprint(p.Installation.ID),
		ExtraRepository:     repo,
		ExtraRunID:          runID,
		ExtraEnvironment:    env,
	}
	if id := strings.TrimSpace(h(hDelivery)); deliveryPattern.MatchString(id) {
		extra[ExtraDeliveryID] = id
	}
	return approvals.Submission{
		Source: Source,
		// Environments' names are not case-sensitive in GitHub.
		TaskID:  runID + "-" + strings.ToLower(env),
		Context: ctx,
		Extra:   extra,
	}, nil
}

// verify checks the delivery's signature over the raw body in constant
// time. Its errors never say more than what is missing or wrong.
func (c *Client) verify(header string, body []byte) error {
	sig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok {
		return fmt.Errorf("github: %s is missing or not sha256=…: %w", hSignature, approvals.ErrUnauthenticated)
	}
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("github: %s is not a hex SHA-256: %w", hSignature, approvals.ErrUnauthenticated)
	}
	mac := hmac.New(sha256.New, c.secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return fmt.Errorf("github: %s does not match the payload (check github.webhook_secret): %w", hSignature, approvals.ErrUnauthenticated)
	}
	return nil
}

// release is what is deployed: the ref and the short commit id ("main
// (1a2b3c4)"), or the short id alone when the ref is the commit.
func release(ref, sha string) string {
	ref = approvals.CapRunes(strings.TrimSpace(strings.Map(dropControl, ref)), maxFieldRunes-10)
	sha = strings.ToLower(strings.TrimSpace(sha))
	if !shaPattern.MatchString(sha) {
		return ref
	}
	short := sha[:7]
	if ref == "" || strings.EqualFold(ref, sha) {
		return short
	}
	return ref + " (" + short + ")"
}

// runPage is the run's page: the repository's page and the run's path, or
// "" when the repository's page is not a plain http(s) address.
func runPage(htmlURL, runID string) string {
	u, err := url.Parse(htmlURL)
	if err != nil || len(htmlURL) > maxURLBytes || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.IndexFunc(htmlURL, unicode.IsSpace) >= 0 {
		return ""
	}
	return strings.TrimSuffix(htmlURL, "/") + "/actions/runs/" + runID
}

func dropControl(r rune) rune {
	if unicode.IsControl(r) {
		return -1
	}
	return r
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// apiRoot is github.api_url taken apart: the only place an installation
// token (or the App's JWT) is sent to.
type apiRoot struct {
	scheme   string
	hostPort string // lower case, the port always given
	prefix   string // "" for api.github.com, "/api/v3" for GitHub Enterprise Server
	base     string // scheme://host[:port]prefix, no trailing slash
}

// parseAPIRoot checks github.api_url: an absolute https URL (plain http
// only to a loopback host) without credentials, query or fragment.
func parseAPIRoot(raw string) (apiRoot, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return apiRoot{}, errors.New("github: api url must be an absolute https URL such as https://api.github.com")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || u.Opaque != "":
		return apiRoot{}, errors.New("github: api url must not have credentials, a query or a fragment")
	case u.Scheme == "http" && !hosts.IsLoopback(u.Hostname()):
		return apiRoot{}, errors.New("github: api url must be https (plain http only to a loopback host): tokens are sent there")
	}
	prefix := strings.TrimSuffix(u.EscapedPath(), "/")
	return apiRoot{
		scheme:   u.Scheme,
		hostPort: hostPort(u),
		prefix:   prefix,
		base:     u.Scheme + "://" + u.Host + prefix,
	}, nil
}

// hostPort is a URL's host in lower case with its port, the scheme's
// default when none is given.
func hostPort(u *url.URL) string { return strings.ToLower(hosts.HostPort(u)) }

// checkCallback accepts a deployment_callback_url only when it is the
// review address of a run of repo under the API root: same scheme, host
// and port, the root's path, then
// /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule.
// It returns the URL as it is to be called and the run's id. The errors do
// not quote the URL.
func (a apiRoot) checkCallback(raw, repo string) (callback, runID string, err error) {
	refuse := func(why string) (string, string, error) {
		return "", "", approvals.Invalidf("github: deployment_callback_url %s; the installation token is sent nowhere else than github.api_url", why)
	}
	if raw == "" {
		return refuse("is missing")
	}
	if len(raw) > maxURLBytes || strings.IndexFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }) >= 0 {
		return refuse("is too long or holds spaces, control characters or backslashes")
	}
	u, perr := url.Parse(raw)
	switch {
	case perr != nil || u.Opaque != "" || u.Host == "":
		return refuse("is not an absolute URL")
	case u.Scheme != a.scheme || hostPort(u) != a.hostPort:
		return refuse("is not on github.api_url's scheme, host and port")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return refuse("must not have credentials, a query or a fragment")
	}
	rest, ok := strings.CutPrefix(u.EscapedPath(), a.prefix+"/repos/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 6 || parts[2] != "actions" || parts[3] != "runs" || parts[5] != "deployment_protection_rule" {
		return refuse("is not a run's deployment_protection_rule address under github.api_url")
	}
	if !strings.EqualFold(parts[0]+"/"+parts[1], repo) {
		return refuse("names another repository than the event's")
	}
	runID = parts[4]
	if runID == "" || len(runID) > 20 || strings.Trim(runID, "0123456789") != "" || runID[0] == '0' {
		return refuse("has no run id")
	}
	return a.base + "/repos/" + parts[0] + "/" + parts[1] + "/actions/runs/" + runID + "/deployment_protection_rule", runID, nil
}
