package azuredevops

import (
	"context"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/rest/resttest"
)

// TestExchangeContract: the Azure DevOps client keeps the contract of
// every client sending through rest.Exchange.
func TestExchangeContract(t *testing.T) {
	t.Parallel()
	resttest.Run(t, resttest.Subject{
		Service:  "Azure DevOps",
		DecideOp: "azure devops: complete check",
		StatusOp: "azure devops: read check status",
		Secrets:  []string{fixtureToken(t)},
		ReadOK:   `{"value":[],"count":0}`,
		New: func(t *testing.T, o resttest.Options) resttest.Client {
			c, _ := newTestClient(t, func(cfg *Config) {
				cfg.Timeout, cfg.Retries, cfg.MinBackoff, cfg.MaxBackoff = o.Timeout, o.Retries, o.MinBackoff, o.MaxBackoff
				cfg.Sleep, cfg.Now = o.Sleep, o.Now
			})
			task := newTask(t, o.URL+"/org/")
			return resttest.Client{
				Decide: func(ctx context.Context) error { return c.Decide(ctx, task, approvals.ActionApprove, "ok", false) },
				Status: func(ctx context.Context) error { _, err := c.Status(ctx, task); return err },
			}
		},
	})
}
