package servicenow_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/servicenowtest"
	"github.com/approvalbot/approvalbot/servicenow"
)

func TestLookupChange(t *testing.T) {
	t.Parallel()
	fake := servicenowtest.New()
	defer fake.Close()
	start := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	end := start.Add(2 * time.Hour)
	fake.Set(servicenowtest.Change{Number: "CHG1", State: "-1", Approval: "approved", Start: start, End: end})
	fake.Set(servicenowtest.Change{Number: "CHG2", State: "-4", Approval: "requested", Start: start, End: end})
	fake.Set(servicenowtest.Change{Number: "CHG3", State: "0", Approval: "approved", Start: start, End: end})
	fake.Set(servicenowtest.Change{Number: "CHG4", State: "-2", Approval: "approved"})
	c, err := servicenow.New(servicenow.Config{InstanceURL: fake.URL, Username: servicenowtest.Username, Password: servicenowtest.Password})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec, err := c.LookupChange(ctx, "CHG1")
	if err != nil || !rec.Approved || rec.State != "Implement" || !rec.Start.Equal(start) || !rec.End.Equal(end) ||
		!strings.HasPrefix(rec.URL, fake.URL+"/change_request.do?sysparm_query=number%3DCHG1") {
		t.Errorf("CHG1: %+v, %v", rec, err)
	}
	for number, why := range map[string]string{"CHG2": "approval requested, state Assess", "CHG3": "state Review, not Scheduled or Implement", "CHG4": "no planned start and end dates"} {
		rec, err := c.LookupChange(ctx, number)
		if err != nil || rec.Approved || !strings.Contains(rec.NotApproved, why) {
			t.Errorf("%s: %+v, %v; want not approved: %s", number, rec, err, why)
		}
	}
	if _, err := c.LookupChange(ctx, "CHG404"); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("unknown: %v, want ErrNotFound", err)
	}
	fake.SetDown(true)
	if _, err := c.LookupChange(ctx, "CHG1"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("down: %v", err)
	}
	if m := fake.Mistakes(); len(m) != 0 {
		t.Errorf("the client's requests were off: %v", m)
	}
	// Wrong credentials: refused, and the password is in no error.
	bad, _ := servicenow.New(servicenow.Config{InstanceURL: fake.URL, Username: servicenowtest.Username, Password: "wrong-secret-value"})
	fake.SetDown(false)
	_, err = bad.LookupChange(ctx, "CHG1")
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong-secret-value") {
		t.Errorf("wrong password: %v", err)
	}
}
