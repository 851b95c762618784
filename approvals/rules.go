package approvals

import (
	"context"
	"slices"
	"time"
)

// Requirement is one entry of a policy's require_from: count distinct
// approvals from the members of a user group, or from the users named.
type Requirement struct {
	// Label names the entry on the message ("SRE 1/1"); the group's id or
	// "named users" when empty.
	Label string
	Group string
	Users []string
	// Emails name people in any chat.
	Emails []string
	Count  int
}

// Name is how the entry is shown and recorded.
func (r Requirement) Name() string {
	switch {
	case r.Label != "":
		return r.Label
	case r.Group != "":
		return r.Group
	}
	return "named users"
}

// Includes reports whether the person is a member of the entry: one of its
// users or of its group (the primary chat's ids; a person of another chat
// by the primary chat's user with their email), or one of its emails.
func (r Requirement) Includes(ctx context.Context, who asker) (bool, error) {
	var groups []string
	if r.Group != "" {
		groups = []string{r.Group}
	}
	if ok, err := who.namedByID(ctx, r.Users, groups); ok || err != nil {
		return ok, err
	}
	return who.namedByEmail(ctx, r.Emails)
}

// Window is a time when approving is open: on Days, from From to To (a
// day's minutes, To after From), in Location.
type Window struct {
	Days     []time.Weekday
	From, To int // minutes after midnight, local
	Location *time.Location
}

// Freeze is a time when approving is closed (rejecting always works).
type Freeze struct {
	From, To time.Time
	Reason   string
}

// ConfirmTypeEnvironment makes an approval ask its approver to type the
// task's environment.
const ConfirmTypeEnvironment = "type_environment"

// gate is whether approving is open at now under the policy: closed inside
// a freeze (until it ends) or outside every window (until the next opens).
type gate struct {
	open bool
	why  string // why it is closed, for people
}

// gateAt evaluates the policy's windows and freezes at now.
func gateAt(p *Policy, now time.Time) gate {
	if p == nil {
		return gate{open: true}
	}
	for _, f := range p.Freezes {
		if !now.Before(f.From) && now.Before(f.To) {
			why := "frozen until " + f.To.UTC().Format("2006-01-02 15:04 MST")
			if f.Reason != "" {
				why = f.Reason + ": " + why
			}
			return gate{why: why}
		}
	}
	g := gate{open: true}
	if len(p.Windows) > 0 {
		g.open = false
		for _, w := range p.Windows {
			if w.contains(now) {
				g.open = true
				break
			}
		}
		if !g.open {
			next, w := nextOpening(p.Windows, now)
			g.why = "outside the approval windows"
			if !next.IsZero() {
				g.why += "; opens " + next.In(w.Location).Format("Mon 15:04") + " " + w.Location.String()
			}
		}
	}
	return g
}

// contains reports whether the window is open at now.
func (w Window) contains(now time.Time) bool {
	local := now.In(w.Location)
	if !slices.Contains(w.Days, local.Weekday()) {
		return false
	}
	m := local.Hour()*60 + local.Minute()
	return m >= w.From && m < w.To
}

// bounds are when the window opens and closes on the day of day (a time
// in its location), whether or not that day is one of its days.
func (w Window) bounds(day time.Time) (open, close time.Time) {
	y, mo, d := day.Date()
	return wallClock(y, mo, d, w.From, w.Location), wallClock(y, mo, d, w.To, w.Location)
}

// wallClock is when the clocks of loc read minutes after midnight on the
// day; for a time they skip (the hour a change to daylight saving time
// jumps over), when they jump past it, which is when a window opening or
// closing then does (contains reads the wall clock). time.Date would
// give a time that reads up to an hour off instead.
func wallClock(y int, mo time.Month, d, minutes int, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, minutes/60, minutes%60, 0, 0, loc)
	if h, m, _ := t.Clock(); h*60+m == minutes%(24*60) {
		return t
	}
	// Skipped: t lies within the skipped span of the jump, on one side
	// of it or the other; the jump is the nearer bound of t's zone.
	start, end := t.ZoneBounds()
	if end.IsZero() || t.Sub(start) <= end.Sub(t) {
		return start
	}
	return end
}

// nextOpening is the soonest time after now that one of the windows opens,
// and that window.
func nextOpening(windows []Window, now time.Time) (time.Time, Window) {
	var best time.Time
	var bestW Window
	for _, w := range windows {
		local := now.In(w.Location)
		for i := 0; i <= 7; i++ {
			day := local.AddDate(0, 0, i)
			if !slices.Contains(w.Days, day.Weekday()) {
				continue
			}
			open, _ := w.bounds(day)
			if open.After(now) {
				if best.IsZero() || open.Before(best) {
					best, bestW = open, w
				}
				break
			}
		}
	}
	return best, bestW
}

// nextChange is the soonest time after now at which a window opens or
// closes or a freeze begins or ends: when the message must be redrawn.
func nextChange(p *Policy, now time.Time) time.Time {
	var best time.Time
	consider := func(t time.Time) {
		if t.After(now) && (best.IsZero() || t.Before(best)) {
			best = t
		}
	}
	for _, f := range p.Freezes {
		consider(f.From)
		consider(f.To)
	}
	for _, w := range p.Windows {
		local := now.In(w.Location)
		for i := 0; i <= 7; i++ {
			day := local.AddDate(0, 0, i)
			if !slices.Contains(w.Days, day.Weekday()) {
				continue
			}
			open, close := w.bounds(day)
			consider(open)
			consider(close)
		}
	}
	return best
}

// ApprovingOpen says whether approving is open for the task's policy at
// now, and if not why, for the message ("Frozen until …", "opens Mon 09:00
// Europe/Amsterdam").
func ApprovingOpen(p *Policy, now time.Time) (open bool, why string) {
	g := gateAt(p, now)
	return g.open, g.why
}

// Progress is one require_from entry's count on a task.
type Progress struct {
	Name       string
	Have, Need int
}

// RequirementProgress counts, for each require_from entry, the approvals
// that fill it under the policy's overlap rule (a person fills one entry,
// unless overlap lets them fill every entry they belong to).
func RequirementProgress(t *Task, p *Policy) []Progress {
	if p == nil || len(p.RequireFrom) == 0 {
		return nil
	}
	filled := assignVotes(t.Approvals, p)
	out := make([]Progress, len(p.RequireFrom))
	for i, r := range p.RequireFrom {
		out[i] = Progress{Name: r.Name(), Have: min(filled[i], r.Count), Need: r.Count}
	}
	return out
}

// requirementsMet reports whether every require_from entry is filled.
func requirementsMet(votes []Vote, p *Policy) bool {
	if p == nil {
		return true
	}
	filled := assignVotes(votes, p)
	for i, r := range p.RequireFrom {
		if filled[i] < r.Count {
			return false
		}
	}
	return true
}

// assignVotes fills the entries with the votes: with overlap, every vote
// counts for each entry its person belongs to; without, each person counts
// for one entry, chosen to fill as many entries' slots as possible (a
// bipartite matching of people to slots, by augmenting paths).
func assignVotes(votes []Vote, p *Policy) []int {
	filled := make([]int, len(p.RequireFrom))
	index := map[string]int{}
	for i, r := range p.RequireFrom {
		index[r.Name()] = i
	}
	if p.Overlap {
		for _, v := range votes {
			for _, name := range v.Fills {
				if i, ok := index[name]; ok {
					filled[i]++
				}
			}
		}
		return filled
	}
	// Slots: entry i has RequireFrom[i].Count of them.
	var slotEntry []int
	for i, r := range p.RequireFrom {
		for range r.Count {
			slotEntry = append(slotEntry, i)
		}
	}
	owner := make([]int, len(slotEntry)) // slot → vote index, -1 free
	for i := range owner {
		owner[i] = -1
	}
	canFill := func(v, slot int) bool {
		return slices.Contains(votes[v].Fills, p.RequireFrom[slotEntry[slot]].Name())
	}
	var try func(v int, seen []bool) bool
	try = func(v int, seen []bool) bool {
		for s := range slotEntry {
			if seen[s] || !canFill(v, s) {
				continue
			}
			seen[s] = true
			if owner[s] < 0 || try(owner[s], seen) {
				owner[s] = v
				return true
			}
		}
		return false
	}
	for v := range votes {
		try(v, make([]bool, len(slotEntry)))
	}
	for s, v := range owner {
		if v >= 0 {
			filled[slotEntry[s]]++
		}
	}
	return filled
}
