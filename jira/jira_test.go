package jira_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/jiratest"
	"github.com/approvalbot/approvalbot/jira"
)

func TestLookupChange(t *testing.T) {
	t.Parallel()
	fake := jiratest.New()
	defer fake.Close()
	fake.Set("OPS-1", "Approved")
	fake.Set("OPS-2", "In Review")
	c, err := jira.New(jira.Config{BaseURL: fake.URL, Email: jiratest.Email, APIToken: jiratest.APIToken, ApprovedStatuses: []string{"approved", "Ready to deploy"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec, err := c.LookupChange(ctx, "OPS-1")
	if err != nil || !rec.Approved || rec.State != "Approved" || rec.URL != fake.URL+"/browse/OPS-1" {
		t.Errorf("OPS-1: %+v, %v", rec, err)
	}
	rec, err = c.LookupChange(ctx, "OPS-2")
	if err != nil || rec.Approved || !strings.Contains(rec.NotApproved, "status In Review") {
		t.Errorf("OPS-2: %+v, %v", rec, err)
	}
	if _, err := c.LookupChange(ctx, "OPS-404"); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("unknown: %v, want ErrNotFound", err)
	}
	fake.SetDown(true)
	if _, err := c.LookupChange(ctx, "OPS-1"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("down: %v", err)
	}
	if m := fake.Mistakes(); len(m) != 0 {
		t.Errorf("the client's requests were off: %v", m)
	}
	fake.SetDown(false)
	bad, _ := jira.New(jira.Config{BaseURL: fake.URL, Email: jiratest.Email, APIToken: "wrong-token-value", ApprovedStatuses: []string{"Approved"}})
	if _, err := bad.LookupChange(ctx, "OPS-1"); err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong-token-value") {
		t.Errorf("wrong token: %v", err)
	}
}
