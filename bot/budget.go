package bot

import (
	"encoding/json"

	"github.com/slack-go/slack"
)

// blocksBudget bounds the JSON of a message's blocks array, in bytes.
// Slack refuses a message whose blocks have 12,000 characters of JSON or
// more (msg_blocks_too_long), far below the per-element limits: seven
// context fields at their 2,000 would be refused. The renderer measures the
// JSON slack-go sends (json.Marshal writes <, > and & as \u003c…, and a
// character outside ASCII takes two to four bytes), which is never shorter
// than what Slack counts, and keeps a margin below Slack's limit.
const blocksBudget = 11500

// blocksJSONLen is the length of the blocks' JSON as slack-go sends it.
func blocksJSONLen(blocks []slack.Block) int {
	raw, err := json.Marshal(blocks)
	if err != nil {
		return blocksBudget // cannot be sent as it is: never "fits"
	}
	return len(raw)
}

func fits(blocks []slack.Block) bool { return blocksJSONLen(blocks) < blocksBudget }

// cuts say how much of a task's texts a message shows, in characters of
// rendered mrkdwn. fullCuts shows each text up to its element's limit.
type cuts struct {
	description int // 0 leaves the description out
	field       int // each context field's value
	people      int // each list of people: approvers, voters
	reason      int // the reason of a decision
	lastError   int // the deployment tool's error; 0 leaves it out
	// shortConfirm: the confirm dialog does not name the deployment.
	shortConfirm bool
	// noLink leaves the task's URL out: the last thing to give up.
	noLink bool
	// minimal shows the header, the expiry, the buttons or the outcome,
	// the quorum count and a link to the task, nothing else.
	minimal bool
	// bare is minimal without anything the task brought.
	bare bool
}

func fullCuts() cuts {
	return cuts{
		description: maxSectionChars,
		field:       maxFieldChars,
		people:      maxSectionChars,
		reason:      maxSectionChars / 2,
		lastError:   maxErrorChars,
	}
}

func minimalCuts() cuts {
	return cuts{reason: 100, shortConfirm: true, minimal: true}
}

// cut is one text the budget may shorten: first down to floor (so that
// each keeps something to read), and only when cutting all of them to
// their floors is not enough, down to least.
type cut struct {
	at           *int
	floor, least int
}

// cutOrder is what the budget shortens first: the description, then the
// long context fields, the lists of people, the reason, the tool's error.
// The header, the expiry, the buttons with their token and confirm dialog,
// and the link are never cut by it.
func cutOrder(c *cuts) []cut {
	return []cut{
		{&c.description, 300, 0},
		{&c.field, 150, 20},
		{&c.people, 300, 40},
		{&c.reason, 300, 60},
		{&c.lastError, 150, 60},
	}
}

// searchStep is how close the search for the longest text that fits gets,
// in characters: closer costs renders and gains a few words.
const searchStep = 16

// fit renders the message within blocksBudget, shortening the texts of
// cutOrder in its order. A message that even the minimal rendering cannot fit
// (a token far longer than any this bot mints) is returned minimal, and the
// Notifier's fallback takes over if Slack refuses it.
func (r *rendering) fit() []slack.Block {
	c := fullCuts()
	blocks := r.blocks(c)
	if fits(blocks) {
		return blocks
	}
	// Invariant: the message rendered under c does not fit.
	for _, least := range []bool{false, true} {
		for _, k := range cutOrder(&c) {
			at := k.at
			target := k.floor
			if least {
				target = k.least
			}
			if *at <= target {
				continue
			}
			hi := *at
			*at = target
			if b := r.blocks(c); fits(b) {
				return r.longest(&c, at, target, hi, b)
			}
		}
	}
	for _, flag := range []*bool{&c.shortConfirm, &c.noLink} {
		*flag = true
		if b := r.blocks(c); fits(b) {
			return b
		}
	}
	return r.blocks(minimalCuts())
}

// longest finds, to searchStep, the longest *at in [lo, hi) that fits: the
// message fits at lo (rendered as best) and not at hi.
func (r *rendering) longest(c *cuts, at *int, lo, hi int, best []slack.Block) []slack.Block {
	for hi-lo > searchStep {
		mid := lo + (hi-lo)/2
		*at = mid
		if b := r.blocks(*c); fits(b) {
			lo, best = mid, b
		} else {
			hi = mid
		}
	}
	*at = lo
	return best
}
