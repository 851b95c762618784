package webhook

import (
	"context"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/rest/resttest"
)

// TestExchangeContract: the callback client keeps the contract of every
// client sending through rest.Exchange. A receiver has no status read.
func TestExchangeContract(t *testing.T) {
	t.Parallel()
	const query = "token=s3cret-in-the-query"
	resttest.Run(t, resttest.Subject{
		Service:  "the callback receiver",
		DecideOp: "webhook: post decision",
		Secrets:  []string{query},
		New: func(t *testing.T, o resttest.Options) resttest.Client {
			c, err := New(Config{SigningSecret: testSecret, AllowedHosts: []string{"127.0.0.1"}, Timeout: o.Timeout, Now: o.Now})
			if err != nil {
				t.Fatal(err)
			}
			task := decidedTask(t, c, o.URL+"/hook?"+query)
			return resttest.Client{Decide: func(ctx context.Context) error {
				return c.Decide(ctx, task, approvals.ActionApprove, "", false)
			}}
		},
	})
}
