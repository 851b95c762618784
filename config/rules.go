package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// The keys of a policy that ask more of an approval than a quorum (see
// approvals.Policy): approvals from each of several groups, change windows
// and freezes, break-glass, type-to-confirm.

// RequirementConfig is one entry of require_from: count approvals from the
// members of a user group, or from the users named (one or the other).
type RequirementConfig struct {
	// Name labels the entry on the message ("SRE 1/1"); the group's
	// mention, or "named users", when left out.
	Name  string   `mapstructure:"name"`
	Group string   `mapstructure:"group"`
	Users []string `mapstructure:"users"`
	// Emails name people in any chat (Slack, Teams, the web).
	Emails []string `mapstructure:"emails"`
	Count  int      `mapstructure:"count"`
}

// WindowConfig is a time when approving is open: on Days, from From to To
// ("09:00", "17:00"; To may be "24:00"), in the IANA time zone Timezone.
type WindowConfig struct {
	Days     []string `mapstructure:"days"`
	From     string   `mapstructure:"from"`
	To       string   `mapstructure:"to"`
	Timezone string   `mapstructure:"timezone"`
}

// FreezeConfig is a time when approving is closed; rejecting still works.
// From and To are RFC 3339 times (2026-12-20T00:00:00Z) or dates
// (2026-12-20, midnight UTC), and hold what YAML makes of one: a time.Time
// when unquoted (YAML reads a time without an offset as UTC), text when
// quoted. parseInstant reads both.
type FreezeConfig struct {
	From   any    `mapstructure:"from"`
	To     any    `mapstructure:"to"`
	Reason string `mapstructure:"reason"`
}

// BreakGlassConfig names who may approve their own task, outside the
// windows and inside a freeze, with a written reason.
type BreakGlassConfig struct {
	Users  []string `mapstructure:"users"`
	Groups []string `mapstructure:"groups"`
	// Emails name people in any chat.
	Emails []string `mapstructure:"emails"`
	// PagerDuty names whoever is on call on its schedules.
	PagerDuty PagerDutyApproversConfig `mapstructure:"pagerduty"`
}

// maxRequirementNameChars bounds a require_from entry's name: the message
// shows every entry on one line.
const maxRequirementNameChars = 40

// maxFreezeReasonChars bounds a freeze's reason: it is shown on the message
// and in every refusal while the freeze lasts.
const maxFreezeReasonChars = 200

// dayNames are the days a window may name, in the config's words.
var dayNames = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// parseDay reads a day name (mon … sun, any case).
func parseDay(s string) (time.Weekday, bool) {
	i := slices.Index(dayNames, strings.ToLower(strings.TrimSpace(s)))
	if i < 0 {
		return 0, false
	}
	return time.Weekday((i + 1) % 7), true // time.Sunday is 0
}

// parseClock reads "HH:MM" (24-hour) as minutes after midnight. "24:00",
// the end of the day, is accepted only where end says so.
func parseClock(s string, end bool) (int, bool) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 {
		return 0, false
	}
	hour, err1 := strconv.Atoi(h)
	minute, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hour < 0 || minute < 0 || minute > 59 {
		return 0, false
	}
	if hour == 24 && minute == 0 && end {
		return 24 * 60, true
	}
	if hour > 23 {
		return 0, false
	}
	return hour*60 + minute, true
}

// loadZone loads an IANA time zone by name. "Local" is refused: it is
// whatever the host says, and a container says UTC.
func loadZone(name string) (*time.Location, error) {
	name = strings.TrimSpace(name)
	if name == "" || strings.EqualFold(name, "local") {
		return nil, fmt.Errorf("no zone")
	}
	return time.LoadLocation(name)
}

// parseInstant reads a freeze's from or to: a time YAML parsed, or text
// in RFC 3339 with its zone offset, or a date (midnight UTC).
func parseInstant(v any) (time.Time, error) {
	switch v := v.(type) {
	case time.Time:
		return v, nil
	case string:
		s := strings.TrimSpace(v)
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, nil
		}
		return time.Parse(time.DateOnly, s)
	}
	return time.Time{}, fmt.Errorf("not a time")
}

// describeInstant is what a problem says a freeze's from or to is: text
// quoted, a time in RFC 3339, else what kind of value it is.
func describeInstant(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case time.Time:
		return v.Format(time.RFC3339)
	}
	return describeValue(v)
}

// validateRules checks the policy's require_from, windows, freezes,
// break_glass and confirm; key is the policy's path ("policies[0]").
func validateRules(p *problems, key string, pol PolicyConfig) {
	validateRequireFrom(p, key, pol)
	for i, w := range pol.Windows {
		validateWindow(p, fmt.Sprintf("%s.windows[%d]", key, i), w)
	}
	validateFreezes(p, key, pol.Freezes)
	for _, l := range []struct {
		name string
		ids  []string
	}{{"users", pol.BreakGlass.Users}, {"groups", pol.BreakGlass.Groups}, {"emails", pol.BreakGlass.Emails}} {
		for j, id := range l.ids {
			switch {
			case strings.TrimSpace(id) == "":
				p.addf(fmt.Sprintf("%s.break_glass.%s[%d]", key, l.name, j), "must not be empty")
			case l.name == "emails" && !strings.Contains(id, "@"):
				p.addf(fmt.Sprintf("%s.break_glass.emails[%d]", key, j), "%q is not an email address", id)
			}
		}
	}
	if pol.Confirm != "" && pol.Confirm != approvals.ConfirmTypeEnvironment {
		p.addf(key+".confirm", "must be %s (or left out), got %q", approvals.ConfirmTypeEnvironment, pol.Confirm)
	}
}

func validateRequireFrom(p *problems, key string, pol PolicyConfig) {
	names := map[string]int{}
	for i, r := range pol.RequireFrom {
		k := fmt.Sprintf("%s.require_from[%d]", key, i)
		hasGroup, hasUsers := r.Group != "", len(r.Users)+len(r.Emails) > 0
		switch {
		case !hasGroup && !hasUsers:
			p.addf(k, "give a group, or users and emails, to count approvals from")
		case hasGroup && hasUsers:
			p.addf(k, "give a group or users and emails, not both (two entries count both)")
		case hasGroup && strings.TrimSpace(r.Group) == "":
			p.addf(k+".group", "must not be empty")
		}
		for j, u := range r.Users {
			if strings.TrimSpace(u) == "" {
				p.addf(fmt.Sprintf("%s.users[%d]", k, j), "must not be empty")
			}
		}
		for j, e := range r.Emails {
			if !strings.Contains(e, "@") {
				p.addf(fmt.Sprintf("%s.emails[%d]", k, j), "%q is not an email address", e)
			}
		}
		if r.Count < 1 {
			p.addf(k+".count", "must be at least 1, got %d", r.Count)
		} else if hasUsers && !hasGroup {
			if n := distinct(append(slices.Clone(r.Users), r.Emails...)); r.Count > n {
				p.addf(k+".count", "%d approvals needed but only %d people are named", r.Count, n)
			}
		}
		if n := len([]rune(r.Name)); n > maxRequirementNameChars {
			p.addf(k+".name", "must be at most %d characters, got %d", maxRequirementNameChars, n)
		}
		// Votes are filed under the entry's name: two entries of one name
		// would fill each other.
		name := requirement(r).Name()
		if j, dup := names[strings.ToLower(name)]; dup {
			p.addf(k+".name", "%q is also the name of require_from[%d]; give each entry a name of its own", name, j)
		} else {
			names[strings.ToLower(name)] = i
		}
	}
	if !pol.Overlap {
		if need, can := namedUsersCapacity(pol.RequireFrom); can < need {
			p.addf(key+".require_from", "the entries of named users need %d approvals but only %d distinct people can give them, as one person counts for one entry (overlap: true lets a person count for every entry they are in)", need, can)
		}
	}
}

// namedUsersCapacity is, over the entries naming users, how many approvals
// they need and how many distinct people can fill at most, a person filling
// one entry: a bipartite matching of people to the entries' slots. Entries
// of a group are left out: their members are not known offline.
func namedUsersCapacity(entries []RequirementConfig) (need, can int) {
	var slots [][]string // each slot: the people who may fill it
	for _, r := range entries {
		if r.Group != "" || r.Count < 1 {
			continue
		}
		users := make([]string, 0, len(r.Users)+len(r.Emails))
		for _, u := range append(slices.Clone(r.Users), r.Emails...) {
			if u = strings.ToLower(strings.TrimSpace(u)); u != "" && !slices.Contains(users, u) {
				users = append(users, u)
			}
		}
		// An entry that names fewer people than its count is a problem
		// of its own; here only the slots its people can fill count.
		for range min(r.Count, len(users)) {
			slots = append(slots, users)
			need++
		}
	}
	owner := map[string]int{} // person → slot
	var assign func(slot int, seen map[string]bool) bool
	assign = func(slot int, seen map[string]bool) bool {
		for _, u := range slots[slot] {
			if seen[u] {
				continue
			}
			seen[u] = true
			if s, taken := owner[u]; !taken || assign(s, seen) {
				owner[u] = slot
				return true
			}
		}
		return false
	}
	for s := range slots {
		if assign(s, map[string]bool{}) {
			can++
		}
	}
	return need, can
}

func validateWindow(p *problems, key string, w WindowConfig) {
	if len(w.Days) == 0 {
		p.addf(key+".days", "must name at least one day (%s)", strings.Join(dayNames, ", "))
	}
	for j, d := range w.Days {
		if _, ok := parseDay(d); !ok {
			p.addf(fmt.Sprintf("%s.days[%d]", key, j), "unknown day %q, must be one of %s", d, strings.Join(dayNames, ", "))
		}
	}
	from, fromOK := parseClock(w.From, false)
	if !fromOK {
		p.addf(key+".from", `must be a time of day from "00:00" to "23:59", like "09:00", got %q`, w.From)
	}
	to, toOK := parseClock(w.To, true)
	if !toOK {
		p.addf(key+".to", `must be a time of day from "00:01" to "24:00", like "17:00", got %q`, w.To)
	}
	if fromOK && toOK && to <= from {
		p.addf(key+".to", "%q is not after from (%q): a window ends on the day it starts; one past midnight is two windows, one to \"24:00\" and one from \"00:00\"", w.To, w.From)
	}
	switch _, err := loadZone(w.Timezone); {
	case strings.TrimSpace(w.Timezone) == "":
		p.addf(key+".timezone", "must name an IANA time zone, like Europe/Amsterdam or UTC")
	case strings.EqualFold(strings.TrimSpace(w.Timezone), "local"):
		p.addf(key+".timezone", "must name an IANA time zone, like Europe/Amsterdam or UTC: Local is whatever the host says")
	case err != nil:
		p.addf(key+".timezone", "unknown time zone %q", w.Timezone)
	}
}

// validateFreezes checks each freeze, and that no two overlap: the message
// says when a freeze ends, which two overlapping ones would make untrue.
func validateFreezes(p *problems, key string, freezes []FreezeConfig) {
	type span struct{ from, to time.Time }
	spans := make([]*span, len(freezes))
	for i, f := range freezes {
		k := fmt.Sprintf("%s.freezes[%d]", key, i)
		from, errFrom := parseInstant(f.From)
		if errFrom != nil {
			p.addf(k+".from", "must be an RFC 3339 time with its zone, like 2026-12-20T00:00:00Z, or a date, got %s", describeInstant(f.From))
		}
		to, errTo := parseInstant(f.To)
		if errTo != nil {
			p.addf(k+".to", "must be an RFC 3339 time with its zone, like 2027-01-04T00:00:00Z, or a date, got %s", describeInstant(f.To))
		}
		if n := len([]rune(f.Reason)); n > maxFreezeReasonChars {
			p.addf(k+".reason", "must be at most %d characters, got %d", maxFreezeReasonChars, n)
		}
		if errFrom != nil || errTo != nil {
			continue
		}
		if !to.After(from) {
			p.addf(k+".to", "%s is not after from (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
			continue
		}
		spans[i] = &span{from, to}
		for j := range i {
			if o := spans[j]; o != nil && from.Before(o.to) && o.from.Before(to) {
				p.addf(k, "overlaps freezes[%d] (%s to %s): merge them into one freeze", j, o.from.Format(time.RFC3339), o.to.Format(time.RFC3339))
			}
		}
	}
}

// ruleWarnings are what the policies' rules allow but probably do not mean,
// at now: a freeze that has ended, overlap without require_from.
func (c *Config) ruleWarnings(now time.Time) []string {
	var w []string
	for i, pol := range c.Policies {
		key := fmt.Sprintf("policies[%d]", i)
		for j, f := range pol.Freezes {
			if to, err := parseInstant(f.To); err == nil && !to.After(now) {
				w = append(w, fmt.Sprintf("%s.freezes[%d]: ended at %s; it closes nothing any more, remove it", key, j, to.Format(time.RFC3339)))
			}
		}
		if pol.Overlap && len(pol.RequireFrom) == 0 {
			w = append(w, key+".overlap: has no effect without require_from")
		}
	}
	return w
}

// namedPeople is how many distinct people the policy names as approvers,
// in approvers and in require_from, and whether it names a group too (then
// nobody can count them offline).
func namedPeople(pol PolicyConfig) (people int, groups bool) {
	users := slices.Clone(pol.Approvers.Users)
	// Groups and schedules have members nobody can count offline.
	groups = len(pol.Approvers.Groups) > 0 || len(pol.Approvers.PagerDuty.Schedules) > 0
	for _, r := range pol.RequireFrom {
		users = append(users, r.Users...)
		users = append(users, r.Emails...)
		groups = groups || r.Group != ""
	}
	return distinct(users) + distinct(pol.Approvers.Emails), groups
}

// requirement converts one require_from entry.
func requirement(r RequirementConfig) approvals.Requirement {
	return approvals.Requirement{
		Label:  strings.TrimSpace(r.Name),
		Group:  strings.TrimSpace(r.Group),
		Users:  slices.Clone(r.Users),
		Emails: slices.Clone(r.Emails),
		Count:  r.Count,
	}
}

// policyRules fills in the domain's policy the keys of this file. The
// configuration has been validated; should a window or a freeze not parse
// all the same, it closes approving rather than opening it (fail closed).
func policyRules(out *approvals.Policy, p PolicyConfig) {
	for _, r := range p.RequireFrom {
		out.RequireFrom = append(out.RequireFrom, requirement(r))
	}
	out.Overlap = p.Overlap
	for _, w := range p.Windows {
		loc, errZone := loadZone(w.Timezone)
		from, okFrom := parseClock(w.From, false)
		to, okTo := parseClock(w.To, true)
		win := approvals.Window{From: from, To: to, Location: loc}
		if errZone != nil || !okFrom || !okTo {
			win = approvals.Window{Location: time.UTC} // never open
		} else {
			for _, d := range w.Days {
				if day, ok := parseDay(d); ok && !slices.Contains(win.Days, day) {
					win.Days = append(win.Days, day)
				}
			}
		}
		out.Windows = append(out.Windows, win)
	}
	for _, f := range p.Freezes {
		from, errFrom := parseInstant(f.From)
		to, errTo := parseInstant(f.To)
		if errFrom != nil || errTo != nil {
			from, to = time.Time{}, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC) // always frozen
		}
		out.Freezes = append(out.Freezes, approvals.Freeze{From: from, To: to, Reason: strings.TrimSpace(f.Reason)})
	}
	out.BreakGlass = approvals.Approvers{Users: slices.Clone(p.BreakGlass.Users), Groups: slices.Clone(p.BreakGlass.Groups),
		Emails:          slices.Clone(p.BreakGlass.Emails),
		OnCallSchedules: onCallSchedules(p.BreakGlass.PagerDuty)}
	out.Confirm = p.Confirm
	out.RequireSSO = p.RequireSSO
}
