package slacktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The surfaces where approvers already are: the App Home (views.publish,
// app_home_opened through the Events API), the slash command, and the
// workspace's address links to messages are made from (auth.test).

// WorkspaceURL is the address auth.test answers with.
const WorkspaceURL = "https://example.slack.com/"

// surfaceReply is how Slack answers views.publish and auth.test.
func surfaceReply(call Call) any {
	switch call.Method {
	case "views.publish":
		user, _ := call.JSON["user_id"].(string)
		if user == "" {
			return map[string]any{"ok": false, "error": "invalid_arguments"}
		}
		return map[string]any{"ok": true, "view": map[string]any{"id": "VHOME" + user, "type": "home"}}
	case "auth.test":
		return map[string]any{"ok": true, "url": WorkspaceURL, "team": "Example", "user": "approvalbot",
			"team_id": "T1", "user_id": "UBOT", "bot_id": "BBOT"}
	}
	return map[string]any{"ok": false, "error": "unknown_method"}
}

// CheckHomeView checks an App Home view (its JSON object) as views.publish
// does. It returns nil, or the *Refusal Slack answers with.
func CheckHomeView(view []byte) error {
	var v any
	if err := json.Unmarshal(view, &v); err != nil {
		return &Refusal{Code: "invalid_arguments", Detail: "[ERROR] view is not JSON [json-pointer:/view]"}
	}
	if r := checkHomeView(v); r != nil {
		return r
	}
	return nil
}

// checkHomeView checks a views.publish view: type home, at most 100
// blocks within Block Kit's limits (block ids unique). Slack answers a view
// it refuses with invalid_arguments.
func checkHomeView(raw any) *Refusal { return checkViewOf("home", raw) }

// buttonsOf returns the buttons of the actions blocks.
func buttonsOf(blocks []map[string]any) []Button {
	var out []Button
	for _, b := range blocks {
		if b["type"] != "actions" {
			continue
		}
		blockID, _ := b["block_id"].(string)
		elems, _ := b["elements"].([]any)
		for _, e := range elems {
			m, _ := e.(map[string]any)
			btn := Button{BlockID: blockID}
			btn.ActionID, _ = m["action_id"].(string)
			btn.Style, _ = m["style"].(string)
			btn.Value, _ = m["value"].(string)
			btn.URL, _ = m["url"].(string)
			_, btn.Confirm = m["confirm"]
			out = append(out, btn)
		}
	}
	return out
}

// View is the view a views.publish call carried (nil for other calls).
func (c Call) View() map[string]any {
	v, _ := c.JSON["view"].(map[string]any)
	return v
}

// ViewUser is whose App Home a views.publish call published.
func (c Call) ViewUser() string {
	u, _ := c.JSON["user_id"].(string)
	return u
}

// ViewBlocks decodes the blocks of the call's view.
func (c Call) ViewBlocks() []map[string]any {
	var blocks []map[string]any
	list, _ := c.View()["blocks"].([]any)
	for _, x := range list {
		if m, ok := x.(map[string]any); ok {
			blocks = append(blocks, m)
		}
	}
	return blocks
}

// ViewButtons returns the buttons of the call's view.
func (c Call) ViewButtons() []Button { return buttonsOf(c.ViewBlocks()) }

// ViewText is every text of the call's view, joined.
func (c Call) ViewText() string {
	raw, _ := json.Marshal(c.ViewBlocks())
	return string(raw)
}

// HomesOf returns the views.publish calls that published the user's App
// Home, in order.
func (f *Server) HomesOf(user string) []Call {
	var out []Call
	for _, c := range f.CallsTo("views.publish") {
		if c.ViewUser() == user {
			out = append(out, c)
		}
	}
	return out
}

// ViewClick is a user's click on a button of their App Home.
type ViewClick struct {
	ActionID  string // approve | reject | review
	BlockID   string
	Value     string // the button's value (the token)
	UserID    string
	UserName  string
	ViewID    string
	TriggerID string
}

// ClickInView is the user's click on the button of a published view whose
// block id starts with blockPrefix (e.g. "decision:flexdeploy-8900"), or
// an error if it has no such button.
func ClickInView(view Call, actionID, blockPrefix, userID, userName string) (ViewClick, error) {
	for _, b := range view.ViewButtons() {
		if b.ActionID == actionID && strings.HasPrefix(b.BlockID, blockPrefix) {
			return ViewClick{ActionID: actionID, BlockID: b.BlockID, Value: b.Value, UserID: userID, UserName: userName,
				ViewID: "VHOME" + view.ViewUser(), TriggerID: "trigger-" + userID}, nil
		}
	}
	return ViewClick{}, fmt.Errorf("the view has no %s button in a block %s…", actionID, blockPrefix)
}

// Payload is the block_actions payload Slack sends for a click in an App
// Home: its container is the view, and there is no channel.
func (c ViewClick) Payload() string {
	p := map[string]any{
		"type":       "block_actions",
		"user":       map[string]any{"id": c.UserID, "username": strings.ToLower(c.UserName), "name": c.UserName, "team_id": "T1"},
		"team":       map[string]any{"id": "T1", "domain": "example"},
		"container":  map[string]any{"type": "view", "view_id": c.ViewID},
		"view":       map[string]any{"id": c.ViewID, "type": "home", "callback_id": "approvals_home"},
		"trigger_id": c.TriggerID,
		"actions": []any{map[string]any{
			"type": "button", "action_id": c.ActionID, "block_id": c.BlockID, "value": c.Value,
			"action_ts": strconv.FormatInt(time.Now().Unix(), 10) + ".000100",
		}},
	}
	raw, _ := json.Marshal(p)
	return string(raw)
}

// AppHomeOpened is the Events API body Slack posts when the user opens
// the app's tab ("home" or "messages").
func AppHomeOpened(eventID, user, tab string) string {
	p := map[string]any{
		"token": "verification-token-unused", "team_id": "T1", "api_app_id": "A1",
		"type": "event_callback", "event_id": eventID, "event_time": time.Now().Unix(),
		"event": map[string]any{"type": "app_home_opened", "user": user, "channel": "D" + user, "tab": tab,
			"event_ts": strconv.FormatInt(time.Now().Unix(), 10) + ".000200"},
	}
	raw, _ := json.Marshal(p)
	return string(raw)
}

// URLVerification is the body Slack posts when the events request URL is
// set, asking for the challenge back.
func URLVerification(challenge string) string {
	raw, _ := json.Marshal(map[string]any{"token": "verification-token-unused", "challenge": challenge, "type": "url_verification"})
	return string(raw)
}

// EventRequest builds Slack's signed POST of an Events API body to
// endpoint; retry > 0 marks Slack's retry number retry (X-Slack-Retry-Num).
func EventRequest(endpoint, secret string, at time.Time, body string, retry int) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	ts, sig := Sign(secret, at, body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", sig)
	if retry > 0 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(retry))
		req.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	}
	return req, nil
}

// SlashCommand is a user's slash command.
type SlashCommand struct {
	Command   string // "/approvals"
	Text      string
	UserID    string
	UserName  string
	ChannelID string
}

// Form is the form Slack posts for the command.
func (c SlashCommand) Form() url.Values {
	return url.Values{
		"token": {"verification-token-unused"}, "team_id": {"T1"}, "team_domain": {"example"},
		"channel_id": {c.ChannelID}, "channel_name": {"deploys"},
		"user_id": {c.UserID}, "user_name": {c.UserName},
		"command": {c.Command}, "text": {c.Text},
		"api_app_id":   {"A1"},
		"response_url": {"https://hooks.slack.com/commands/T1/1/x"},
		"trigger_id":   {"trigger-" + c.UserID},
	}
}

// Payload is the slash_commands envelope's payload Socket Mode carries.
func (c SlashCommand) Payload() string {
	m := map[string]string{}
	for k, v := range c.Form() {
		m[k] = v[0]
	}
	raw, _ := json.Marshal(m)
	return string(raw)
}

// CommandRequest builds Slack's signed POST of the command to endpoint.
func CommandRequest(endpoint, secret string, at time.Time, cmd SlashCommand) (*http.Request, error) {
	body := cmd.Form().Encode()
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
