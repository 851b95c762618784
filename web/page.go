package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

//go:embed page.html page.css
var files embed.FS

// pages is the page's template and its style, with the style's hash for
// the Content-Security-Policy: the page runs no script and loads nothing.
type pages struct {
	tmpl *template.Template
	css  template.CSS
	csp  string
}

func newPages() *pages {
	css, err := files.ReadFile("page.css")
	if err != nil {
		panic("web: " + err.Error()) // embedded
	}
	sum := sha256.Sum256(css)
	funcs := template.FuncMap{"when": func(t time.Time) string { return t.UTC().Format("Mon 2 Jan 2006 15:04 MST") }}
	return &pages{
		tmpl: template.Must(template.New("page.html").Funcs(funcs).ParseFS(files, "page.html")),
		css:  template.CSS(css),
		csp: "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; img-src 'self' data:; " +
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	}
}

// pageView is what one page shows.
type pageView struct {
	Title string
	// Notice is the outcome or the refusal; Refused styles it as one.
	Notice  string
	Refused bool
	// Retry is a link to open the page again (to sign in again).
	Retry string

	Task   *approvals.Task
	Tool   string
	Policy *policyView
	// Receipt is the decision's receipt's short hash, once signed.
	Receipt string
	Form    *formView
	// Reason is what the person typed, given back after a refusal.
	Reason string
	Who    *session

	CSS template.CSS
}

// policyView is what the page says about the task's policy.
type policyView struct {
	Name                string
	RequireRejectReason bool
	RequireSSO          bool
	Closed              string // why approving is closed now
	Requirements        []approvals.Progress
}

// formView is the deciding form.
type formView struct {
	Action, Token, CSRF string
	// Approve is false when the person's approval is counted already.
	Approve bool
	// Confirm asks for the environment typed out (confirm: type_environment).
	Confirm bool
	// BreakGlass offers to approve by breaking glass, with a reason.
	BreakGlass bool
}

func title(t *approvals.Task, tool string) string {
	if t.Description != "" {
		return t.Description
	}
	return tool + " task " + t.TaskID
}

// view is the page of a task for a signed-in person; a pending task with
// a token gets the deciding form.
func (h *Handler) view(t *approvals.Task, sess *session, token string) pageView {
	tool := h.cfg.Tools.DisplayName(t.Source)
	v := pageView{Title: title(t, tool), Task: t, Tool: tool, Who: sess}
	if t.Seal != nil {
		v.Receipt = t.Seal.ShortHash()
	}
	p := approvals.FindPolicy(h.cfg.Policies(), t.Policy)
	if p != nil {
		v.Policy = &policyView{Name: p.Name, RequireRejectReason: p.RequireRejectReason, RequireSSO: p.RequireSSO,
			Requirements: approvals.RequirementProgress(t, p)}
		if open, why := approvals.ApprovingOpen(p, h.cfg.Clock()); !open {
			v.Policy.Closed = why
		}
	}
	if token != "" && t.Status == approvals.StatusPending && sess != nil {
		v.Form = &formView{Action: pagePath(t.ID), Token: token, CSRF: h.sign.csrfToken(sess, t.ID),
			Approve: !t.HasVoted(sess.User, sess.email())}
		if p != nil {
			v.Form.Confirm = p.Confirm == approvals.ConfirmTypeEnvironment
			v.Form.BreakGlass = !p.BreakGlass.Empty() && v.Policy.Closed != ""
		}
	}
	return v
}

// headers are every answer's: nothing cached (the page is one person's),
// nothing framed, no Referer (the URL carries the token), the policy.
func (h *Handler) headers(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", h.page.csp)
}

func (h *Handler) render(w http.ResponseWriter, status int, v pageView) {
	v.CSS = h.page.css
	var buf bytes.Buffer
	if err := h.page.tmpl.Execute(&buf, v); err != nil {
		// A template bug: answer plainly rather than half a page.
		status, buf = http.StatusInternalServerError, *bytes.NewBufferString("approvalbot could not show this page; nothing was decided.\n")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	h.headers(w)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
