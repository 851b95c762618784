package dynamodb_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/dynalitetest"
	ddbstore "github.com/approvalbot/approvalbot/store/dynamodb"
)

// healthID is the key Ping writes (see the package comment).
const healthID = "#health"

// TestPingWrites checks that readiness is a write, one request each time,
// and that its item never passes for a task: not in Due, not found by Get
// or Update, refused by Create.
func TestPingWrites(t *testing.T) {
	t.Parallel()
	client, table := dynalitetest.NewTable(t)
	counter := dynalitetest.NewCounter()
	store := ddbstore.New(dynalitetest.NewClient(t, counter.Option()), table)
	ctx := t.Context()

	for range 3 {
		if err := store.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}
	if got := counter.Snapshot(); got["UpdateItem"] != 3 || len(got) != 1 {
		t.Errorf("3 Pings made %v, want 3 UpdateItem and nothing else", got)
	}
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: healthID}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out.Item["pinged_at"].(*types.AttributeValueMemberN); !ok {
		t.Errorf("health item = %v, want a pinged_at number", out.Item)
	}
	for _, attr := range []string{"due_shard", "due_at", "ttl", "data"} {
		if _, ok := out.Item[attr]; ok {
			t.Errorf("health item has %s: %v", attr, out.Item)
		}
	}

	counter.Reset()
	if _, err := store.Get(ctx, healthID); !errors.Is(err, approvals.ErrNotFound) || errors.Is(err, approvals.ErrCorrupt) {
		t.Errorf("Get(%s): err = %v, want ErrNotFound", healthID, err)
	}
	called := false
	if _, err := store.Update(ctx, healthID, func(*approvals.Task) error { called = true; return nil }); !errors.Is(err, approvals.ErrNotFound) || called {
		t.Errorf("Update(%s): err = %v, fn called %v; want ErrNotFound without fn", healthID, err, called)
	}
	if got := counter.Snapshot(); len(got) != 0 {
		t.Errorf("Get and Update of the health id made requests: %v", got)
	}
	task := newTask(healthID, time.Now())
	if _, _, err := store.Create(ctx, task); !errors.Is(err, approvals.ErrInvalid) {
		t.Errorf("Create(%s): err = %v, want ErrInvalid", healthID, err)
	}
	page, err := store.Due(ctx, time.Now().Add(100*365*24*time.Hour), "", 10)
	if err != nil || len(page.Tasks) != 0 || len(page.Corrupt) != 0 {
		t.Errorf("Due after Ping = %+v, %v; want nothing", page, err)
	}
}
