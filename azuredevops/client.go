package azuredevops

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/rest"
)

// Defaults of Config.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultRetries    = 3
	DefaultMinBackoff = 200 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// apiVersion is the distributedtask API version of Microsoft's own
// ServerTaskHelper; events, logs and records all accept it.
const apiVersion = "2.0-preview.1"

const (
	// maxLogAnswer bounds the answer to creating a log (an id and a path).
	maxLogAnswer = 1 << 20
	// maxRecordsAnswer bounds the timeline records of a plan: a record is
	// about a kilobyte, and a large pipeline has a few thousand.
	maxRecordsAnswer = 16 << 20
	// maxLineRunes bounds a status line in the check's log.
	maxLineRunes = 4000
)

// Config configures a Client. Zero values take the defaults.
type Config struct {
	// Sealer opens the job tokens the intake sealed (required).
	Sealer *Sealer
	// Timeout bounds each request, answer body included (default 10s).
	Timeout time.Duration
	// Retries is how many times a read (the check's timeline record) is
	// retried after a 5xx, a 429, a timeout or a connection error (default
	// 3; negative: never). Writes (the decision, the status log) are never
	// retried here: each is sent once per outbox attempt, and the outbox
	// reads the check's status before it decides again.
	Retries int
	// MinBackoff and MaxBackoff bound the wait between a read's tries
	// (defaults 200ms and 5s), drawn by approvals.Backoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// HTTPClient replaces the client New builds (for tests). Timeout still
	// bounds every request through its context.
	HTTPClient *http.Client
	// AllowedHosts are the hosts job tokens may be sent to (globs; default
	// DefaultAllowedHosts). Checked again at delivery, so that narrowing
	// the list also holds for tasks taken in before.
	AllowedHosts []string
	// Sleep waits between tries (for tests); it must return early with
	// ctx.Err() when ctx ends. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for Retry-After dates (default time.Now).
	Now func() time.Time
}

// Client completes Azure Pipelines checks, reads their state and writes
// their status lines. It is safe for concurrent use. Tool makes it the
// approvals.Tool of Azure DevOps.
type Client struct {
	sealer *Sealer
	hosts  hostList
	api    *rest.Exchange
}

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.Sealer == nil {
		return nil, errors.New("azure devops: an encryption key is required (azure_devops.encryption_key)")
	}
	if cfg.Timeout < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 {
		return nil, errors.New("azure devops: timeout and backoffs must not be negative")
	}
	if err := ValidateAllowedHosts(cfg.AllowedHosts); err != nil {
		return nil, err
	}
	if cfg.AllowedHosts != nil && len(newHostList(cfg.AllowedHosts)) == 0 {
		return nil, errors.New("azure devops: allowed hosts is an empty list; leave it unset for Azure DevOps Services")
	}
	minBackoff, maxBackoff := cmp.Or(cfg.MinBackoff, DefaultMinBackoff), cmp.Or(cfg.MaxBackoff, DefaultMaxBackoff)
	if maxBackoff < minBackoff {
		return nil, errors.New("azure devops: max backoff must not be less than min backoff")
	}
	c := &Client{sealer: cfg.Sealer, hosts: newHostList(cfg.AllowedHosts)}
	c.api = rest.NewExchange(rest.Exchange{
		Service: "Azure DevOps",
		Timeout: cmp.Or(cfg.Timeout, DefaultTimeout),
		// Its refusal of redirects also keeps the job token from going
		// anywhere but the allowed host.
		HTTP:    cfg.HTTPClient,
		Header:  http.Header{"Accept": {"application/json"}},
		Message: message,
		Explain: explain,
		// 203 is Azure DevOps' sign-in page: the token was not accepted.
		Success: func(code int) bool { return code >= 200 && code < 300 && code != http.StatusNonAuthoritativeInfo },
		Retrier: rest.Retrier{Retries: rest.RetryCount(cfg.Retries, DefaultRetries), MinBackoff: minBackoff, MaxBackoff: maxBackoff, Sleep: cfg.Sleep},
		Now:     cfg.Now,
	})
	return c, nil
}

// String says what the client is without its key.
func (c *Client) String() string { return "azuredevops.Client{" + strings.Join(c.hosts, ", ") + "}" }

// check is where a task's check lives in Azure DevOps, and its job token.
type check struct {
	planURL, projectID, hubName, planID, jobID, timelineID, taskInstanceID string
	token                                                                  string
}

// url is the address of a plan's resource (events, logs, …); every part
// was checked to be URL-safe when the check was read.
func (k *check) url(resource string) string {
	return k.planURL + k.projectID + "/_apis/distributedtask/hubs/" + k.hubName +
		"/plans/" + k.planID + "/" + resource + "?api-version=" + apiVersion
}

// check reads the task's routing fields and opens its job token. Whatever
// is missing or wrong cannot mend by retrying: the errors are permanent.
func (c *Client) check(t *approvals.Task, op string) (*check, error) {
	fail := func(err error) (*check, error) {
		return nil, approvals.Permanent(fmt.Errorf("azure devops: %s: %w", op, err))
	}
	if t == nil || t.TaskID == "" {
		return fail(approvals.Invalidf("task has no Azure DevOps task instance id"))
	}
	k := &check{taskInstanceID: t.TaskID, timelineID: t.Extra[ExtraTimelineID]}
	for _, f := range []struct {
		key, header string
		dst         *string
	}{
		{ExtraProjectID, hProjectID, &k.projectID},
		{ExtraHubName, hHubName, &k.hubName},
		{ExtraPlanID, hPlanID, &k.planID},
		{ExtraJobID, hJobID, &k.jobID},
	} {
		v := t.Extra[f.key]
		if v == "" {
			return fail(approvals.Invalidf("task has no %s (it did not come through the Azure DevOps intake)", f.key))
		}
		if err := checkID(f.header, v); err != nil {
			return fail(err)
		}
		*f.dst = v
	}
	if err := checkID(hTaskInstanceID, k.taskInstanceID); err != nil {
		return fail(err)
	}
	if k.timelineID != "" {
		if err := checkID(hTimelineID, k.timelineID); err != nil {
			return fail(err)
		}
	}
	planURL := t.Extra[ExtraPlanURL]
	if planURL == "" {
		return fail(approvals.Invalidf("task has no %s (it did not come through the Azure DevOps intake)", ExtraPlanURL))
	}
	planURL, err := c.hosts.checkPlanURL(planURL)
	if err != nil {
		return fail(err)
	}
	k.planURL = planURL
	if len(t.Secret) == 0 {
		return fail(errors.New("job token no longer available"))
	}
	token, err := c.sealer.Open(t.Secret, sealAAD(t.TaskID))
	if err != nil {
		return fail(errors.New("job token cannot be opened (was azure_devops.encryption_key changed?)"))
	}
	k.token = string(token)
	return k, nil
}

// Decide completes the check: "succeeded" lets the stage run, "failed"
// stops it. The TaskCompleted event is sent once and never repeated here:
// after a timeout or a dropped connection it may have been taken, and only
// a status read (the outbox's, before its next attempt) can tell. A 2xx is
// success. A 4xx other than 408 and 429 is final and comes back as an
// approvals.PermanentError; 5xx, 408, 429, timeouts and connection errors
// come back as a plain error for the outbox to retry, as an
// approvals.RetryAfterError when Azure DevOps said when.
//
// When Announce made a status log, the decision (notes) is written there
// first, in one try on a best-effort basis: it never fails a decision that
// went through, and an attempt that follows one refused writes it again.
func (c *Client) Decide(ctx context.Context, t *approvals.Task, action approvals.Action, notes string, _ bool) error {
	const op = "complete check"
	var result string
	switch action {
	case approvals.ActionApprove:
		result = "succeeded"
	case approvals.ActionReject:
		result = "failed"
	default:
		return approvals.Permanent(fmt.Errorf("azure devops: %s: unknown action %q", op, action))
	}
	k, err := c.check(t, op)
	if err != nil {
		return err
	}

	var lineErr error
	if logID := t.Extra[ExtraLogID]; logID != "" && t.Extra[ExtraLogPending] == "" && notes != "" {
		if !isLogID(logID) {
			lineErr = errors.New("the task's log id is not a number")
		} else if _, f := c.api.Try(ctx, planRequest(k, http.MethodPost, k.url("logs/"+logID), "application/octet-stream", logLine(notes), 0)); f != nil {
			lineErr = f.Err
		}
	}

	body, err := json.Marshal(struct {
		Name   string `json:"name"`
		TaskID string `json:"taskId"`
		JobID  string `json:"jobId"`
		Result string `json:"result"`
	}{"TaskCompleted", k.taskInstanceID, k.jobID, result})
	if err != nil {
		return approvals.Permanent(fmt.Errorf("azure devops: %s: encode event: %w", op, err))
	}
	_, err = c.write(ctx, k, op, http.MethodPost, k.url("events"), "application/json", body, 0)
	if err != nil && lineErr != nil {
		return &annotated{err: err, note: "; the status line was not written either: " + lineErr.Error()}
	}
	return err
}

// Steps of the status log that Announce has still to take, kept in
// Extra[ExtraLogPending] next to the log's id.
const (
	logPendingWrite  = "write"  // write the waiting line, then attach
	logPendingAttach = "attach" // attach the log to the check's record
)

// Announce tells the pipeline's user where the approval waits: it creates a
// log for the check, writes "Waiting for approval in Slack …" to it and
// attaches it to the check's timeline record, each a write made once per
// call. What it returns goes to the task's Extra: the log's id
// (ExtraLogID), so that Decide can write the decision there, and what is
// left to do (ExtraLogPending, empty once done). It returns them with its
// error too, once the log exists, so that the outbox's next try goes on
// from where this one stopped rather than create a second log. Without a
// timeline id, a job token or a pending task there is nothing to announce.
func (c *Client) Announce(ctx context.Context, t *approvals.Task, waiting string) (map[string]string, error) {
	if t == nil || t.Status != approvals.StatusPending || len(t.Secret) == 0 || t.Extra[ExtraTimelineID] == "" {
		return nil, nil
	}
	logID, pending := t.Extra[ExtraLogID], t.Extra[ExtraLogPending]
	if logID != "" && pending == "" {
		return nil, nil // announced already
	}
	k, err := c.check(t, "status log")
	if err != nil {
		return nil, err
	}
	if logID == "" {
		// The path is logs\{id}, a backslash as Azure DevOps' own tasks use.
		body := []byte(`{"path":"logs\\` + k.taskInstanceID + `"}`)
		answer, err := c.write(ctx, k, "create status log", http.MethodPost, k.url("logs"), "application/json", body, maxLogAnswer)
		if err != nil {
			return nil, err
		}
		if logID, err = parseLogID(answer); err != nil {
			// A 2xx that is not a log is usually a proxy page: worth
			// another try later, not final.
			return nil, fmt.Errorf("azure devops: create status log: %w", err)
		}
		pending = logPendingWrite
	} else if !isLogID(logID) {
		return nil, approvals.Permanent(errors.New("azure devops: status log: the task's log id is not a number"))
	}
	progress := func(left string) map[string]string {
		return map[string]string{ExtraLogID: logID, ExtraLogPending: left}
	}
	if pending != logPendingAttach {
		if _, err := c.write(ctx, k, "write status log", http.MethodPost, k.url("logs/"+logID),
			"application/octet-stream", logLine(waiting), 0); err != nil {
			return progress(logPendingWrite), err
		}
	}
	attach := []byte(`{"value":[{"id":"` + k.taskInstanceID + `","log":{"id":` + logID + `}}],"count":1}`)
	if _, err := c.write(ctx, k, "attach status log", http.MethodPatch, k.url("timelines/"+k.timelineID+"/records"),
		"application/json", attach, 0); err != nil {
		return progress(logPendingAttach), err
	}
	return progress(""), nil
}

// Status reads the check's state in Azure DevOps from its timeline record
// (TaskHttpClient.GetRecordsAsync): completed and succeeded is approved,
// completed and failed rejected, completed otherwise (cancelled, skipped,
// abandoned: the check timed out or the run was stopped) expired; anything
// else, and a record that is not there (yet), is pending, so that nothing
// unknown decides a task in the bot. A check whose request named no
// timeline cannot be read, and counts as pending. Being a read, it is
// retried with backoff; the same job token and host rules as Decide hold.
func (c *Client) Status(ctx context.Context, t *approvals.Task) (approvals.Status, error) {
	const op = "read check status"
	k, err := c.check(t, op)
	if err != nil {
		return "", err
	}
	if k.timelineID == "" {
		return approvals.StatusPending, nil
	}
	answer, err := c.read(ctx, k, op, k.url("timelines/"+k.timelineID+"/records"), maxRecordsAnswer)
	if err != nil {
		return "", err
	}
	var records struct {
		Value []struct {
			ID     string          `json:"id"`
			State  json.RawMessage `json:"state"`
			Result json.RawMessage `json:"result"`
		} `json:"value"`
	}
	if err := json.Unmarshal(answer, &records); err != nil {
		// A proxy or sign-in page: worth another try later, not final.
		return "", fmt.Errorf("azure devops: %s: Azure DevOps' answer is not a list of timeline records", op)
	}
	for _, r := range records.Value {
		if strings.EqualFold(r.ID, k.taskInstanceID) {
			return recordStatus(enumName(r.State), enumName(r.Result)), nil
		}
	}
	return approvals.StatusPending, nil
}

// recordStatus maps a timeline record's state and result to a status.
func recordStatus(state, result string) approvals.Status {
	if !strings.EqualFold(state, "completed") {
		return approvals.StatusPending
	}
	switch strings.ToLower(result) {
	case "succeeded":
		return approvals.StatusApproved
	case "failed":
		return approvals.StatusRejected
	}
	return approvals.StatusExpired
}

// enumName reads a record's state or result, a name such as "completed";
// null, or anything else, is unknown ("").
func enumName(raw json.RawMessage) string {
	var name string
	if json.Unmarshal(raw, &name) != nil {
		return ""
	}
	return name
}

// logLine is text as one line of the check's log: control characters
// (a reason typed on several lines) become spaces, and it is bounded.
func logLine(text string) []byte {
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(text, "\uFFFD"))
	if capped := approvals.CapRunes(text, maxLineRunes-1); capped != text {
		text = capped + "…"
	}
	return []byte(text + "\n")
}

// parseLogID reads the id of a created log: a positive whole number (JSON
// number or string), as it is used in URL paths.
func parseLogID(answer []byte) (string, error) {
	var log struct {
		ID json.Number `json:"id"`
	}
	if err := json.Unmarshal(answer, &log); err != nil || !isLogID(string(log.ID)) {
		return "", errors.New("the answer of Azure DevOps is not a log with a numeric id")
	}
	return string(log.ID), nil
}

// isLogID reports whether s is a log id as it is put in URL paths: a
// whole number of decimal digits that fits Azure DevOps' 64-bit ids.
func isLogID(s string) bool {
	_, err := strconv.ParseUint(s, 10, 63)
	return err == nil
}

// annotated adds a note to an error's text and keeps what it is
// (permanent, retry-after) for errors.As.
type annotated struct {
	err  error
	note string
}

func (e *annotated) Error() string { return e.err.Error() + e.note }
func (e *annotated) Unwrap() error { return e.err }

// StatusError is Azure DevOps' answer other than a usable 2xx (rest's one
// StatusError). errors.Is(err, approvals.ErrNotFound) holds for a 404.
type StatusError = rest.StatusError

// explain says in plain words what the status usually means for a check.
func explain(_ *http.Response, e *rest.StatusError, _ *rest.Failure) {
	switch code := e.StatusCode; {
	case code == http.StatusUnauthorized:
		e.Hint = "the job token may have expired: it is valid 48 hours"
	case code == http.StatusNonAuthoritativeInfo:
		e.Hint = "a sign-in page: the job token was not accepted"
		e.Excerpt = "" // a sign-in page says nothing more
	case code == http.StatusForbidden:
		e.Hint = "the job token may not change this run"
	case code == http.StatusNotFound:
		e.Hint = "the run is gone, or the check timed out or was cancelled"
	case code >= 300 && code < 400:
		e.Hint = "a redirect; PlanUrl must be the collection URI"
		if e.Location != "" {
			e.Hint = "a redirect to " + e.Location + "; PlanUrl must be the collection URI"
		}
	}
}

// message is the "message" of Azure DevOps' JSON error, if any.
func message(raw []byte) string {
	var msg struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &msg) == nil {
		return msg.Message
	}
	return ""
}

// planRequest is a request to the check's plan, with its job token.
func planRequest(k *check, method, target, contentType string, body []byte, limit int64) rest.Request {
	return rest.Request{
		Method: method, URL: target, ContentType: contentType, Body: body, Limit: limit,
		Header: http.Header{"Authorization": {"Bearer " + k.token}},
		// Go's errors name the URL, never the request's headers, so the
		// token is not in them; it is removed all the same, should a
		// proxy echo it somewhere it shows.
		Redact: func(s string) string { return redact(s, k.token) },
	}
}

// read makes a GET, retrying what may mend, and returns the body of the 2xx
// answer (read up to limit bytes). Errors are wrapped with "azure devops:
// op".
func (c *Client) read(ctx context.Context, k *check, op, target string, limit int64) ([]byte, error) {
	return c.api.Read(ctx, "azure devops: "+op, planRequest(k, http.MethodGet, target, "", nil, limit))
}

// write makes a request that changes something, once, and returns the body
// of the 2xx answer (read up to limit bytes; 0 discards it). Errors are
// wrapped with "azure devops: op".
func (c *Client) write(ctx context.Context, k *check, op, method, target, contentType string, body []byte, limit int64) ([]byte, error) {
	return c.api.Write(ctx, "azure devops: "+op, planRequest(k, method, target, contentType, body, limit))
}

// redact removes the job token, as it is and as a URL would carry it.
func redact(s, token string) string { return rest.Redact(s, tokenForms(token)...) }

// tokenForms is the job token as it is and as a URL would carry it.
func tokenForms(token string) []string {
	return []string{token, url.QueryEscape(token), url.PathEscape(token)}
}
