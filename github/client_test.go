package github

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/githubtest"
	"github.com/approvalbot/approvalbot/internal/httpfault"
)

type fixture struct {
	gh     *githubtest.Server
	c      *Client
	sleeps *httpfault.Sleeps
	run    githubtest.Run
}

func newFixture(t *testing.T, gh *githubtest.Server, cfg Config) *fixture {
	t.Helper()
	if gh == nil {
		gh = githubtest.New()
		t.Cleanup(gh.Close)
	}
	f := &fixture{gh: gh, sleeps: &httpfault.Sleeps{}}
	cfg.AppID = githubtest.AppID
	cfg.PrivateKey = []byte(gh.PrivateKeyPEM())
	cfg.WebhookSecret = testWebhookSecret
	cfg.APIURL = gh.URL()
	cfg.Sleep = f.sleeps.Sleep
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	f.run = gh.NewRun("acme/shop", "production")
	return f
}

// task takes the run's webhook in as the intake would and returns the task.
func (f *fixture) task(t *testing.T, env string) *approvals.Task {
	t.Helper()
	body := f.run.Payload(githubtest.Event{Environment: env, Creator: "octocat"})
	sub, err := f.c.Parse(headerFunc(githubtest.Headers(testWebhookSecret, "deployment_protection_rule", "d", body)), body)
	if err != nil {
		t.Fatal(err)
	}
	return &approvals.Task{
		ID: approvals.TaskRecordID(sub.Source, sub.TaskID), Source: sub.Source, TaskID: sub.TaskID, Context: sub.Context,
		Status: approvals.StatusPending, Extra: sub.Extra, Policy: "production", RequiredApprovals: 1,
		Messages: []approvals.MessageRef{{Chat: "slack", Channel: "C0PROD", TS: "1.2"}}, ExpiresAt: time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC),
	}
}

func decided(t *approvals.Task, s approvals.Status) *approvals.Task {
	c := *t
	c.Status = s
	return &c
}

func TestDecideReviewsTheRule(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		action approvals.Action
		state  string
	}{{approvals.ActionApprove, "approved"}, {approvals.ActionReject, "rejected"}} {
		t.Run(tc.state, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil, Config{})
			task := f.task(t, "production")
			notes := "Approved in Slack by Alice (U1) at 2026-11-22T14:02:00Z"
			if err := f.c.Decide(context.Background(), task, tc.action, notes, false); err != nil {
				t.Fatal(err)
			}
			reviews := f.gh.Reviews()
			if len(reviews) != 1 || !reviews[0].Applied || reviews[0].Code != http.StatusNoContent {
				t.Fatalf("reviews %+v", reviews)
			}
			rv := reviews[0]
			if rv.Path != "/repos/acme/shop/actions/runs/"+task.Extra[ExtraRunID]+"/deployment_protection_rule" ||
				rv.Accept != githubtest.MediaType || rv.APIVersion != githubtest.APIVersion || rv.ContentType != "application/json" ||
				rv.Review() != (githubtest.Review{EnvironmentName: "production", State: tc.state, Comment: notes}) {
				t.Fatalf("review %+v", rv)
			}
			tokens := f.gh.IssuedTokens()
			if len(tokens) != 1 || rv.Auth != "Bearer "+tokens[0] {
				t.Fatalf("review authorised with %q, tokens issued %v", rv.Auth, tokens)
			}
			if g := f.gh.Gate(f.run.ID, "production"); g.State != tc.state {
				t.Errorf("gate %+v", g)
			}
		})
	}
}

// The access-token request carries a JWT that verifies with the App's
// public key: RS256, iss the App's id, iat a minute ago, exp at most ten
// minutes ahead.
func TestAppJWT(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	before := time.Now()
	if err := f.c.Decide(context.Background(), f.task(t, "production"), approvals.ActionApprove, "ok", false); err != nil {
		t.Fatal(err)
	}
	reqs := f.gh.TokenRequests()
	if len(reqs) != 1 || reqs[0].Code != http.StatusCreated || reqs[0].Path != "/app/installations/"+f.task(t, "production").Extra[ExtraInstallationID]+"/access_tokens" {
		t.Fatalf("token requests %+v", reqs)
	}
	var claims jwt.RegisteredClaims
	tok, err := jwt.ParseWithClaims(reqs[0].Token(), &claims, func(*jwt.Token) (any, error) { return f.gh.PublicKey(), nil },
		jwt.WithValidMethods([]string{"RS256"}))
	if err != nil || !tok.Valid {
		t.Fatalf("the JWT does not verify with the App's public key: %v", err)
	}
	if claims.Issuer != githubtest.AppID || claims.IssuedAt == nil || claims.ExpiresAt == nil {
		t.Fatalf("claims %+v", claims)
	}
	if iat := claims.IssuedAt.Time; iat.After(before.Add(-59*time.Second)) || iat.Before(before.Add(-2*time.Minute)) {
		t.Errorf("iat %v is not about a minute before %v", iat, before)
	}
	if exp := claims.ExpiresAt.Time; exp.After(time.Now().Add(10*time.Minute)) || exp.Sub(claims.IssuedAt.Time) > 10*time.Minute {
		t.Errorf("exp %v is more than 10 minutes ahead", exp)
	}
	if reqs[0].Body != tokenPermissions {
		t.Errorf("token request body %q", reqs[0].Body)
	}
}

func TestTokenIsCachedUntilAMinuteBeforeItExpires(t *testing.T) {
	t.Parallel()
	gh := githubtest.New()
	t.Cleanup(gh.Close)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	gh.SetNow(clock)
	f := newFixture(t, gh, Config{Now: clock})
	task := f.task(t, "production")

	// Many at once: one mint.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.c.Status(context.Background(), task); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(gh.TokenRequests()); n != 1 {
		t.Fatalf("%d token requests for 20 concurrent reads, want 1", n)
	}
	advance(58 * time.Minute)
	if _, err := f.c.Status(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	if n := len(gh.TokenRequests()); n != 1 {
		t.Fatalf("%d token requests 58 minutes on, want the cached token", n)
	}
	advance(90 * time.Second) // 30 s before it expires
	if _, err := f.c.Status(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	reqs := gh.TokenRequests()
	if len(reqs) != 2 {
		t.Fatalf("%d token requests within the last minute, want a new token", len(reqs))
	}
	reads := gh.Reads()
	if first, last := reads[0], reads[len(reads)-1]; last.Auth == first.Auth || len(gh.IssuedTokens()) != 2 {
		t.Errorf("the last read used the old token")
	}
}

func TestRevokedTokenIsReplaced(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	task := f.task(t, "production")
	// A 401 to the review: the token is dropped, the review may mend.
	f.gh.SetAnswer(func(c githubtest.Call) *githubtest.Answer {
		if c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/deployment_protection_rule") {
			return &githubtest.Answer{Status: 401, Body: `{"message":"Bad credentials"}`}
		}
		return nil
	})
	err := f.c.Decide(context.Background(), task, approvals.ActionApprove, "ok", false)
	if err == nil || approvals.IsPermanent(err) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Decide after a 401 = %v, want an error that may mend", err)
	}
	f.gh.SetAnswer(nil)
	if err := f.c.Decide(context.Background(), task, approvals.ActionApprove, "ok", false); err != nil {
		t.Fatal(err)
	}
	if n := len(f.gh.TokenRequests()); n != 2 {
		t.Errorf("%d token requests, want a second after the 401", n)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("waiting", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil, Config{})
		task := f.task(t, "production")
		for _, tt := range []*approvals.Task{task, decided(task, approvals.StatusApproved)} {
			if s, err := f.c.Status(ctx, tt); err != nil || s != approvals.StatusPending {
				t.Fatalf("Status of a waiting environment = %v, %v", s, err)
			}
		}
		reads := f.gh.Reads()
		if len(reads) != 2 || reads[0].Path != "/repos/acme/shop/actions/runs/"+task.Extra[ExtraRunID]+"/pending_deployments" || reads[0].Accept != githubtest.MediaType {
			t.Fatalf("reads %+v", reads)
		}
	})
	t.Run("reviewed by an earlier attempt", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil, Config{})
		task := f.task(t, "production")
		if err := f.c.Decide(ctx, task, approvals.ActionReject, "no", false); err != nil {
			t.Fatal(err)
		}
		s, err := f.c.Status(ctx, decided(task, approvals.StatusRejected))
		if err != nil || s != approvals.StatusRejected {
			t.Fatalf("Status = %v, %v; want the outcome delivered", s, err)
		}
		expired := decided(task, approvals.StatusExpired)
		expired.OnExpiry = approvals.ExpiryReject
		if s, err := f.c.Status(ctx, expired); err != nil || s != approvals.StatusRejected {
			t.Fatalf("Status of an expiry rejected = %v, %v", s, err)
		}
	})
	t.Run("pending here, not listed, run still going", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil, Config{})
		other := f.gh.NewRun("acme/shop", "production", "staging")
		f.run = other
		task := f.task(t, "staging")
		f.gh.SetAnswer(func(c githubtest.Call) *githubtest.Answer {
			if strings.HasSuffix(c.Path, "/pending_deployments") {
				return &githubtest.Answer{Body: `[]`} // GitHub not caught up yet
			}
			return nil
		})
		if s, err := f.c.Status(ctx, task); err != nil || s != approvals.StatusPending {
			t.Fatalf("Status = %v, %v; want pending while the run goes on", s, err)
		}
	})
	t.Run("run cancelled", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil, Config{})
		task := f.task(t, "production")
		f.gh.CancelRun(f.run.ID)
		if s, err := f.c.Status(ctx, task); err != nil || s != approvals.StatusExpired {
			t.Fatalf("Status = %v, %v; want expired", s, err)
		}
	})
	t.Run("a proxy's page", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil, Config{})
		f.gh.SetAnswer(func(c githubtest.Call) *githubtest.Answer {
			if c.Method == http.MethodGet {
				return &githubtest.Answer{Body: `<html>sign in</html>`}
			}
			return nil
		})
		if _, err := f.c.Status(ctx, f.task(t, "production")); err == nil || approvals.IsPermanent(err) {
			t.Fatalf("Status = %v, want an error that may mend", err)
		}
	})
	t.Run("reads are retried", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil, Config{})
		f.gh.SetAnswer(httpfault.Script[githubtest.Call](&githubtest.Answer{Status: 502}, &githubtest.Answer{Status: 502}, nil))
		if s, err := f.c.Status(ctx, f.task(t, "production")); err != nil || s != approvals.StatusPending {
			t.Fatalf("Status = %v, %v", s, err)
		}
		if n := len(f.sleeps.Waits()); n != 2 {
			t.Errorf("%d waits, want 2", n)
		}
	})
}

func TestDecideAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("a second review is ErrToolDecided", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil, Config{})
		task := f.task(t, "production")
		if err := f.c.Decide(ctx, task, approvals.ActionApprove, "ok", false); err != nil {
			t.Fatal(err)
		}
		err := f.c.Decide(ctx, task, approvals.ActionApprove, "ok", false)
		if !errors.Is(err, approvals.ErrToolDecided) || !approvals.IsPermanent(err) || !strings.Contains(err.Error(), githubtest.MessageAlreadyReviewed) {
			t.Fatalf("second review = %v", err)
		}
	})
	t.Run("a cancelled run", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil, Config{})
		task := f.task(t, "production")
		f.gh.CancelRun(f.run.ID)
		if err := f.c.Decide(ctx, task, approvals.ActionApprove, "ok", false); !errors.Is(err, approvals.ErrToolDecided) {
			t.Fatalf("review of a cancelled run = %v", err)
		}
		later := decided(task, approvals.StatusApproved)
		if err := f.c.Decide(ctx, later, approvals.ActionApprove, "ok", true); !errors.Is(err, approvals.ErrToolDecided) {
			t.Fatalf("a later review of a cancelled run = %v, want ErrToolDecided still", err)
		}
	})
	t.Run("an environment with other rules", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil, Config{})
		task := f.task(t, "production")
		f.gh.AddOtherRule(f.run.ID, "production")
		if err := f.c.Decide(ctx, task, approvals.ActionApprove, "ok", false); err != nil {
			t.Fatal(err)
		}
		// Still listed (it waits for the reviewers): the documented case
		// that a status read cannot tell apart.
		if s, _ := f.c.Status(ctx, decided(task, approvals.StatusApproved)); s != approvals.StatusPending {
			t.Fatalf("Status = %v", s)
		}
		// As a first attempt, "already reviewed" is someone else's review:
		// a refusal. As a later one, it answers the earlier attempt.
		if err := f.c.Decide(ctx, task, approvals.ActionApprove, "ok", false); !errors.Is(err, approvals.ErrToolDecided) {
			t.Fatalf("repeat as a first attempt = %v", err)
		}
		// The outbox's word decides, not the task's attempts: a first
		// attempt resumed after a crash has none recorded, and is a repeat.
		later := decided(task, approvals.StatusApproved)
		if later.Delivery.Attempts != 0 {
			t.Fatalf("attempts = %d", later.Delivery.Attempts)
		}
		if err := f.c.Decide(ctx, later, approvals.ActionApprove, "ok", true); err != nil {
			t.Fatalf("repeat = %v, want delivered", err)
		}
		if g := f.gh.Gate(f.run.ID, "production"); g.State != githubtest.GateApproved || len(f.gh.Reviews()) != 3 {
			t.Errorf("gate %+v", g)
		}
	})
	for _, tc := range []struct {
		name       string
		fault      func(gh *githubtest.Server)
		answer     *githubtest.Answer
		permanent  bool
		retryAfter time.Duration
		want       string
		applied    bool
	}{
		{name: "late", fault: func(gh *githubtest.Server) { gh.SetLateAnswers(1) }, want: "did not answer within", applied: true},
		{name: "dropped", fault: func(gh *githubtest.Server) { gh.SetDroppedAnswers(1) }, want: "closed the connection", applied: true},
		{name: "500", fault: func(gh *githubtest.Server) { gh.SetFailFirst(1) }, want: "500"},
		{name: "404", answer: &githubtest.Answer{Status: 404, Body: `{"message":"Not Found"}`}, permanent: true, want: "the App is not installed"},
		{name: "403", answer: &githubtest.Answer{Status: 403, Body: `{"message":"Resource not accessible by integration"}`}, permanent: true, want: "Resource not accessible"},
		{name: "rate limited", answer: &githubtest.Answer{Status: 403, Header: map[string]string{"Retry-After": "60"}, Body: `{"message":"You have exceeded a secondary rate limit"}`},
			retryAfter: time.Minute, want: "secondary rate limit"},
		{name: "429", answer: &githubtest.Answer{Status: 429}, want: "429"},
		{name: "redirect", answer: &githubtest.Answer{Status: 301, Header: map[string]string{"Location": "https://elsewhere/"}}, permanent: true, want: "redirect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil, Config{Timeout: 300 * time.Millisecond})
			task := f.task(t, "production")
			if tc.fault != nil {
				tc.fault(f.gh)
			}
			if tc.answer != nil {
				f.gh.SetAnswer(func(c githubtest.Call) *githubtest.Answer {
					if strings.HasSuffix(c.Path, "/deployment_protection_rule") {
						return tc.answer
					}
					return nil
				})
			}
			err := f.c.Decide(ctx, task, approvals.ActionApprove, "ok", false)
			if err == nil || !strings.Contains(err.Error(), tc.want) || approvals.IsPermanent(err) != tc.permanent {
				t.Fatalf("Decide = %v (permanent %v), want saying %q, permanent %v", err, approvals.IsPermanent(err), tc.want, tc.permanent)
			}
			if after, _ := approvals.RetryAfter(err); after != tc.retryAfter {
				t.Errorf("retry after %v, want %v", after, tc.retryAfter)
			}
			reviews := f.gh.Reviews()
			if len(reviews) != 1 || reviews[0].Applied != tc.applied {
				t.Fatalf("reviews %+v: want exactly one, applied %v", reviews, tc.applied)
			}
			for _, secret := range f.gh.IssuedTokens() {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows the installation token")
				}
			}
		})
	}
}

func TestTokenRefusals(t *testing.T) {
	t.Parallel()
	gh := githubtest.New()
	t.Cleanup(gh.Close)
	other := githubtest.New() // another App: its key is not this App's
	t.Cleanup(other.Close)
	c, err := New(Config{AppID: githubtest.AppID, PrivateKey: []byte(other.PrivateKeyPEM()), WebhookSecret: testWebhookSecret, APIURL: gh.URL(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := gh.NewRun("acme/shop", "production")
	body := r.Payload(githubtest.Event{Environment: "production", Creator: "octocat"})
	sub, err := c.Parse(headerFunc(githubtest.Headers(testWebhookSecret, "deployment_protection_rule", "d", body)), body)
	if err != nil {
		t.Fatal(err)
	}
	task := &approvals.Task{ID: "github-1", Source: Source, TaskID: sub.TaskID, Status: approvals.StatusApproved, Extra: sub.Extra}
	err = c.Decide(context.Background(), task, approvals.ActionApprove, "ok", false)
	if !approvals.IsPermanent(err) || !strings.Contains(err.Error(), "installation token: GitHub answered 401") {
		t.Fatalf("Decide with another App's key = %v", err)
	}
	if n := len(gh.Reviews()); n != 0 {
		t.Fatalf("%d reviews without a token", n)
	}
	reqs := gh.TokenRequests()
	if len(reqs) != 1 || strings.Contains(err.Error(), reqs[0].Token()) {
		t.Errorf("token requests %d, or the error shows the JWT", len(reqs))
	}
}

func TestAnnounce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	task := f.task(t, "production")
	if extra, err := f.c.Announce(context.Background(), task, waiting(task)); err != nil || extra != nil {
		t.Fatalf("Announce = %v, %v", extra, err)
	}
	reports := f.gh.StatusReports()
	want := "Waiting for approval in Slack channel C0PROD (policy production, expires 2026-11-22T18:00:00Z)"
	if len(reports) != 1 || reports[0].Review() != (githubtest.Review{EnvironmentName: "production", Comment: want}) ||
		reports[0].Body != `{"environment_name":"production","comment":"`+want+`"}` {
		t.Fatalf("reports %+v", reports)
	}
	if g := f.gh.Gate(f.run.ID, "production"); g.State != githubtest.GateWaiting || len(g.Reports) != 1 {
		t.Errorf("a status report decided something: %+v", g)
	}
	if _, err := f.c.Announce(context.Background(), decided(task, approvals.StatusApproved), waiting(decided(task, approvals.StatusApproved))); err != nil || len(f.gh.StatusReports()) != 1 {
		t.Errorf("announced a decided task: %v", err)
	}
}

func TestEnterpriseServer(t *testing.T) {
	t.Parallel()
	gh := githubtest.NewWithPrefix("/api/v3")
	t.Cleanup(gh.Close)
	f := newFixture(t, gh, Config{})
	task := f.task(t, "production")
	if !strings.Contains(task.Extra[ExtraCallbackURL], "/api/v3/repos/") {
		t.Fatalf("callback %q", task.Extra[ExtraCallbackURL])
	}
	if err := f.c.Decide(context.Background(), task, approvals.ActionApprove, "ok", false); err != nil {
		t.Fatal(err)
	}
	if reqs := gh.TokenRequests(); len(reqs) != 1 || !strings.HasPrefix(reqs[0].Path, "/api/v3/app/installations/") {
		t.Fatalf("token requests %+v", reqs)
	}
	if s, err := f.c.Status(context.Background(), decided(task, approvals.StatusApproved)); err != nil || s != approvals.StatusApproved {
		t.Fatalf("Status = %v, %v", s, err)
	}
}

func TestRuleRefusesTasksFromElsewhere(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	task := f.task(t, "production")
	task.Extra[ExtraCallbackURL] = "https://evil.example.com/repos/acme/shop/actions/runs/1/deployment_protection_rule"
	err := f.c.Decide(context.Background(), task, approvals.ActionApprove, "ok", false)
	if !approvals.IsPermanent(err) || !strings.Contains(err.Error(), "deployment_callback_url") {
		t.Fatalf("Decide = %v", err)
	}
	if n := len(f.gh.Calls()); n != 0 {
		t.Fatalf("%d calls for a task whose callback is elsewhere", n)
	}
}

func TestStringHidesSecrets(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	for _, s := range []string{f.c.String(), f.c.GoString()} {
		if strings.Contains(s, testWebhookSecret) || strings.Contains(s, "PRIVATE KEY") {
			t.Errorf("String() = %q", s)
		}
	}
}

// waiting is the line the core hands Announce, with Slack registered.
func waiting(t *approvals.Task) string {
	if t == nil {
		return ""
	}
	chats, err := approvals.NewChats(approvals.Chat{Name: "slack", DisplayName: "Slack", Primary: true, PostsByDefault: true})
	if err != nil {
		panic(err)
	}
	return approvals.WaitingLine(t, chats)
}
