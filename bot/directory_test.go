package bot

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/slacktest"
)

func newTestDirectory(t *testing.T) (*Directory, *slacktest.Server, *fakeClock) {
	t.Helper()
	fake := newFakeSlack(t)
	fake.Groups["S2"] = []string{"U1", "U2"}
	fake.Groups["S3"] = []string{"U3"}
	fake.Emails["lead@example.com"] = "U9"
	clock := &fakeClock{now: renderNow}
	// Unpaced methods on the test's clock: these tests are about the
	// cache; a 429's Retry-After still holds, on that clock (pace_test.go).
	pacer := NewPacer(PaceConfig{Methods: map[string]Limit{}, Now: clock.Now})
	n := notifierFor(fake, func(c *Config) { c.Now, c.Pacer = clock.Now, pacer })
	return NewDirectory(n, time.Minute), fake, clock
}

func TestDirectoryGroupMembersCached(t *testing.T) {
	t.Parallel()
	dir, fake, clock := newTestDirectory(t)
	ctx := context.Background()

	members, err := dir.GroupMembers(ctx, "S2")
	if err != nil {
		t.Fatalf("GroupMembers: %v", err)
	}
	if !slices.Equal(members, []string{"U1", "U2"}) {
		t.Errorf("members = %v", members)
	}
	calls := fake.CallsTo("usergroups.users.list")
	if len(calls) != 1 || calls[0].Form.Get("usergroup") != "S2" {
		t.Fatalf("calls = %+v", calls)
	}
	checkToken(t, calls)

	members[0] = "UCHANGED" // a caller's change must not reach the cache
	clock.Advance(59 * time.Second)
	again, err := dir.GroupMembers(ctx, "S2")
	if err != nil || !slices.Equal(again, []string{"U1", "U2"}) {
		t.Errorf("cached GroupMembers = %v, %v", again, err)
	}
	if n := len(fake.CallsTo("usergroups.users.list")); n != 1 {
		t.Errorf("second call within ttl made a request (%d in all)", n)
	}

	clock.Advance(time.Second)
	if _, err := dir.GroupMembers(ctx, "S2"); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.CallsTo("usergroups.users.list")); n != 2 {
		t.Errorf("call after ttl made %d requests in all, want 2", n)
	}

	if _, err := dir.GroupMembers(ctx, "S3"); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.CallsTo("usergroups.users.list")); n != 3 {
		t.Errorf("another group made %d requests in all, want 3", n)
	}
}

func TestDirectoryUserIDByEmail(t *testing.T) {
	t.Parallel()
	dir, fake, clock := newTestDirectory(t)
	ctx := context.Background()

	id, err := dir.UserIDByEmail(ctx, "Lead@Example.com")
	if err != nil || id != "U9" {
		t.Fatalf("UserIDByEmail = %q, %v; want U9", id, err)
	}
	if id, err := dir.UserIDByEmail(ctx, "lead@example.com"); err != nil || id != "U9" {
		t.Fatalf("cached UserIDByEmail = %q, %v", id, err)
	}
	if n := len(fake.CallsTo("users.lookupByEmail")); n != 1 {
		t.Errorf("made %d lookups, want 1 (cached, case-insensitive)", n)
	}
	clock.Advance(time.Minute)
	if _, err := dir.UserIDByEmail(ctx, "lead@example.com"); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.CallsTo("users.lookupByEmail")); n != 2 {
		t.Errorf("made %d lookups after ttl, want 2", n)
	}

	for i := 0; i < 2; i++ {
		_, err := dir.UserIDByEmail(ctx, "nobody@example.com")
		if !errors.Is(err, approvals.ErrNotFound) {
			t.Errorf("unknown email: err = %v, want ErrNotFound", err)
		}
	}
	if n := len(fake.CallsTo("users.lookupByEmail")); n != 4 {
		t.Errorf("made %d lookups in all, want 4 (not-found is not cached)", n)
	}
}

func TestDirectoryErrorsNotCached(t *testing.T) {
	t.Parallel()
	dir, fake, clock := newTestDirectory(t)
	ctx := context.Background()
	fake.SetAnswer(func(slacktest.Call) *slacktest.Answer { return &slacktest.Answer{Status: 500} })
	if _, err := dir.GroupMembers(ctx, "S2"); err == nil || approvals.IsPermanent(err) {
		t.Fatalf("GroupMembers on a 500 = %v, want a retryable error", err)
	}
	if _, err := dir.UserIDByEmail(ctx, "lead@example.com"); err == nil || errors.Is(err, approvals.ErrNotFound) {
		t.Fatalf("UserIDByEmail on a 500 = %v, want a retryable error", err)
	}
	fake.SetAnswer(func(slacktest.Call) *slacktest.Answer {
		return &slacktest.Answer{Status: 429, Header: map[string]string{"Retry-After": "3"}}
	})
	if _, err := dir.GroupMembers(ctx, "S2"); err == nil {
		t.Fatal("GroupMembers on a 429 succeeded")
	} else if after, ok := approvals.RetryAfter(err); !ok || after != 3*time.Second {
		t.Errorf("RetryAfter = %v, %v", after, ok)
	}
	fake.SetAnswer(nil)
	clock.Advance(3 * time.Second) // Slack's Retry-After
	if members, err := dir.GroupMembers(ctx, "S2"); err != nil || len(members) != 2 {
		t.Fatalf("GroupMembers after recovery = %v, %v", members, err)
	}
	if id, err := dir.UserIDByEmail(ctx, "lead@example.com"); err != nil || id != "U9" {
		t.Fatalf("UserIDByEmail after recovery = %v, %v", id, err)
	}
	if n := len(fake.Calls()); n != 5 {
		t.Errorf("made %d requests, want 5 (errors not cached)", n)
	}
}

func TestDirectoryConcurrent(t *testing.T) {
	t.Parallel()
	dir, _, clock := newTestDirectory(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				if _, err := dir.GroupMembers(ctx, "S2"); err != nil {
					t.Error(err)
				}
				if _, err := dir.UserIDByEmail(ctx, "lead@example.com"); err != nil {
					t.Error(err)
				}
				clock.Advance(10 * time.Second)
			}
		}()
	}
	wg.Wait()
}

func TestDirectoryAnswersTheApproverChecks(t *testing.T) {
	t.Parallel()
	dir, _, _ := newTestDirectory(t)
	ctx := context.Background()
	members, err := dir.GroupMembers(ctx, "S2")
	if err != nil || !slices.Contains(members, "U2") || slices.Contains(members, "U7") {
		t.Errorf("GroupMembers(S2) = %v, %v; want U2 and not U7", members, err)
	}
	if id, err := dir.UserIDByEmail(ctx, "lead@example.com"); err != nil || id != "U9" {
		t.Errorf("UserIDByEmail(lead) = %q, %v; want U9", id, err)
	}
	if _, err := dir.UserIDByEmail(ctx, "nobody@example.com"); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("UserIDByEmail(nobody) = %v; want ErrNotFound", err)
	}
}
