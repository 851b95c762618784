package gitlab

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/rest"
)

// hToken is the header GitLab sends the webhook's secret token in.
const hToken = "X-Gitlab-Token"

// maxFieldRunes bounds a text field taken from GitLab.
const maxFieldRunes = 255

// user is a deployment's user as GitLab shows it; email only where the
// instance shares it.
type user struct {
	Username string `json:"username"`
	Email    string `json:"email"`
}

// event is a "Deployment events" webhook body.
type event struct {
	ObjectKind    string `json:"object_kind"`
	Status        string `json:"status"`
	DeploymentID  int64  `json:"deployment_id"`
	DeployableURL string `json:"deployable_url"`
	Environment   string `json:"environment"`
	Project       struct {
		ID                int64  `json:"id"`
		PathWithNamespace string `json:"path_with_namespace"`
	} `json:"project"`
	Ref      string `json:"ref"`
	ShortSHA string `json:"short_sha"`
	User     *user  `json:"user"`
}

// Parse takes a deployment event in: the token first, compared in
// constant time (a wrong or missing one wraps approvals.ErrUnauthenticated,
// before anything is parsed); a "blocked" deployment is a task; other
// events and statuses carry none (reconcile closes a task whose deployment
// went on in GitLab).
func (c *Client) Parse(h func(name string) string, body []byte) (approvals.Submission, error) {
	got := h(hToken)
	if c.webhookToken == "" || subtle.ConstantTimeCompare([]byte(got), []byte(c.webhookToken)) != 1 {
		return approvals.Submission{}, fmt.Errorf("gitlab: %s missing or wrong: %w", hToken, approvals.ErrUnauthenticated)
	}
	var e event
	if err := json.Unmarshal(body, &e); err != nil {
		return approvals.Submission{}, approvals.Invalidf("gitlab: the body is not a JSON webhook event")
	}
	if e.ObjectKind != "deployment" {
		return approvals.Submission{}, fmt.Errorf("gitlab: event %q is not acted on: %w", approvals.CapRunes(e.ObjectKind, 64), approvals.ErrNoTask)
	}
	if e.Status != "blocked" {
		return approvals.Submission{}, fmt.Errorf("gitlab: a %q deployment is not acted on here: %w", approvals.CapRunes(e.Status, 64), approvals.ErrNoTask)
	}
	return c.submission(e.Project.ID, e.Project.PathWithNamespace, e.DeploymentID, e.Environment, e.Ref, e.ShortSHA, e.User, e.DeployableURL)
}

// submission is a blocked deployment as a task.
func (c *Client) submission(projectID int64, path string, deploymentID int64, env, ref, sha string, u *user, jobURL string) (approvals.Submission, error) {
	if projectID <= 0 || deploymentID <= 0 {
		return approvals.Submission{}, approvals.Invalidf("gitlab: the deployment has no project id or deployment id")
	}
	env = text(env)
	if env == "" {
		return approvals.Submission{}, approvals.Invalidf("gitlab: the deployment has no environment")
	}
	pid, did := strconv.FormatInt(projectID, 10), strconv.FormatInt(deploymentID, 10)
	ctx := approvals.Context{Environment: env, Project: text(path), Release: release(text(ref), text(sha))}
	if link, err := rest.CheckLink(jobURL, 2048); err == nil {
		ctx.URL = link
	}
	if u != nil {
		switch email, name := strings.TrimSpace(u.Email), text(u.Username); {
		case strings.Count(email, "@") == 1 && !strings.HasPrefix(email, "@") && !strings.HasSuffix(email, "@") && len(email) <= maxFieldRunes:
			ctx.RequestedBy = email
		case name != "":
			if mapped, ok := c.MapUser(name); ok {
				ctx.RequestedBy = mapped
			} else {
				ctx.RequestedByUnmapped = name
			}
		}
	}
	return approvals.Submission{
		Source: Source, TaskID: pid + "-" + did, Context: ctx,
		Extra: map[string]string{ExtraProjectID: pid, ExtraDeploymentID: did},
	}, nil
}

// text is a field from GitLab on one line, bounded.
func text(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(strings.TrimSpace(s), "\uFFFD"))
	return approvals.CapRunes(s, maxFieldRunes)
}

// release is a ref and its short sha: "main (1a2b3c4d)".
func release(ref, sha string) string {
	if len(sha) > 8 {
		sha = sha[:8]
	}
	switch {
	case ref == "":
		return sha
	case sha == "":
		return ref
	}
	return ref + " (" + sha + ")"
}

// Poll lists the blocked deployments of gitlab.projects, page by page.
// A project it cannot read is reported (joined into the error) and
// skipped; what the others hold is returned all the same.
func (c *Client) Poll(ctx context.Context) ([]approvals.Submission, error) {
	var subs []approvals.Submission
	var errs []error
	for _, p := range c.projects {
		found, err := c.pollProject(ctx, p)
		subs = append(subs, found...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return subs, errors.Join(errs...)
}

// listed is a deployment in the API's list.
type listed struct {
	ID          int64  `json:"id"`
	Ref         string `json:"ref"`
	SHA         string `json:"sha"`
	Status      string `json:"status"`
	User        *user  `json:"user"`
	Environment struct {
		Name string `json:"name"`
	} `json:"environment"`
	Deployable *struct {
		WebURL string `json:"web_url"`
	} `json:"deployable"`
}

func (c *Client) pollProject(ctx context.Context, project string) ([]approvals.Submission, error) {
	op := "gitlab: list blocked deployments of " + approvals.CapRunes(project, 100)
	base := c.api + "/projects/" + url.PathEscape(project)
	answer, err := c.exchange.Read(ctx, op, rest.Request{Method: http.MethodGet, URL: base, Limit: maxAnswer})
	if err != nil {
		return nil, err
	}
	var proj struct {
		ID                int64  `json:"id"`
		PathWithNamespace string `json:"path_with_namespace"`
	}
	if json.Unmarshal(answer, &proj) != nil || proj.ID <= 0 {
		return nil, fmt.Errorf("%s: GitLab's answer is not a project", op)
	}
	var subs []approvals.Submission
	for page := 1; page > 0 && page <= maxPages; {
		var next string
		req := rest.Request{Method: http.MethodGet, Limit: maxAnswer,
			URL:      fmt.Sprintf("%s/projects/%d/deployments?status=blocked&per_page=%d&page=%d", c.api, proj.ID, perPage, page),
			Answered: func(h http.Header) { next = h.Get("X-Next-Page") }}
		answer, err := c.exchange.Read(ctx, op, req)
		if err != nil {
			return subs, err
		}
		var list []listed
		if err := json.Unmarshal(answer, &list); err != nil {
			return subs, fmt.Errorf("%s: GitLab's answer is not a list of deployments", op)
		}
		for _, d := range list {
			if d.Status != "blocked" {
				continue
			}
			job := ""
			if d.Deployable != nil {
				job = d.Deployable.WebURL
			}
			if sub, err := c.submission(proj.ID, proj.PathWithNamespace, d.ID, d.Environment.Name, d.Ref, d.SHA, d.User, job); err == nil {
				subs = append(subs, sub)
			}
		}
		page, _ = strconv.Atoi(strings.TrimSpace(next))
	}
	return subs, nil
}
