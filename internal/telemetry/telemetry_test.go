package telemetry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// dueStore is an approvals.Store whose Due answers err (nil: one due task).
type dueStore struct {
	approvals.Store
	err error
}

func (s dueStore) Due(context.Context, time.Time, approvals.Cursor, int) (approvals.DuePage, error) {
	if s.err != nil {
		return approvals.DuePage{}, s.err
	}
	return approvals.DuePage{Tasks: []*approvals.Task{{ID: "t1", Status: approvals.StatusPending, ExpiresAt: time.Now().Add(-time.Minute)}}}, nil
}

func scrape(t *testing.T, m *Metrics) (int, string) {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// A store that cannot be read fails no scrape: every other series stays
// fresh, and approvalbot_outbox_due_readable says what happened.
func TestScrapeSurvivesAnUnreadableStore(t *testing.T) {
	t.Parallel()
	down := New()
	down.WatchOutbox(dueStore{err: errors.New("store down")})
	down.SlackRateLimited("chat.update")
	code, body := scrape(t, down)
	if code != http.StatusOK || !strings.Contains(body, "approvalbot_outbox_due_readable 0") ||
		strings.Contains(body, "approvalbot_outbox_due_tasks ") || !strings.Contains(body, "approvalbot_slack_rate_limited_total") {
		t.Fatalf("with the store down: %d\n%s", code, body)
	}
	up := New()
	up.WatchOutbox(dueStore{})
	code, body = scrape(t, up)
	if code != http.StatusOK || !strings.Contains(body, "approvalbot_outbox_due_readable 1") || !strings.Contains(body, "approvalbot_outbox_due_tasks 1") {
		t.Fatalf("with the store up: %d\n%s", code, body)
	}
}
