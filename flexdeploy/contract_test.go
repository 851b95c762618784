package flexdeploy

import (
	"context"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/rest/resttest"
)

// TestExchangeContract: FlexDeploy's client keeps the contract of every
// client sending through rest.Exchange.
func TestExchangeContract(t *testing.T) {
	t.Parallel()
	resttest.Run(t, resttest.Subject{
		Service:  "FlexDeploy",
		DecideOp: "flexdeploy: approve task 8900",
		StatusOp: "flexdeploy: get task 8900",
		Secrets:  []string{testPassword, wantAuth},
		ReadOK:   `{"taskId":8900,"status":"PENDING"}`,
		New: func(t *testing.T, o resttest.Options) resttest.Client {
			c, err := New(Config{
				BaseURL: o.URL, Username: testUser, Password: testPassword, Timeout: o.Timeout,
				Retries: o.Retries, MinBackoff: o.MinBackoff, MaxBackoff: o.MaxBackoff, Sleep: o.Sleep, Now: o.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			return resttest.Client{
				Decide: func(ctx context.Context) error {
					return c.Decide(ctx, task("8900"), approvals.ActionApprove, "ok", false)
				},
				Status: func(ctx context.Context) error { _, err := c.Status(ctx, task("8900")); return err },
			}
		},
	})
}
