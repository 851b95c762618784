package github

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/githubtest"
	"github.com/approvalbot/approvalbot/internal/rest/resttest"
)

// TestExchangeContract: the GitHub App's client keeps the contract of
// every client sending through rest.Exchange; the suite's server mints
// its installation tokens.
func TestExchangeContract(t *testing.T) {
	t.Parallel()
	const token = "ghs_contractInstallationToken0123456789"
	resttest.Run(t, resttest.Subject{
		Service:  "GitHub",
		DecideOp: "github: review deployment protection rule",
		StatusOp: "github: read pending deployments",
		Secrets:  []string{token},
		ReadOK:   `[{"environment":{"name":"production"}}]`,
		Setup: func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/access_tokens") {
				return false
			}
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"token":"` + token + `","expires_at":"2026-11-22T15:02:00Z"}`))
			return true
		},
		New: func(t *testing.T, o resttest.Options) resttest.Client {
			c, err := New(Config{
				AppID: githubtest.AppID, PrivateKey: []byte(githubtest.GenerateKeyPEM()), WebhookSecret: testWebhookSecret,
				APIURL: o.URL, Timeout: o.Timeout, Retries: o.Retries, MinBackoff: o.MinBackoff, MaxBackoff: o.MaxBackoff, Sleep: o.Sleep, Now: o.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			task := &approvals.Task{Source: Source, TaskID: "7-production", Status: approvals.StatusPending, Extra: map[string]string{
				ExtraCallbackURL:    o.URL + "/repos/acme/shop/actions/runs/7/deployment_protection_rule",
				ExtraInstallationID: "1", ExtraRepository: "acme/shop", ExtraEnvironment: "production",
			}}
			return resttest.Client{
				Decide: func(ctx context.Context) error { return c.Decide(ctx, task, approvals.ActionApprove, "ok", false) },
				Status: func(ctx context.Context) error { _, err := c.Status(ctx, task); return err },
			}
		},
	})
}
