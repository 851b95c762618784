package slacktest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// slackAnswer is the part of a Web API answer the tests read.
type slackAnswer struct {
	OK               bool   `json:"ok"`
	Error            string `json:"error"`
	TS               string `json:"ts"`
	ResponseMetadata struct {
		Messages []string `json:"messages"`
	} `json:"response_metadata"`
}

func postForm(t *testing.T, f *Server, method string, form url.Values) slackAnswer {
	t.Helper()
	form.Set("token", "xoxb-test")
	resp, err := http.PostForm(f.APIURL()+method, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a slackAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

func postJSON(t *testing.T, f *Server, method string, body any) slackAnswer {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, f.APIURL()+method, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer xoxb-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a slackAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

func plain(s string) map[string]any  { return map[string]any{"type": "plain_text", "text": s} }
func mrkdwn(s string) map[string]any { return map[string]any{"type": "mrkdwn", "text": s} }

// message is a valid message of every block kind the bot sends.
func message() []any {
	return []any{
		map[string]any{"type": "header", "block_id": "header", "text": plain("Deployment approval")},
		map[string]any{"type": "section", "block_id": "description", "text": mrkdwn("v2.3 to PROD")},
		map[string]any{"type": "section", "block_id": "fields", "fields": []any{mrkdwn("*Environment*\nPROD")}},
		map[string]any{"type": "context", "block_id": "context", "elements": []any{mrkdwn("Expires soon")}},
		map[string]any{"type": "divider"},
		map[string]any{"type": "actions", "block_id": "decision", "elements": []any{
			map[string]any{"type": "button", "action_id": "approve", "value": "tok", "style": "primary", "text": plain("Approve"),
				"confirm": map[string]any{"title": plain("Approve?"), "text": plain("Sure?"), "confirm": plain("Approve"), "deny": plain("Cancel")}},
			map[string]any{"type": "button", "action_id": "reject", "value": "tok", "style": "danger", "text": plain("Reject")},
		}},
	}
}

// block returns the message's i-th block for changing.
func block(m []any, i int) map[string]any { return m[i].(map[string]any) }

func button(m []any, i int) map[string]any {
	return block(m, 5)["elements"].([]any)[i].(map[string]any)
}

func many(n int, item func() any) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = item()
	}
	return out
}

func TestBlockKitLimits(t *testing.T) {
	t.Parallel()
	x := strings.Repeat
	tests := []struct {
		name   string
		change func(m []any) []any
		text   string
		want   string // "" accepted
	}{
		{name: "valid", change: func(m []any) []any { return m }},
		{name: "50 blocks", change: func(m []any) []any {
			return append(m, many(50-len(m), func() any { return map[string]any{"type": "divider"} })...)
		}},
		{name: "51 blocks", want: "invalid_blocks", change: func(m []any) []any {
			return append(m, many(51-len(m), func() any { return map[string]any{"type": "divider"} })...)
		}},
		{name: "unknown block", want: "invalid_blocks", change: func(m []any) []any {
			return append(m, map[string]any{"type": "marquee"})
		}},
		{name: "header at 150", change: func(m []any) []any { block(m, 0)["text"] = plain(x("é", 150)); return m }},
		{name: "header over 150", want: "invalid_blocks", change: func(m []any) []any { block(m, 0)["text"] = plain(x("é", 151)); return m }},
		{name: "header in mrkdwn", want: "invalid_blocks", change: func(m []any) []any { block(m, 0)["text"] = mrkdwn("x"); return m }},
		{name: "empty header", want: "invalid_blocks", change: func(m []any) []any { block(m, 0)["text"] = plain(""); return m }},
		{name: "section at 3000", change: func(m []any) []any { block(m, 1)["text"] = mrkdwn(x("&amp;", 600)); return m }},
		{name: "section over 3000", want: "invalid_blocks", change: func(m []any) []any { block(m, 1)["text"] = mrkdwn(x("a", 3001)); return m }},
		{name: "section without text", want: "invalid_blocks", change: func(m []any) []any { delete(block(m, 1), "text"); return m }},
		{name: "10 fields", change: func(m []any) []any { block(m, 2)["fields"] = many(10, func() any { return mrkdwn("f") }); return m }},
		{name: "11 fields", want: "invalid_blocks", change: func(m []any) []any {
			block(m, 2)["fields"] = many(11, func() any { return mrkdwn("f") })
			return m
		}},
		{name: "field at 2000", change: func(m []any) []any { block(m, 2)["fields"] = []any{mrkdwn(x("😀", 2000))}; return m }},
		{name: "field over 2000", want: "invalid_blocks", change: func(m []any) []any { block(m, 2)["fields"] = []any{mrkdwn(x("a", 2001))}; return m }},
		{name: "10 context elements", change: func(m []any) []any {
			block(m, 3)["elements"] = many(10, func() any { return mrkdwn("c") })
			return m
		}},
		{name: "11 context elements", want: "invalid_blocks", change: func(m []any) []any {
			block(m, 3)["elements"] = many(11, func() any { return mrkdwn("c") })
			return m
		}},
		{name: "25 actions elements", change: func(m []any) []any {
			block(m, 5)["elements"] = many(25, func() any { return map[string]any{"type": "button", "text": plain("b")} })
			return m
		}},
		{name: "26 actions elements", want: "invalid_blocks", change: func(m []any) []any {
			block(m, 5)["elements"] = many(26, func() any { return map[string]any{"type": "button", "text": plain("b")} })
			return m
		}},
		{name: "button text at 75", change: func(m []any) []any { button(m, 0)["text"] = plain(x("a", 75)); return m }},
		{name: "button text over 75", want: "invalid_blocks", change: func(m []any) []any { button(m, 0)["text"] = plain(x("a", 76)); return m }},
		{name: "button text in mrkdwn", want: "invalid_blocks", change: func(m []any) []any { button(m, 0)["text"] = mrkdwn("a"); return m }},
		{name: "button value at 2000", change: func(m []any) []any { button(m, 1)["value"] = x("v", 2000); return m }},
		{name: "button value over 2000", want: "invalid_blocks", change: func(m []any) []any { button(m, 1)["value"] = x("v", 2001); return m }},
		{name: "action_id at 255", change: func(m []any) []any { button(m, 1)["action_id"] = x("a", 255); return m }},
		{name: "action_id over 255", want: "invalid_blocks", change: func(m []any) []any { button(m, 1)["action_id"] = x("a", 256); return m }},
		{name: "block_id at 255", change: func(m []any) []any { block(m, 1)["block_id"] = x("b", 255); return m }},
		{name: "block_id over 255", want: "invalid_blocks", change: func(m []any) []any { block(m, 1)["block_id"] = x("b", 256); return m }},
		{name: "block_id twice", want: "invalid_blocks", change: func(m []any) []any { block(m, 1)["block_id"] = "header"; return m }},
		{name: "bad style", want: "invalid_blocks", change: func(m []any) []any { button(m, 1)["style"] = "loud"; return m }},
		{name: "confirm title at 100", change: func(m []any) []any { confirm(m)["title"] = plain(x("t", 100)); return m }},
		{name: "confirm title over 100", want: "invalid_blocks", change: func(m []any) []any { confirm(m)["title"] = plain(x("t", 101)); return m }},
		{name: "confirm text at 300", change: func(m []any) []any { confirm(m)["text"] = plain(x("→", 300)); return m }},
		{name: "confirm text over 300", want: "invalid_blocks", change: func(m []any) []any { confirm(m)["text"] = plain(x("t", 301)); return m }},
		{name: "confirm button over 30", want: "invalid_blocks", change: func(m []any) []any { confirm(m)["confirm"] = plain(x("c", 31)); return m }},
		{name: "deny over 30", want: "invalid_blocks", change: func(m []any) []any { confirm(m)["deny"] = plain(x("d", 31)); return m }},
		{name: "confirm without deny", want: "invalid_blocks", change: func(m []any) []any { delete(confirm(m), "deny"); return m }},
		{name: "text at 40000", text: x("t", 40000), change: func(m []any) []any { return m }},
		{name: "text over 40000", text: x("t", 40001), want: "msg_too_long", change: func(m []any) []any { return m }},
	}
	fake := New()
	t.Cleanup(fake.Close)
	for _, method := range []string{"chat.postMessage", "chat.update", "chat.postEphemeral"} {
		for _, tc := range tests {
			t.Run(method+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				raw, err := json.Marshal(tc.change(message()))
				if err != nil {
					t.Fatal(err)
				}
				text := tc.text
				if text == "" {
					text = "fallback"
				}
				a := postForm(t, fake, method, url.Values{"channel": {"C1"}, "ts": {"1.2"}, "user": {"U1"}, "text": {text}, "blocks": {string(raw)}})
				if a.Error != tc.want || a.OK != (tc.want == "") {
					t.Errorf("answer ok=%v error=%q %v, want error %q", a.OK, a.Error, a.ResponseMetadata.Messages, tc.want)
				}
				if tc.want == "invalid_blocks" && (len(a.ResponseMetadata.Messages) != 1 || !strings.Contains(a.ResponseMetadata.Messages[0], "json-pointer:/blocks")) {
					t.Errorf("refusal says %v, want the place that is wrong", a.ResponseMetadata.Messages)
				}
				err = CheckMessage(text, raw)
				if got := refusalCode(err); got != tc.want {
					t.Errorf("CheckMessage = %v, want %q", err, tc.want)
				}
			})
		}
	}
}

func confirm(m []any) map[string]any { return button(m, 0)["confirm"].(map[string]any) }

func refusalCode(err error) string {
	if err == nil {
		return ""
	}
	return err.(*Refusal).Code
}

// TestBlocksTooLong: Slack refuses a blocks array of 12,000 characters of
// JSON or more, counting characters, not bytes.
func TestBlocksTooLong(t *testing.T) {
	t.Parallel()
	fake := New()
	t.Cleanup(fake.Close)
	// blocksOf is blocks of exactly n characters of JSON, in sections of
	// multi-byte text within the section limit.
	blocksOf := func(n int) string {
		var blocks []any
		for {
			raw, _ := json.Marshal(blocks)
			rest := n - utf8.RuneCount(raw)
			if rest <= 0 {
				return string(raw)
			}
			empty, _ := json.Marshal(append(blocks, map[string]any{"type": "section", "text": mrkdwn("")}))
			room := n - utf8.RuneCount(empty)
			blocks = append(blocks, map[string]any{"type": "section", "text": mrkdwn(strings.Repeat("é", min(room, 2900)))})
		}
	}
	for _, tc := range []struct {
		chars int
		want  string
	}{{MaxBlocksJSON - 1, ""}, {MaxBlocksJSON, "msg_blocks_too_long"}, {30000, "msg_blocks_too_long"}} {
		blocks := blocksOf(tc.chars)
		if n := utf8.RuneCountInString(blocks); n != tc.chars {
			t.Fatalf("built %d characters, want %d", n, tc.chars)
		}
		for _, method := range []string{"chat.postMessage", "chat.update", "chat.postEphemeral"} {
			a := postForm(t, fake, method, url.Values{"channel": {"C1"}, "ts": {"1.2"}, "user": {"U1"}, "text": {"x"}, "blocks": {blocks}})
			if a.Error != tc.want {
				t.Errorf("%s with %d characters of blocks: error %q, want %q", method, tc.chars, a.Error, tc.want)
			}
		}
	}
	if a := postForm(t, fake, "chat.postMessage", url.Values{"channel": {"C1"}, "blocks": {"[{"}}); a.Error != "invalid_blocks_format" {
		t.Errorf("malformed blocks: error %q, want invalid_blocks_format", a.Error)
	}
	if a := postForm(t, fake, "chat.postMessage", url.Values{"channel": {"C1"}}); a.Error != "no_text" {
		t.Errorf("neither text nor blocks: error %q, want no_text", a.Error)
	}
	// A refused post takes no ts: this is the second accepted one.
	a := postForm(t, fake, "chat.postMessage", url.Values{"channel": {"C1"}, "text": {"hi"}})
	if !a.OK || a.TS != "1700000000.000002" {
		t.Errorf("second accepted post answered %+v, want ts 1700000000.000002", a)
	}
	for _, c := range fake.CallsTo("chat.postMessage") {
		if (c.Refused == "") != (c.Form.Get("text") == "hi" || c.Form.Get("blocks") == blocksOf(MaxBlocksJSON-1)) {
			t.Errorf("call recorded as refused %q: %v", c.Refused, c.Form.Get("text"))
		}
	}
}

func view() map[string]any {
	return map[string]any{
		"type": "modal", "callback_id": "reject_reason", "private_metadata": "tok",
		"title": plain("Reject deployment"), "submit": plain("Reject"), "close": plain("Cancel"),
		"blocks": []any{map[string]any{
			"type": "input", "block_id": "reason", "label": plain("Reason"), "hint": plain("Sent with the rejection."),
			"element": map[string]any{"type": "plain_text_input", "action_id": "reason", "multiline": true, "max_length": 1000,
				"placeholder": plain("Why?")},
		}},
	}
}

func TestViewLimits(t *testing.T) {
	t.Parallel()
	x := strings.Repeat
	input := func(v map[string]any) map[string]any {
		return v["blocks"].([]any)[0].(map[string]any)["element"].(map[string]any)
	}
	tests := []struct {
		name   string
		change func(v map[string]any)
		want   string
	}{
		{"valid", func(map[string]any) {}, ""},
		{"title at 24", func(v map[string]any) { v["title"] = plain(x("é", 24)) }, ""},
		{"title over 24", func(v map[string]any) { v["title"] = plain(x("t", 25)) }, "invalid_arguments"},
		{"no title", func(v map[string]any) { delete(v, "title") }, "invalid_arguments"},
		{"submit over 24", func(v map[string]any) { v["submit"] = plain(x("s", 25)) }, "invalid_arguments"},
		{"close over 24", func(v map[string]any) { v["close"] = plain(x("c", 25)) }, "invalid_arguments"},
		{"no close", func(v map[string]any) { delete(v, "close") }, ""},
		{"placeholder at 150", func(v map[string]any) { input(v)["placeholder"] = plain(x("p", 150)) }, ""},
		{"placeholder over 150", func(v map[string]any) { input(v)["placeholder"] = plain(x("p", 151)) }, "invalid_arguments"},
		{"private_metadata at 3000", func(v map[string]any) { v["private_metadata"] = x("m", 3000) }, ""},
		{"private_metadata over 3000", func(v map[string]any) { v["private_metadata"] = x("m", 3001) }, "invalid_arguments"},
		{"max_length over 3000", func(v map[string]any) { input(v)["max_length"] = 3001 }, "invalid_arguments"},
		{"label in mrkdwn", func(v map[string]any) { v["blocks"].([]any)[0].(map[string]any)["label"] = mrkdwn("r") }, "invalid_arguments"},
	}
	fake := New()
	t.Cleanup(fake.Close)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := view()
			tc.change(v)
			a := postJSON(t, fake, "views.open", map[string]any{"trigger_id": "t1", "view": v})
			if a.Error != tc.want || a.OK != (tc.want == "") {
				t.Errorf("answer ok=%v error=%q %v, want error %q", a.OK, a.Error, a.ResponseMetadata.Messages, tc.want)
			}
			raw, _ := json.Marshal(v)
			if err := CheckView(raw); refusalCode(err) != tc.want {
				t.Errorf("CheckView = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRefuseBlocks(t *testing.T) {
	t.Parallel()
	fake := New()
	t.Cleanup(fake.Close)
	raw, _ := json.Marshal(message())
	post := func() slackAnswer {
		return postForm(t, fake, "chat.postMessage", url.Values{"channel": {"C1"}, "text": {"x"}, "blocks": {string(raw)}})
	}

	fake.RefuseBlocks("invalid_blocks", 2)
	if a := postForm(t, fake, "chat.postMessage", url.Values{"channel": {"C1"}, "text": {"text only"}}); !a.OK {
		t.Errorf("a message without blocks was refused: %q", a.Error)
	}
	for i := 0; i < 2; i++ {
		if a := post(); a.Error != "invalid_blocks" {
			t.Errorf("refused post %d answered %+v", i, a)
		}
	}
	if a := post(); !a.OK {
		t.Errorf("post after the refusals answered %q", a.Error)
	}

	fake.RefuseBlocks("msg_blocks_too_long", -1)
	for i := 0; i < 3; i++ {
		if a := post(); a.Error != "msg_blocks_too_long" {
			t.Errorf("post %d under RefuseBlocks(-1) answered %+v", i, a)
		}
	}
	if a := postJSON(t, fake, "views.open", map[string]any{"trigger_id": "t1", "view": view()}); a.Error != "msg_blocks_too_long" {
		t.Errorf("views.open under RefuseBlocks answered %+v", a)
	}
	fake.RefuseBlocks("", 0)
	if a := post(); !a.OK {
		t.Errorf("post after RefuseBlocks(0) answered %q", a.Error)
	}

	var refused []string
	for _, c := range fake.Calls() {
		refused = append(refused, c.Refused)
	}
	want := []string{"", "invalid_blocks", "invalid_blocks", "", "msg_blocks_too_long", "msg_blocks_too_long", "msg_blocks_too_long", "msg_blocks_too_long", ""}
	if strings.Join(refused, ",") != strings.Join(want, ",") {
		t.Errorf("calls recorded as refused %q, want %q", refused, want)
	}
}

// TestAnswerOverridesChecks: an Answer stands for Slack's whole answer, so
// the fake checks nothing of a call it is given for.
func TestAnswerOverridesChecks(t *testing.T) {
	t.Parallel()
	fake := New()
	t.Cleanup(fake.Close)
	fake.SetAnswer(func(c Call) *Answer {
		return &Answer{Body: `{"ok":true,"channel":"C1","ts":"9.9"}`}
	})
	a := postForm(t, fake, "chat.postMessage", url.Values{"channel": {"C1"}, "text": {"x"}, "blocks": {`[{"type":"marquee"}]`}})
	if !a.OK || a.TS != "9.9" {
		t.Errorf("answer %+v, want the override", a)
	}
}
