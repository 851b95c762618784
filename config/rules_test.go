package config

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// rulesBase is a valid configuration without policies; the tests append
// theirs.
const rulesBase = `
tokens: {signing_keys: [{id: k1, secret: "` + testSecret + `"}]}
`

// loadPolicies loads the base configuration with the YAML of the policies
// key.
func loadPolicies(t *testing.T, policies string) *Config {
	t.Helper()
	c, err := loadBytes("approvalbot.yaml", []byte(rulesBase+"policies:\n"+policies))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return c
}

func problemsOf(t *testing.T, c *Config) []string {
	t.Helper()
	err := c.Validate()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate: %v", err)
	}
	return ve.Problems
}

func TestPolicyRulesLoad(t *testing.T) {
	t.Parallel()
	c := loadPolicies(t, `
  - name: production
    approvers: {groups: [S0RELEASE]}
    required_approvals: 2
    require_from:
      - {name: SRE, group: S0SRE, count: 1}
      - {users: [U1, U2], count: 2}
    overlap: true
    windows:
      - {days: [mon, TUE, wed, thu, fri], from: "09:00", to: "17:30", timezone: Europe/Amsterdam}
      - {days: "sat, sun", from: 10:00, to: "24:00", timezone: America/New_York}
    freezes:
      - {from: 2026-12-20T00:00:00Z, to: "2027-01-04T00:00:00+01:00", reason: Year-end freeze}
    break_glass: {users: [U0ONCALL], groups: [S0ONCALL]}
    confirm: type_environment
    require_sso: true
`)
	if p := problemsOf(t, c); len(p) != 0 {
		t.Fatalf("problems: %q", p)
	}
	got := c.ApprovalPolicies()[0]
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	nyc, _ := time.LoadLocation("America/New_York")
	weekdays := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	want := approvals.Policy{
		RequireFrom: []approvals.Requirement{{Label: "SRE", Group: "S0SRE", Count: 1}, {Users: []string{"U1", "U2"}, Count: 2}},
		Overlap:     true,
		Windows: []approvals.Window{
			{Days: weekdays, From: 9 * 60, To: 17*60 + 30, Location: ams},
			{Days: []time.Weekday{time.Saturday, time.Sunday}, From: 10 * 60, To: 24 * 60, Location: nyc},
		},
		Freezes: []approvals.Freeze{{
			From:   time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC),
			To:     time.Date(2027, 1, 3, 23, 0, 0, 0, time.UTC),
			Reason: "Year-end freeze",
		}},
		BreakGlass: approvals.Approvers{Users: []string{"U0ONCALL"}, Groups: []string{"S0ONCALL"}},
		Confirm:    approvals.ConfirmTypeEnvironment,
		RequireSSO: true,
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"require_from", got.RequireFrom, want.RequireFrom},
		{"overlap", got.Overlap, want.Overlap},
		{"break_glass", got.BreakGlass, want.BreakGlass},
		{"confirm", got.Confirm, want.Confirm},
		{"require_sso", got.RequireSSO, want.RequireSSO},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
	if len(got.Windows) != 2 {
		t.Fatalf("windows %+v", got.Windows)
	}
	for i, w := range got.Windows {
		ww := want.Windows[i]
		if !slices.Equal(w.Days, ww.Days) || w.From != ww.From || w.To != ww.To || w.Location.String() != ww.Location.String() {
			t.Errorf("windows[%d] = %+v, want %+v", i, w, ww)
		}
	}
	if len(got.Freezes) != 1 || !got.Freezes[0].From.Equal(want.Freezes[0].From) || !got.Freezes[0].To.Equal(want.Freezes[0].To) || got.Freezes[0].Reason != want.Freezes[0].Reason {
		t.Errorf("freezes = %+v, want %+v", got.Freezes, want.Freezes)
	}
	// The rules at work: a Saturday noon in New York is open, a Monday
	// 08:00 in Amsterdam is not (and says when it opens), the freeze is.
	for _, tc := range []struct {
		at   time.Time
		open bool
		why  string
	}{
		{time.Date(2026, 6, 6, 12, 0, 0, 0, nyc), true, ""},
		{time.Date(2026, 6, 8, 8, 0, 0, 0, ams), false, "opens Mon 09:00 Europe/Amsterdam"},
		{time.Date(2026, 12, 24, 12, 0, 0, 0, time.UTC), false, "Year-end freeze: frozen until 2027-01-03 23:00 UTC"},
	} {
		if open, why := approvals.ApprovingOpen(&got, tc.at); open != tc.open || !strings.Contains(why, tc.why) {
			t.Errorf("at %s: open %v (%q), want %v (%q)", tc.at, open, why, tc.open, tc.why)
		}
	}
}

// TestPolicyRulesValidation: each invalid form is one problem, named by its
// key path.
func TestPolicyRulesValidation(t *testing.T) {
	t.Parallel()
	const head = "\n  - name: p\n    approvers: {users: [U1, U2, U3]}\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown day", `    windows: [{days: [mon, funday], from: "09:00", to: "17:00", timezone: UTC}]`,
			[]string{`policies[0].windows[0].days[1]: unknown day "funday", must be one of mon, tue, wed, thu, fri, sat, sun`}},
		{"full day names are not days", `    windows: [{days: [monday], from: "09:00", to: "17:00", timezone: UTC}]`,
			[]string{`policies[0].windows[0].days[0]: unknown day "monday", must be one of mon, tue, wed, thu, fri, sat, sun`}},
		{"no days", `    windows: [{from: "09:00", to: "17:00", timezone: UTC}]`,
			[]string{`policies[0].windows[0].days: must name at least one day (mon, tue, wed, thu, fri, sat, sun)`}},
		{"a bad from", `    windows: [{days: [mon], from: "9am", to: "17:00", timezone: UTC}]`,
			[]string{`policies[0].windows[0].from: must be a time of day from "00:00" to "23:59", like "09:00", got "9am"`}},
		{"from 24:00", `    windows: [{days: [mon], from: "24:00", to: "24:00", timezone: UTC}]`,
			[]string{`policies[0].windows[0].from: must be a time of day from "00:00" to "23:59", like "09:00", got "24:00"`}},
		{"a bad to", `    windows: [{days: [mon], from: "09:00", to: "17:60", timezone: UTC}]`,
			[]string{`policies[0].windows[0].to: must be a time of day from "00:01" to "24:00", like "17:00", got "17:60"`}},
		{"to not after from", `    windows: [{days: [mon], from: "22:00", to: "06:00", timezone: UTC}]`,
			[]string{`policies[0].windows[0].to: "06:00" is not after from ("22:00"): a window ends on the day it starts; one past midnight is two windows, one to "24:00" and one from "00:00"`}},
		{"an empty window", `    windows: [{days: [mon], from: "09:00", to: "09:00", timezone: UTC}]`,
			[]string{`policies[0].windows[0].to: "09:00" is not after from ("09:00"): a window ends on the day it starts; one past midnight is two windows, one to "24:00" and one from "00:00"`}},
		{"unknown zone", "    windows:\n      - {days: [mon], from: \"09:00\", to: \"17:00\", timezone: UTC}\n      - {days: [tue], from: \"09:00\", to: \"17:00\", timezone: Mars/Olympus}",
			[]string{`policies[0].windows[1].timezone: unknown time zone "Mars/Olympus"`}},
		{"no zone", `    windows: [{days: [mon], from: "09:00", to: "17:00"}]`,
			[]string{`policies[0].windows[0].timezone: must name an IANA time zone, like Europe/Amsterdam or UTC`}},
		{"the host's zone", `    windows: [{days: [mon], from: "09:00", to: "17:00", timezone: Local}]`,
			[]string{`policies[0].windows[0].timezone: must name an IANA time zone, like Europe/Amsterdam or UTC: Local is whatever the host says`}},
		{"a freeze without its zone", `    freezes: [{from: "2026-12-20T00:00:00", to: 2027-01-04T00:00:00Z}]`,
			[]string{`policies[0].freezes[0].from: must be an RFC 3339 time with its zone, like 2026-12-20T00:00:00Z, or a date, got "2026-12-20T00:00:00"`}},
		{"a freeze of dates, quoted or not", `    freezes: [{from: 2026-12-20, to: "2027-01-04"}]`, nil},
		{"a freeze of a number", `    freezes: [{from: 2026, to: 2027-01-04T00:00:00Z}]`,
			[]string{`policies[0].freezes[0].from: must be an RFC 3339 time with its zone, like 2026-12-20T00:00:00Z, or a date, got a number`}},
		{"a freeze without its end", `    freezes: [{from: 2026-12-20T00:00:00Z, reason: forever}]`,
			[]string{`policies[0].freezes[0].to: must be an RFC 3339 time with its zone, like 2027-01-04T00:00:00Z, or a date, got nothing`}},
		{"a freeze ending before it starts", `    freezes: [{from: 2027-01-04T00:00:00Z, to: 2026-12-20T00:00:00Z}]`,
			[]string{`policies[0].freezes[0].to: 2026-12-20T00:00:00Z is not after from (2027-01-04T00:00:00Z)`}},
		{"an empty freeze", `    freezes: [{from: 2027-01-04T00:00:00Z, to: "2027-01-04T01:00:00+01:00"}]`,
			[]string{`policies[0].freezes[0].to: 2027-01-04T01:00:00+01:00 is not after from (2027-01-04T00:00:00Z)`}},
		{"overlapping freezes", "    freezes:\n      - {from: 2026-12-20T00:00:00Z, to: 2027-01-04T00:00:00Z}\n      - {from: 2027-01-10T00:00:00Z, to: 2027-01-11T00:00:00Z}\n      - {from: 2027-01-03T00:00:00Z, to: 2027-01-10T12:00:00Z}",
			[]string{
				`policies[0].freezes[2]: overlaps freezes[0] (2026-12-20T00:00:00Z to 2027-01-04T00:00:00Z): merge them into one freeze`,
				`policies[0].freezes[2]: overlaps freezes[1] (2027-01-10T00:00:00Z to 2027-01-11T00:00:00Z): merge them into one freeze`,
			}},
		{"touching freezes are fine", "    freezes:\n      - {from: 2026-12-20T00:00:00Z, to: 2027-01-04T00:00:00Z}\n      - {from: 2027-01-04T00:00:00Z, to: 2027-01-05T00:00:00Z}", nil},
		{"a long freeze reason", `    freezes: [{from: 2026-12-20T00:00:00Z, to: 2027-01-04T00:00:00Z, reason: "` + strings.Repeat("x", 201) + `"}]`,
			[]string{`policies[0].freezes[0].reason: must be at most 200 characters, got 201`}},
		{"a count below 1", `    require_from: [{group: S0SRE, count: 0}]`,
			[]string{`policies[0].require_from[0].count: must be at least 1, got 0`}},
		{"no count", `    require_from: [{group: S0SRE}]`,
			[]string{`policies[0].require_from[0].count: must be at least 1, got 0`}},
		{"more than the named users", `    require_from: [{name: leads, users: [U1, U2, u2], count: 3}]`,
			[]string{`policies[0].require_from[0].count: 3 approvals needed but only 2 people are named`}},
		{"named users shared by entries, without overlap", "    require_from:\n      - {name: a, users: [U1, U2], count: 2}\n      - {name: b, users: [U2], count: 1}",
			[]string{`policies[0].require_from: the entries of named users need 3 approvals but only 2 distinct people can give them, as one person counts for one entry (overlap: true lets a person count for every entry they are in)`}},
		{"named users shared by entries, with overlap", "    overlap: true\n    require_from:\n      - {name: a, users: [U1, U2], count: 2}\n      - {name: b, users: [U2], count: 1}", nil},
		{"the order of entries does not matter", "    require_from:\n      - {name: a, users: [U1, U2], count: 1}\n      - {name: b, users: [U1], count: 1}", nil},
		{"neither group nor users", `    require_from: [{name: SRE, count: 1}]`,
			[]string{`policies[0].require_from[0]: give a group, or users and emails, to count approvals from`}},
		{"both group and users", `    require_from: [{name: SRE, group: S0SRE, users: [U1], count: 1}]`,
			[]string{`policies[0].require_from[0]: give a group or users and emails, not both (two entries count both)`}},
		{"an empty user", `    require_from: [{users: [U1, " "], count: 1}]`,
			[]string{`policies[0].require_from[0].users[1]: must not be empty`}},
		{"two entries of one name", "    require_from:\n      - {users: [U1], count: 1}\n      - {users: [U2], count: 1}",
			[]string{`policies[0].require_from[1].name: "named users" is also the name of require_from[0]; give each entry a name of its own`}},
		{"one group twice", "    require_from:\n      - {group: S0SRE, count: 1}\n      - {group: S0SRE, count: 1}",
			[]string{`policies[0].require_from[1].name: "S0SRE" is also the name of require_from[0]; give each entry a name of its own`}},
		{"a long name", `    require_from: [{name: "` + strings.Repeat("n", 41) + `", group: S0SRE, count: 1}]`,
			[]string{`policies[0].require_from[0].name: must be at most 40 characters, got 41`}},
		{"unknown confirm kind", `    confirm: type_project`,
			[]string{`policies[0].confirm: must be type_environment (or left out), got "type_project"`}},
		{"an empty break-glass user", `    break_glass: {users: [""], groups: [S0ONCALL]}`,
			[]string{`policies[0].break_glass.users[0]: must not be empty`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := problemsOf(t, loadPolicies(t, head+tc.yaml+"\n"))
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestPolicyRulesEveryProblemAtOnce: one policy with every rule wrong is
// answered with every problem.
func TestPolicyRulesEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	c := loadPolicies(t, `
  - name: p
    approvers: {users: [U1]}
    require_from: [{users: [U1], count: 2}, {group: S0QA, count: 0}]
    windows: [{days: [someday], from: "25:00", to: "8", timezone: Mars/Olympus}]
    freezes:
      - {from: 2026-12-20T00:00:00Z, to: 2026-12-19T00:00:00Z}
      - {from: yesterday, to: 2027-01-04T00:00:00Z}
    confirm: yes please
`)
	want := []string{
		"policies[0].require_from[0].count",
		"policies[0].require_from[1].count",
		"policies[0].windows[0].days[0]",
		"policies[0].windows[0].from",
		"policies[0].windows[0].to",
		"policies[0].windows[0].timezone",
		"policies[0].freezes[0].to",
		"policies[0].freezes[1].from",
		"policies[0].confirm",
	}
	got := problemsOf(t, c)
	if len(got) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for _, key := range want {
		if !slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, key+": ") }) {
			t.Errorf("no problem names %s:\n%s", key, strings.Join(got, "\n"))
		}
	}
}

// TestPolicyRulesApprovers: require_from's members are approvers, so a
// policy may name nobody else, and they count for the quorum.
func TestPolicyRulesApprovers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{"require_from alone names approvers", `
  - name: p
    required_approvals: 2
    require_from: [{name: SRE, group: S0SRE, count: 1}, {name: QA, group: S0QA, count: 1}]
`, nil},
		{"named users of require_from count for the quorum", `
  - name: p
    approvers: {users: [U1]}
    required_approvals: 3
    require_from: [{name: leads, users: [U2, U3], count: 1}]
`, nil},
		{"but not more than there are", `
  - name: p
    approvers: {users: [U1]}
    required_approvals: 4
    require_from: [{name: leads, users: [U1, U2, U3], count: 1}]
`, []string{"policies[0].required_approvals: 4 approvals needed but at most 3 people are named in approvers"}},
		{"break-glass people are not approvers", `
  - name: p
    break_glass: {users: [U1]}
`, []string{"policies[0].approvers: names nobody: give users, groups, emails or pagerduty.schedules (to let nobody decide tasks from Slack, leave them to no policy)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := problemsOf(t, loadPolicies(t, tc.yaml)); !slices.Equal(got, tc.want) {
				t.Errorf("problems %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPolicyRuleWarnings(t *testing.T) {
	t.Parallel()
	c := loadPolicies(t, `
  - name: p
    approvers: {users: [U1]}
    overlap: true
    freezes:
      - {from: 2025-12-20T00:00:00Z, to: 2026-01-04T00:00:00Z, reason: last year}
      - {from: 2026-12-20T00:00:00Z, to: 2027-01-04T00:00:00Z}
`)
	if p := problemsOf(t, c); len(p) != 0 {
		t.Fatalf("problems %q: an ended freeze is a warning only", p)
	}
	got := c.ruleWarnings(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	want := []string{
		"policies[0].freezes[0]: ended at 2026-01-04T00:00:00Z; it closes nothing any more, remove it",
		"policies[0].overlap: has no effect without require_from",
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings\n%q\nwant\n%q", got, want)
	}
	if all := c.Warnings(); !slices.Contains(all, want[0]) {
		t.Errorf("Warnings() leaves out the rules': %q", all)
	}
}

// TestPolicyRulesFailClosed: should a policy that was never validated reach
// the domain, a window that does not parse never opens and a freeze that
// does not parse never ends.
func TestPolicyRulesFailClosed(t *testing.T) {
	t.Parallel()
	c := &Config{Policies: []PolicyConfig{{
		Name:    "p",
		Windows: []WindowConfig{{Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, From: "00:00", To: "24:00", Timezone: "Mars/Olympus"}},
	}, {
		Name:    "q",
		Freezes: []FreezeConfig{{From: "soon", To: "later"}},
	}}}
	policies := c.ApprovalPolicies()
	for _, at := range []time.Time{time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} {
		for i := range policies {
			if open, _ := approvals.ApprovingOpen(&policies[i], at); open {
				t.Errorf("policy %s is open at %s", policies[i].Name, at)
			}
		}
	}
}

// cookbookBlocks returns the YAML snippets of the policy cookbook.
func cookbookBlocks(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(policiesPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	start := strings.Index(doc, "\n## Policy cookbook\n")
	if start < 0 {
		t.Fatalf("%s has no \"## Policy cookbook\" section", policiesPath)
	}
	section := doc[start+1:]
	if end := regexp.MustCompile(`\n##? `).FindStringIndex(section); end != nil {
		section = section[:end[0]]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(section, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// TestPolicyCookbook: every recipe of the policy cookbook passes
// config check and means what it says.
func TestPolicyCookbook(t *testing.T) {
	t.Parallel()
	blocks := cookbookBlocks(t)
	checks := []func(p approvals.Policy) bool{
		func(p approvals.Policy) bool { return len(p.RequireFrom) == 2 && p.RequiredApprovals == 2 },
		func(p approvals.Policy) bool { return len(p.Windows) > 0 },
		func(p approvals.Policy) bool { return len(p.Freezes) > 0 && !p.BreakGlass.Empty() },
		func(p approvals.Policy) bool { return p.Confirm == approvals.ConfirmTypeEnvironment },
	}
	if len(blocks) != len(checks) {
		t.Fatalf("the cookbook has %d YAML recipes, want %d", len(blocks), len(checks))
	}
	for i, block := range blocks {
		c, err := loadBytes("cookbook.yaml", []byte(rulesBase+block))
		if err != nil {
			t.Errorf("recipe %d does not load: %v\n%s", i+1, err, block)
			continue
		}
		if err := c.Validate(); err != nil {
			t.Errorf("recipe %d is invalid: %v\n%s", i+1, err, block)
			continue
		}
		if policies := c.ApprovalPolicies(); len(policies) == 0 || !checks[i](policies[0]) {
			t.Errorf("recipe %d does not do what it says: %+v", i+1, policies)
		}
	}
}
