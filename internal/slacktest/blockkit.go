package slacktest

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Slack's limits, as chat.postMessage, chat.update, chat.postEphemeral and
// views.open enforce them. Lengths are in characters.
const (
	// MaxBlocksJSON is where Slack starts answering msg_blocks_too_long:
	// a message's blocks array of this many characters of JSON or more is
	// refused, well below the documented per-element limits.
	MaxBlocksJSON = 12000
	// MaxText is the limit of a message's top-level text.
	MaxText = 40000

	maxMessageBlocks = 50
	maxViewBlocks    = 100
	maxBlockID       = 255
	maxActionID      = 255
	maxHeaderText    = 150
	maxSectionText   = 3000
	maxSectionFields = 10
	maxFieldText     = 2000
	maxContextElems  = 10
	maxContextText   = 3000
	maxActionsElems  = 25
	maxButtonText    = 75
	maxButtonValue   = 2000
	maxButtonURL     = 3000
	maxConfirmTitle  = 100
	maxConfirmText   = 300
	maxConfirmButton = 30
	maxViewTitle     = 24
	maxViewButton    = 24
	maxPlaceholder   = 150
	maxInputLabel    = 2000
	maxInputHint     = 2000
	maxInputLength   = 3000
	maxPrivateMeta   = 3000
	maxCallbackID    = 255
)

// Refusal is how Slack refuses a request for what it carries: its error
// code, and what its response_metadata says was wrong, with a JSON pointer.
type Refusal struct {
	Code   string // "invalid_blocks"
	Detail string // "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]"
}

func (r *Refusal) Error() string {
	if r.Detail == "" {
		return r.Code
	}
	return r.Code + ": " + r.Detail
}

func refuse(code, pointer, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Detail: fmt.Sprintf("[ERROR] "+format+" [json-pointer:%s]", append(args, pointer)...)}
}

// CheckMessage checks a message as chat.postMessage, chat.update and
// chat.postEphemeral do: its text, and its blocks given as the JSON array
// sent (nil for none). It returns nil, or the *Refusal Slack answers with.
func CheckMessage(text string, blocks []byte) error {
	if r := checkMessage(text, text != "", blocks, true); r != nil {
		return r
	}
	return nil
}

// CheckView checks a view (its JSON object) as views.open does. It returns
// nil, or the *Refusal Slack answers with.
func CheckView(view []byte) error {
	var v any
	if err := json.Unmarshal(view, &v); err != nil {
		return &Refusal{Code: "invalid_arguments", Detail: "[ERROR] view is not JSON [json-pointer:/view]"}
	}
	if r := checkView(v); r != nil {
		return r
	}
	return nil
}

// checkMessage checks what chat.postMessage, chat.update and
// chat.postEphemeral carry: the text and the blocks, as raw JSON.
func checkMessage(text string, hasText bool, blocks json.RawMessage, requireContent bool) *Refusal {
	if n := utf8.RuneCountInString(text); n > MaxText {
		return refuse("msg_too_long", "/text", "text has %d characters, more than %d", n, MaxText)
	}
	if len(blocks) == 0 || string(blocks) == "null" {
		if requireContent && (!hasText || text == "") {
			return &Refusal{Code: "no_text"}
		}
		return nil
	}
	if n := utf8.RuneCount(blocks); n >= MaxBlocksJSON {
		return refuse("msg_blocks_too_long", "/blocks", "blocks have %d characters of JSON, at most %d are accepted", n, MaxBlocksJSON-1)
	}
	var list []any
	if err := json.Unmarshal(blocks, &list); err != nil {
		return refuse("invalid_blocks_format", "/blocks", "blocks must be a JSON array of blocks")
	}
	if requireContent && len(list) == 0 && text == "" {
		return &Refusal{Code: "no_text"}
	}
	if r := checkBlocks("/blocks", list, maxMessageBlocks); r != nil {
		r.Code = "invalid_blocks"
		return r
	}
	return nil
}

// checkView checks a views.open view (a modal). Slack answers a view it
// refuses with invalid_arguments.
func checkView(raw any) *Refusal { return checkViewOf("modal", raw) }

// checkViewOf checks a view of a type: "modal" (views.open: title, submit
// and close too) or "home" (views.publish). Both hold private metadata, a
// callback id and at most 100 blocks within Block Kit's limits.
func checkViewOf(kind string, raw any) *Refusal {
	v, ok := raw.(map[string]any)
	if !ok {
		return refuse("invalid_arguments", "/view", "view must be an object")
	}
	r := func() *Refusal {
		if v["type"] != kind {
			return refuse("", "/view/type", "type must be %s", kind)
		}
		if kind == "modal" {
			if r := checkText("/view/title", v["title"], plainOnly, maxViewTitle, true); r != nil {
				return r
			}
			for _, k := range []string{"submit", "close"} {
				if r := checkText("/view/"+k, v[k], plainOnly, maxViewButton, false); r != nil {
					return r
				}
			}
		}
		if r := checkString("/view/private_metadata", v["private_metadata"], maxPrivateMeta); r != nil {
			return r
		}
		if r := checkString("/view/callback_id", v["callback_id"], maxCallbackID); r != nil {
			return r
		}
		blocks, ok := v["blocks"].([]any)
		if !ok {
			return refuse("", "/view/blocks", "blocks must be an array")
		}
		return checkBlocks("/view/blocks", blocks, maxViewBlocks)
	}()
	if r != nil {
		r.Code = "invalid_arguments"
	}
	return r
}

func checkBlocks(pointer string, blocks []any, most int) *Refusal {
	if len(blocks) > most {
		return refuse("", pointer, "%d blocks, more than %d", len(blocks), most)
	}
	ids := map[string]bool{}
	for i, raw := range blocks {
		p := fmt.Sprintf("%s/%d", pointer, i)
		b, ok := raw.(map[string]any)
		if !ok {
			return refuse("", p, "a block must be an object")
		}
		if id, ok := b["block_id"]; ok {
			if r := checkString(p+"/block_id", id, maxBlockID); r != nil {
				return r
			}
			s, _ := id.(string)
			if ids[s] {
				return refuse("", p+"/block_id", "block_id %q is not unique", s)
			}
			ids[s] = true
		}
		if r := checkBlock(p, b); r != nil {
			return r
		}
	}
	return nil
}

func checkBlock(p string, b map[string]any) *Refusal {
	switch b["type"] {
	case "header":
		return checkText(p+"/text", b["text"], plainOnly, maxHeaderText, true)
	case "section":
		_, hasText := b["text"]
		fields, hasFields := b["fields"]
		if !hasText && !hasFields {
			return refuse("", p, "a section needs text or fields")
		}
		if hasText {
			if r := checkText(p+"/text", b["text"], anyText, maxSectionText, true); r != nil {
				return r
			}
		}
		if hasFields {
			list, ok := fields.([]any)
			if !ok || len(list) == 0 {
				return refuse("", p+"/fields", "fields must be a non-empty array")
			}
			if len(list) > maxSectionFields {
				return refuse("", p+"/fields", "%d fields, more than %d", len(list), maxSectionFields)
			}
			for i, f := range list {
				if r := checkText(fmt.Sprintf("%s/fields/%d", p, i), f, anyText, maxFieldText, true); r != nil {
					return r
				}
			}
		}
		if acc, ok := b["accessory"]; ok {
			return checkElement(p+"/accessory", acc)
		}
		return nil
	case "context":
		list, ok := b["elements"].([]any)
		if !ok || len(list) == 0 {
			return refuse("", p+"/elements", "elements must be a non-empty array")
		}
		if len(list) > maxContextElems {
			return refuse("", p+"/elements", "%d elements, more than %d", len(list), maxContextElems)
		}
		for i, e := range list {
			ep := fmt.Sprintf("%s/elements/%d", p, i)
			if m, ok := e.(map[string]any); ok && m["type"] == "image" {
				continue
			}
			if r := checkText(ep, e, anyText, maxContextText, true); r != nil {
				return r
			}
		}
		return nil
	case "actions":
		list, ok := b["elements"].([]any)
		if !ok || len(list) == 0 {
			return refuse("", p+"/elements", "elements must be a non-empty array")
		}
		if len(list) > maxActionsElems {
			return refuse("", p+"/elements", "%d elements, more than %d", len(list), maxActionsElems)
		}
		for i, e := range list {
			if r := checkElement(fmt.Sprintf("%s/elements/%d", p, i), e); r != nil {
				return r
			}
		}
		return nil
	case "input":
		if r := checkText(p+"/label", b["label"], plainOnly, maxInputLabel, true); r != nil {
			return r
		}
		if r := checkText(p+"/hint", b["hint"], plainOnly, maxInputHint, false); r != nil {
			return r
		}
		return checkElement(p+"/element", b["element"])
	case "divider":
		return nil
	}
	return refuse("", p+"/type", "unsupported block type %v", b["type"])
}

func checkElement(p string, raw any) *Refusal {
	e, ok := raw.(map[string]any)
	if !ok {
		return refuse("", p, "an element must be an object")
	}
	if r := checkString(p+"/action_id", e["action_id"], maxActionID); r != nil {
		return r
	}
	switch e["type"] {
	case "button":
		if r := checkText(p+"/text", e["text"], plainOnly, maxButtonText, true); r != nil {
			return r
		}
		if r := checkString(p+"/value", e["value"], maxButtonValue); r != nil {
			return r
		}
		if r := checkString(p+"/url", e["url"], maxButtonURL); r != nil {
			return r
		}
		if s, ok := e["style"]; ok && s != "primary" && s != "danger" {
			return refuse("", p+"/style", "style must be primary or danger")
		}
		if c, ok := e["confirm"]; ok {
			return checkConfirm(p+"/confirm", c)
		}
		return nil
	case "plain_text_input":
		if r := checkText(p+"/placeholder", e["placeholder"], plainOnly, maxPlaceholder, false); r != nil {
			return r
		}
		for _, k := range []string{"min_length", "max_length"} {
			if n, ok := e[k].(float64); ok && (n < 0 || n > maxInputLength) {
				return refuse("", p+"/"+k, "%s must be between 0 and %d", k, maxInputLength)
			}
		}
		return nil
	}
	return refuse("", p+"/type", "unsupported element type %v", e["type"])
}

func checkConfirm(p string, raw any) *Refusal {
	c, ok := raw.(map[string]any)
	if !ok {
		return refuse("", p, "confirm must be an object")
	}
	for _, x := range []struct {
		key      string
		most     int
		required bool
	}{{"title", maxConfirmTitle, true}, {"text", maxConfirmText, true}, {"confirm", maxConfirmButton, true}, {"deny", maxConfirmButton, true}} {
		kinds := plainOnly
		if x.key == "text" {
			kinds = anyText
		}
		if r := checkText(p+"/"+x.key, c[x.key], kinds, x.most, x.required); r != nil {
			return r
		}
	}
	if s, ok := c["style"]; ok && s != "primary" && s != "danger" {
		return refuse("", p+"/style", "style must be primary or danger")
	}
	return nil
}

type textKinds int

const (
	plainOnly textKinds = iota
	anyText
)

// checkText checks a text object: its type, and that its text is not empty
// and at most most characters. A missing optional object passes.
func checkText(p string, raw any, kinds textKinds, most int, required bool) *Refusal {
	if raw == nil {
		if required {
			return refuse("", p, "a text object is required")
		}
		return nil
	}
	t, ok := raw.(map[string]any)
	if !ok {
		return refuse("", p, "must be a text object")
	}
	switch t["type"] {
	case "plain_text":
	case "mrkdwn":
		if kinds == plainOnly {
			return refuse("", p+"/type", "must be plain_text")
		}
	default:
		return refuse("", p+"/type", "unsupported text type %v", t["type"])
	}
	s, ok := t["text"].(string)
	if !ok || s == "" {
		return refuse("", p+"/text", "must be more than 0 characters")
	}
	if n := utf8.RuneCountInString(s); n > most {
		return refuse("", p+"/text", "must be less than %d characters (has %d)", most+1, n)
	}
	return nil
}

// checkString checks an optional string field's length.
func checkString(p string, raw any, most int) *Refusal {
	if raw == nil {
		return nil
	}
	s, ok := raw.(string)
	if !ok {
		return refuse("", p, "must be a string")
	}
	if n := utf8.RuneCountInString(s); n > most {
		return refuse("", p, "must be less than %d characters (has %d)", most+1, n)
	}
	return nil
}
