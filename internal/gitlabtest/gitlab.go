// Package gitlabtest is a fake GitLab REST API (v4) for the deployment
// approval flow, as strict as the real one where approvalbot relies on
// it: PRIVATE-TOKEN on every call (401 otherwise), project ids numeric or
// URL-encoded paths, JSON bodies with known fields only, 201 on an
// approval, 400 when the deployment is not blocked, the list paginated
// with GitLab's X-Page/X-Next-Page/X-Total headers. It can lose the answer
// to an approval after applying it.
package gitlabtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Root is the REST root's path on the fake.
const Root = "/api/v4"

// Deployment is one deployment the fake holds.
type Deployment struct {
	ID          int64
	ProjectID   int64
	Status      string // blocked, running, success, failed, canceled, created
	Ref, SHA    string
	Environment string
	Username    string
	Email       string
}

// Approval is one approval call GitLab took.
type Approval struct {
	ProjectID, DeploymentID int64
	Status, Comment         string
	RepresentedAs           string
}

// Call is one request the fake got.
type Call struct {
	Method, Path, Query, Token, ContentType, UserAgent, Body string
}

// Server is the fake.
type Server struct {
	*httptest.Server
	token string

	mu          sync.Mutex
	projects    map[int64]string // id → path with namespace
	deployments map[int64]*Deployment
	approvals   []Approval
	calls       []Call
	lose        int // approvals whose answer is lost after they are applied
	pageSize    int
}

// New starts a fake accepting token.
func New(token string) *Server {
	f := &Server{token: token, projects: map[int64]string{}, deployments: map[int64]*Deployment{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// URL is the REST root, as gitlab.api_url names it.
func (f *Server) URL() string { return f.Server.URL + Root }

// AddProject adds a project.
func (f *Server) AddProject(id int64, path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.projects[id] = path
}

// AddDeployment adds (or replaces) a deployment.
func (f *Server) AddDeployment(d Deployment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deployments[d.ID] = &d
}

// SetStatus changes a deployment's status, as GitLab's own UI or runner
// would.
func (f *Server) SetStatus(id int64, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deployments[id].Status = status
}

// StatusOf is a deployment's status.
func (f *Server) StatusOf(id int64) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deployments[id].Status
}

// LoseAnswers makes the next n approvals be applied and their answers
// lost (the connection is closed).
func (f *Server) LoseAnswers(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lose = n
}

// SetPageSize caps the list's pages below what the client asks.
func (f *Server) SetPageSize(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pageSize = n
}

// Approvals are the approvals taken.
func (f *Server) Approvals() []Approval {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Approval(nil), f.approvals...)
}

// Calls are the requests the fake got.
func (f *Server) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// ApprovalCalls are the approval POSTs, whatever their answer.
func (f *Server) ApprovalCalls() []Call {
	var out []Call
	for _, c := range f.Calls() {
		if c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/approval") {
			out = append(out, c)
		}
	}
	return out
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	call := Call{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Token: r.Header.Get("PRIVATE-TOKEN"),
		ContentType: r.Header.Get("Content-Type"), UserAgent: r.Header.Get("User-Agent"), Body: string(body)}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()

	if call.Token == "" || call.Token != f.token {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "401 Unauthorized"})
		return
	}
	rest, ok := strings.CutPrefix(call.Path, Root+"/projects/")
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
		return
	}
	parts := strings.Split(rest, "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	pid, ok := f.project(parts[0])
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Project Not Found"})
		return
	}
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"id": pid, "path_with_namespace": f.projects[pid]})
	case len(parts) == 2 && parts[1] == "deployments" && r.Method == http.MethodGet:
		f.list(w, r, pid)
	case len(parts) == 3 && parts[1] == "deployments" && r.Method == http.MethodGet:
		d, ok := f.deployment(pid, parts[2])
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Not found"})
			return
		}
		writeJSON(w, http.StatusOK, deploymentJSON(d, f.Server.URL, f.projects[pid]))
	case len(parts) == 4 && parts[1] == "deployments" && parts[3] == "approval" && r.Method == http.MethodPost:
		f.approve(w, pid, parts[2], call)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
	}
}

// project reads a numeric id or a URL-encoded path ("group%2Fproject").
func (f *Server) project(seg string) (int64, bool) {
	if id, err := strconv.ParseInt(seg, 10, 64); err == nil {
		_, ok := f.projects[id]
		return id, ok
	}
	if strings.Contains(seg, "/") { // GitLab wants the path encoded
		return 0, false
	}
	path, err := url.PathUnescape(seg)
	if err != nil {
		return 0, false
	}
	for id, p := range f.projects {
		if strings.EqualFold(p, path) {
			return id, true
		}
	}
	return 0, false
}

func (f *Server) deployment(pid int64, seg string) (*Deployment, bool) {
	id, err := strconv.ParseInt(seg, 10, 64)
	if err != nil {
		return nil, false
	}
	d, ok := f.deployments[id]
	return d, ok && d.ProjectID == pid
}

func (f *Server) list(w http.ResponseWriter, r *http.Request, pid int64) {
	q := r.URL.Query()
	page, perPage := atoiOr(q.Get("page"), 1), atoiOr(q.Get("per_page"), 20)
	if perPage > 100 {
		perPage = 100
	}
	if f.pageSize > 0 && perPage > f.pageSize {
		perPage = f.pageSize
	}
	var all []*Deployment
	for _, d := range f.deployments {
		if d.ProjectID == pid && (q.Get("status") == "" || d.Status == q.Get("status")) {
			all = append(all, d)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	pages := (len(all) + perPage - 1) / perPage
	out := []any{}
	for i := (page - 1) * perPage; i >= 0 && i < len(all) && i < page*perPage; i++ {
		out = append(out, deploymentJSON(all[i], f.Server.URL, f.projects[pid]))
	}
	w.Header().Set("X-Page", strconv.Itoa(page))
	w.Header().Set("X-Per-Page", strconv.Itoa(perPage))
	w.Header().Set("X-Total", strconv.Itoa(len(all)))
	w.Header().Set("X-Total-Pages", strconv.Itoa(pages))
	next := ""
	if page < pages {
		next = strconv.Itoa(page + 1)
	}
	w.Header().Set("X-Next-Page", next)
	writeJSON(w, http.StatusOK, out)
}

func (f *Server) approve(w http.ResponseWriter, pid int64, seg string, call Call) {
	d, ok := f.deployment(pid, seg)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Not found"})
		return
	}
	if !strings.HasPrefix(call.ContentType, "application/json") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "status is missing"})
		return
	}
	var in struct {
		Status        string `json:"status"`
		Comment       string `json:"comment"`
		RepresentedAs string `json:"represented_as"`
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(call.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || (in.Status != "approved" && in.Status != "rejected") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "status does not have a valid value"})
		return
	}
	if d.Status != "blocked" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Deployment is not blocked"})
		return
	}
	f.approvals = append(f.approvals, Approval{ProjectID: pid, DeploymentID: d.ID, Status: in.Status, Comment: in.Comment, RepresentedAs: in.RepresentedAs})
	if in.Status == "approved" {
		d.Status = "running"
	} else {
		d.Status = "canceled"
	}
	if f.lose > 0 {
		f.lose--
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			_ = conn.Close()
		}
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"status": in.Status, "comment": in.Comment, "user": map[string]any{"username": "approvalbot"}})
}

func deploymentJSON(d *Deployment, base, path string) map[string]any {
	user := map[string]any{"id": 1, "username": d.Username, "name": d.Username}
	if d.Email != "" {
		user["email"] = d.Email
	}
	return map[string]any{
		"id": d.ID, "iid": d.ID, "ref": d.Ref, "sha": d.SHA, "status": d.Status, "user": user,
		"environment": map[string]any{"id": 1, "name": d.Environment},
		"deployable":  map[string]any{"id": d.ID * 10, "web_url": fmt.Sprintf("%s/%s/-/jobs/%d", base, path, d.ID*10)},
	}
}

// Event is the "Deployment events" webhook body GitLab sends for d.
func (f *Server) Event(d Deployment) []byte {
	f.mu.Lock()
	path := f.projects[d.ProjectID]
	f.mu.Unlock()
	b, _ := json.Marshal(map[string]any{
		"object_kind": "deployment", "status": d.Status, "deployment_id": d.ID, "deployable_id": d.ID * 10,
		"deployable_url": fmt.Sprintf("%s/%s/-/jobs/%d", f.Server.URL, path, d.ID*10),
		"environment":    d.Environment, "project": map[string]any{"id": d.ProjectID, "path_with_namespace": path},
		"short_sha": shortSHA(d.SHA), "ref": d.Ref,
		"user": map[string]any{"id": 1, "username": d.Username, "email": d.Email},
	})
	return b
}

func shortSHA(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return n
	}
	return def
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
