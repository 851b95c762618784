package approvals_test

import (
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// TestWindowAcrossMidnightAndDST: a change window from Saturday 22:00 to
// Sunday 06:00 in Europe/Amsterdam (two windows, as the configuration
// writes one across midnight) on the nights the clocks change: the last
// Sunday of March (02:00 CET becomes 03:00 CEST, 01:00 UTC) and of October
// (03:00 CEST becomes 02:00 CET, 01:00 UTC). It is open for the whole
// night by the wall clock, seven hours in March and nine in October, and
// says when it opens while closed. A window opening in the hour that
// March skips opens when the clocks jump, and says so.
func TestWindowAcrossMidnightAndDST(t *testing.T) {
	t.Parallel()
	loc := mustZone(t, "Europe/Amsterdam")
	p := &approvals.Policy{Windows: []approvals.Window{
		{Days: []time.Weekday{time.Saturday}, From: 22 * 60, To: 24 * 60, Location: loc},
		{Days: []time.Weekday{time.Sunday}, From: 0, To: 6 * 60, Location: loc},
	}}
	utc := func(s string) time.Time {
		at, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	for _, tc := range []struct {
		at   string
		open bool
		says string
	}{
		// March: Saturday 22:00 CET is 21:00 UTC; Sunday 06:00 CEST is 04:00 UTC.
		{"2026-03-28T20:59:00Z", false, "opens Sat 22:00 Europe/Amsterdam"},
		{"2026-03-28T21:00:00Z", true, ""},
		{"2026-03-28T22:59:00Z", true, ""}, // 23:59 CET, before midnight
		{"2026-03-28T23:00:00Z", true, ""}, // 00:00 CET, Sunday
		{"2026-03-29T00:59:00Z", true, ""}, // 01:59 CET
		{"2026-03-29T01:00:00Z", true, ""}, // 03:00 CEST
		{"2026-03-29T03:59:00Z", true, ""}, // 05:59 CEST
		{"2026-03-29T04:00:00Z", false, "opens Sat 22:00 Europe/Amsterdam"},
		// October: Saturday 22:00 CEST is 20:00 UTC; Sunday 06:00 CET is 05:00 UTC.
		{"2026-10-24T19:59:00Z", false, "opens Sat 22:00 Europe/Amsterdam"},
		{"2026-10-24T20:00:00Z", true, ""},
		{"2026-10-24T22:00:00Z", true, ""}, // 00:00 CEST, Sunday
		{"2026-10-25T00:30:00Z", true, ""}, // 02:30 CEST
		{"2026-10-25T01:30:00Z", true, ""}, // 02:30 CET, the second time
		{"2026-10-25T04:59:00Z", true, ""}, // 05:59 CET
		{"2026-10-25T05:00:00Z", false, "opens Sat 22:00 Europe/Amsterdam"},
	} {
		open, why := approvals.ApprovingOpen(p, utc(tc.at))
		if open != tc.open || !strings.Contains(why, tc.says) {
			t.Errorf("%s (%s): open=%v %q, want open=%v saying %q", tc.at, utc(tc.at).In(loc).Format("Mon 15:04 MST"), open, why, tc.open, tc.says)
		}
	}

	gap := &approvals.Policy{Windows: []approvals.Window{{Days: []time.Weekday{time.Sunday}, From: 2*60 + 30, To: 5 * 60, Location: loc}}}
	for _, tc := range []struct {
		at   string
		open bool
		says string
	}{
		{"2026-03-29T00:59:00Z", false, "opens Sun 03:00 Europe/Amsterdam"}, // 01:59 CET; 02:30 never comes
		{"2026-03-29T01:00:00Z", true, ""},                                  // 03:00 CEST
		{"2026-03-29T02:59:00Z", true, ""},                                  // 04:59 CEST
		{"2026-03-29T03:00:00Z", false, "opens Sun 02:30 Europe/Amsterdam"}, // next week, as written
	} {
		open, why := approvals.ApprovingOpen(gap, utc(tc.at))
		if open != tc.open || !strings.Contains(why, tc.says) {
			t.Errorf("window from 02:30 at %s (%s): open=%v %q, want open=%v saying %q", tc.at, utc(tc.at).In(loc).Format("Mon 15:04 MST"), open, why, tc.open, tc.says)
		}
	}
}
