// Package slacktest is a stand-in for Slack that the tests and the load
// command run on loopback: the Web API, Socket Mode, and signed clicks. It
// is a real HTTP server that checks requests as Slack does.
package slacktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Call is one request the fake Slack Web API received.
type Call struct {
	Method string     // "chat.postMessage"
	Form   url.Values // form-encoded methods
	JSON   map[string]any
	Auth   string // the Authorization header
	At     time.Time
	// Refused is the error code the fake answered with when it refused
	// the call's content (invalid_blocks, msg_blocks_too_long, …), or
	// because RefuseBlocks told it to; "" when it did not.
	Refused string
	// rawJSON is the JSON body's members as sent, for measuring.
	rawJSON map[string]json.RawMessage
}

// Token is the credential the call carried (a form field for chat.* and
// users.*, a Bearer header for JSON methods).
func (c Call) Token() string {
	if bearer, ok := strings.CutPrefix(c.Auth, "Bearer "); ok {
		return bearer
	}
	return c.Form.Get("token")
}

// Blocks decodes the call's blocks (form field or JSON).
func (c Call) Blocks() []map[string]any {
	var blocks []map[string]any
	if raw := c.Form.Get("blocks"); raw != "" {
		_ = json.Unmarshal([]byte(raw), &blocks)
		return blocks
	}
	if b, ok := c.JSON["blocks"].([]any); ok {
		for _, x := range b {
			if m, ok := x.(map[string]any); ok {
				blocks = append(blocks, m)
			}
		}
	}
	return blocks
}

// Button is a button of a message or a view; BlockID is its actions
// block's, URL a link button's address.
type Button struct {
	ActionID, Style, Value string
	Confirm                bool
	BlockID, URL           string
}

// Buttons returns the buttons of the call's actions blocks.
func (c Call) Buttons() []Button { return buttonsOf(c.Blocks()) }

// Text is every text of the call's blocks and its fallback text, joined.
func (c Call) Text() string {
	raw, _ := json.Marshal(c.Blocks())
	return c.Form.Get("text") + " " + string(raw)
}

// Answer overrides the fake's answer to a call.
type Answer struct {
	Status int
	Header map[string]string
	Body   string
	// Stall answers nothing until the client gives up (or the fake is
	// closed): a Slack that hangs.
	Stall bool
}

// Server is a Slack Web API on a real HTTP server: it records every call and
// answers like Slack, unless Answer says otherwise. chat.postMessage answers
// the ts 1700000000.000001, 1700000000.000002, … in the order of the posts
// it accepts. Like Slack, it refuses messages and views beyond Block Kit's
// limits (see CheckMessage and CheckView): msg_blocks_too_long for blocks
// of MaxBlocksJSON characters of JSON or more, invalid_blocks for a block
// over its limits, invalid_arguments for such a view; RefuseBlocks makes it
// refuse even valid ones.
type Server struct {
	Server *httptest.Server

	// Groups maps user-group ids to members; Emails maps emails to user ids.
	Groups map[string][]string
	Emails map[string]string
	// Channels maps channel names as a poster sends them ("#deploys") to
	// the ids chat.postMessage answers with, as Slack answers with the
	// channel's id even when given a name. Other channels are echoed.
	Channels map[string]string

	mu     sync.Mutex
	calls  []Call
	answer func(call Call) *Answer
	// refuseCode and refuseTimes are RefuseBlocks' switch.
	refuseCode  string
	refuseTimes int
	ts          atomic.Int64
	// Quiet stops recording calls (for load runs).
	Quiet bool

	appToken string
	socket   *socketSide

	closing   chan struct{} // closed by Close: stalled answers end
	closeOnce sync.Once

	limits rateLimiter // LimitRates' limits (ratelimit.go)
}

// New starts a fake Slack; Close it when done.
func New() *Server {
	f := &Server{Groups: map[string][]string{}, Emails: map[string]string{}, Channels: map[string]string{}, closing: make(chan struct{})}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// APIURL is the URL to configure as slack.api_url.
func (f *Server) APIURL() string { return f.Server.URL + "/" }

// Close stops the server; it may be called more than once.
func (f *Server) Close() {
	f.closeOnce.Do(func() { close(f.closing) })
	f.Server.Close()
}

// SetAnswer installs an override; nil answers as Slack would.
func (f *Server) SetAnswer(fn func(call Call) *Answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = fn
}

// RefuseBlocks makes the fake refuse the next times calls that carry blocks
// (chat.postMessage, chat.update, chat.postEphemeral with blocks, views.open,
// views.publish)
// with {"ok":false,"error":code}, whatever their blocks are: a Slack that
// refuses what its documentation allows. A negative times refuses every one
// until RefuseBlocks is called again; 0 turns it off.
func (f *Server) RefuseBlocks(code string, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refuseCode, f.refuseTimes = code, times
}

// Calls returns every call so far.
func (f *Server) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// CallsTo returns the calls of one method.
func (f *Server) CallsTo(method string) []Call {
	var out []Call
	for _, c := range f.Calls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	if f.serveSocket(w, r) {
		return
	}
	call := Call{Method: strings.TrimPrefix(r.URL.Path, "/"), Auth: r.Header.Get("Authorization"), At: time.Now()}
	body, _ := io.ReadAll(r.Body)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(body, &call.JSON)
		_ = json.Unmarshal(body, &call.rawJSON)
	} else {
		call.Form, _ = url.ParseQuery(string(body))
		for k, v := range r.URL.Query() {
			call.Form[k] = v
		}
	}
	f.mu.Lock()
	recorded := -1
	if !f.Quiet {
		recorded = len(f.calls)
		f.calls = append(f.calls, call)
	}
	answer := f.answer
	f.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	if f.answerRateLimited(w, call, recorded) { // before anything: Slack carries out nothing of it
		return
	}
	var override *Answer
	if answer != nil {
		override = answer(call)
	}
	if override == nil {
		// Content is checked only where the fake answers as Slack would.
		f.mu.Lock()
		refused := f.refusalOf(call)
		if refused != nil && recorded >= 0 {
			f.calls[recorded].Refused = refused.Code
		}
		f.mu.Unlock()
		if refused != nil {
			reply := map[string]any{"ok": false, "error": refused.Code}
			if refused.Detail != "" {
				reply["response_metadata"] = map[string]any{"messages": []string{refused.Detail}}
			}
			_ = json.NewEncoder(w).Encode(reply)
			return
		}
	}
	if a := override; a != nil {
		if a.Stall {
			select {
			case <-r.Context().Done():
			case <-f.closing:
			}
			return
		}
		for k, v := range a.Header {
			w.Header().Set(k, v)
		}
		status := a.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, a.Body)
		return
	}
	var reply any
	switch call.Method {
	case "chat.postMessage":
		ts := fmt.Sprintf("1700000000.%06d", f.ts.Add(1))
		channel := call.Form.Get("channel")
		if id, ok := f.Channels[channel]; ok {
			channel = id
		}
		reply = map[string]any{"ok": true, "channel": channel, "ts": ts}
	case "chat.update":
		reply = map[string]any{"ok": true, "channel": call.Form.Get("channel"), "ts": call.Form.Get("ts")}
	case "chat.postEphemeral":
		reply = map[string]any{"ok": true, "message_ts": "1700000000.999999"}
	case "views.open":
		reply = map[string]any{"ok": true, "view": map[string]any{"id": "V1"}}
	case "views.publish", "auth.test":
		reply = surfaceReply(call)
	case "usergroups.users.list":
		reply = map[string]any{"ok": true, "users": f.Groups[call.Form.Get("usergroup")]}
	case "users.info":
		// The profile's email is the one Emails maps to the user, if any.
		user := map[string]any{"id": call.Form.Get("user"), "profile": map[string]any{}}
		for email, id := range f.Emails {
			if id == call.Form.Get("user") {
				user["profile"] = map[string]any{"email": email}
			}
		}
		reply = map[string]any{"ok": true, "user": user}
	case "users.lookupByEmail":
		if id, ok := f.Emails[call.Form.Get("email")]; ok {
			reply = map[string]any{"ok": true, "user": map[string]any{"id": id}}
		} else {
			reply = map[string]any{"ok": false, "error": "users_not_found"}
		}
	default:
		w.WriteHeader(http.StatusNotFound)
		reply = map[string]any{"ok": false, "error": "unknown_method"}
	}
	_ = json.NewEncoder(w).Encode(reply)
}

// refusalOf is how Slack would refuse the call's content, if it would:
// Block Kit's limits, and RefuseBlocks' switch. f.mu is held.
func (f *Server) refusalOf(call Call) *Refusal {
	var blocks json.RawMessage
	text, hasText := "", false
	switch call.Method {
	case "chat.postMessage", "chat.update", "chat.postEphemeral":
		if call.rawJSON != nil {
			blocks = call.rawJSON["blocks"]
			hasText = json.Unmarshal(call.rawJSON["text"], &text) == nil
		} else {
			if call.Form.Has("blocks") {
				blocks = json.RawMessage(call.Form.Get("blocks"))
			}
			text, hasText = call.Form.Get("text"), call.Form.Has("text")
		}
	case "views.open", "views.publish":
		blocks = json.RawMessage("[]") // a view always carries blocks
	default:
		return nil
	}
	if f.refuseTimes != 0 && len(blocks) > 0 {
		if f.refuseTimes > 0 {
			f.refuseTimes--
		}
		return &Refusal{Code: f.refuseCode}
	}
	if call.Method == "views.open" {
		return checkView(call.JSON["view"])
	}
	if call.Method == "views.publish" {
		return checkHomeView(call.JSON["view"])
	}
	return checkMessage(text, hasText, blocks, true)
}

// Click is a user's click on a message's button.
type Click struct {
	ActionID  string // approve | reject
	Value     string // the button's value (the token)
	UserID    string
	UserName  string
	Channel   string
	MessageTS string
	TriggerID string
}

// ClickOn is the user's click on the button of a posted message (as the
// fake recorded it), or an error if the message has no such button.
func ClickOn(msg Call, actionID, userID, userName string) (Click, error) {
	for _, b := range msg.Buttons() {
		if b.ActionID == actionID {
			return Click{ActionID: actionID, Value: b.Value, UserID: userID, UserName: userName,
				Channel: msg.Form.Get("channel"), MessageTS: "1700000000.000001", TriggerID: "trigger-" + userID}, nil
		}
	}
	return Click{}, fmt.Errorf("the message has no %s button", actionID)
}

// Payload is the block_actions payload Slack sends for the click.
func (c Click) Payload() string {
	p := map[string]any{
		"type":       "block_actions",
		"user":       map[string]any{"id": c.UserID, "username": strings.ToLower(c.UserName), "name": c.UserName, "team_id": "T1"},
		"team":       map[string]any{"id": "T1", "domain": "example"},
		"channel":    map[string]any{"id": c.Channel, "name": "deploys"},
		"container":  map[string]any{"type": "message", "message_ts": c.MessageTS, "channel_id": c.Channel},
		"message":    map[string]any{"ts": c.MessageTS, "type": "message"},
		"trigger_id": c.TriggerID,
		"actions": []any{map[string]any{
			"type": "button", "action_id": c.ActionID, "block_id": "decision", "value": c.Value,
			"action_ts": strconv.FormatInt(time.Now().Unix(), 10) + ".000100",
		}},
		"response_url": "https://hooks.slack.com/actions/T1/1/x",
	}
	raw, _ := json.Marshal(p)
	return string(raw)
}

// Submission is a user's submission of a modal.
type Submission struct {
	CallbackID      string // the view's callback_id ("reject_reason")
	PrivateMetadata string // the view's private_metadata (the token)
	UserID          string
	UserName        string
	TriggerID       string
	// Values are the inputs' values: block id → action id → value.
	Values map[string]map[string]string
}

// Payload is the view_submission payload Slack sends for the submission.
func (s Submission) Payload() string {
	values := map[string]any{}
	for block, actions := range s.Values {
		m := map[string]any{}
		for action, v := range actions {
			m[action] = map[string]any{"type": "plain_text_input", "value": v}
		}
		values[block] = m
	}
	p := map[string]any{
		"type":       "view_submission",
		"trigger_id": s.TriggerID,
		"user":       map[string]any{"id": s.UserID, "username": strings.ToLower(s.UserName), "name": s.UserName, "team_id": "T1"},
		"team":       map[string]any{"id": "T1", "domain": "example"},
		"view": map[string]any{
			"id": "V1", "type": "modal", "callback_id": s.CallbackID, "private_metadata": s.PrivateMetadata,
			"state": map[string]any{"values": values},
		},
	}
	raw, _ := json.Marshal(p)
	return string(raw)
}

// Sign signs a form body as Slack does (v0) at the given time.
func Sign(secret string, at time.Time, body string) (timestamp, signature string) {
	timestamp = strconv.FormatInt(at.Unix(), 10)
	return timestamp, Signature(secret, timestamp, body)
}

// Signature is Slack's v0 signature of body sent with the
// X-Slack-Request-Timestamp header timestamp, taken as it is written.
func Signature(secret, timestamp, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", timestamp, body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// InteractionRequest builds Slack's signed POST of a payload to url.
func InteractionRequest(endpoint, secret string, at time.Time, payload string) (*http.Request, error) {
	body := url.Values{"payload": {payload}}.Encode()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	ts, sig := Sign(secret, at, body)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", sig)
	return req, nil
}
