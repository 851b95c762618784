package pagerduty

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/pagerdutytest"
)

const token = "pd-test-token-0123456789"

func TestOnCallEmails(t *testing.T) {
	t.Parallel()
	pd := pagerdutytest.New(token)
	defer pd.Close()
	pd.SetOnCall("PSCHED1", "alice@example.com")
	pd.SetOnCall("PSCHED2", "bob@example.com", "alice@example.com")
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	c := New(Config{APIURL: pd.URL(), Token: token, Clock: func() time.Time { return now }})
	got, err := c.OnCallEmails(context.Background(), []string{"PSCHED2", "PSCHED1"})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"alice@example.com", "bob@example.com"}) {
		t.Fatalf("on call %v", got)
	}
	if m := pd.Mistakes(); len(m) > 0 {
		t.Fatalf("the fake refused: %v", m)
	}
	// Cached for a minute, in any order of the schedules; then asked again.
	pd.SetOnCall("PSCHED1", "carol@example.com")
	if _, err := c.OnCallEmails(context.Background(), []string{"PSCHED1", "PSCHED2"}); err != nil || pd.Calls() != 1 {
		t.Fatalf("cached answer: %v, %d calls", err, pd.Calls())
	}
	now = now.Add(CacheTTL)
	got, err = c.OnCallEmails(context.Background(), []string{"PSCHED1"})
	if err != nil || !slices.Equal(got, []string{"carol@example.com"}) || pd.Calls() != 2 {
		t.Fatalf("after the cache: %v, %v, %d calls", got, err, pd.Calls())
	}
}

func TestOnCallPages(t *testing.T) {
	t.Parallel()
	pd := pagerdutytest.New(token)
	defer pd.Close()
	var many []string
	for i := range 150 {
		many = append(many, "p"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String()+"@example.com")
	}
	pd.SetOnCall("PBIG", many...)
	got, err := New(Config{APIURL: pd.URL(), Token: token}).OnCallEmails(context.Background(), []string{"PBIG"})
	if err != nil || len(got) != 150 || pd.Calls() != 2 {
		t.Fatalf("%d emails, %v, %d calls", len(got), err, pd.Calls())
	}
}

// A failed look-up is an error that never quotes the token, and is not
// cached.
func TestOnCallFailure(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusTooManyRequests, http.StatusInternalServerError} {
		pd := pagerdutytest.New(token)
		pd.SetFailure(status)
		c := New(Config{APIURL: pd.URL(), Token: token})
		_, err := c.OnCallEmails(context.Background(), []string{"PSCHED1"})
		if err == nil || strings.Contains(err.Error(), token) {
			t.Fatalf("status %d: err %v", status, err)
		}
		pd.SetFailure(0)
		if _, err := c.OnCallEmails(context.Background(), []string{"PSCHED1"}); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
		pd.Close()
	}
	// A wrong token is refused by the fake as by PagerDuty.
	pd := pagerdutytest.New(token)
	defer pd.Close()
	if _, err := New(Config{APIURL: pd.URL(), Token: "wrong-token"}).OnCallEmails(context.Background(), []string{"P1"}); err == nil || len(pd.Mistakes()) != 1 {
		t.Fatalf("wrong token: %v, mistakes %v", err, pd.Mistakes())
	}
	// Nothing listening.
	pd2 := pagerdutytest.New(token)
	url := pd2.URL()
	pd2.Close()
	if _, err := New(Config{APIURL: url, Token: token}).OnCallEmails(context.Background(), []string{"P1"}); err == nil {
		t.Fatal("no error with PagerDuty down")
	}
}
