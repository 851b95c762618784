package dynamodb_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/dynalitetest"
	ddbstore "github.com/approvalbot/approvalbot/store/dynamodb"
	"github.com/approvalbot/approvalbot/store/storetest"
)

// TestCorruptItem puts items the store cannot decode into the due index,
// among sound tasks: Due walks past them naming them, Get, Update and
// Create refuse them as corrupt.
func TestCorruptItem(t *testing.T) {
	t.Parallel()
	client, table := dynalitetest.NewTable(t)
	store := ddbstore.New(client, table)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)

	overdue := newTask("flexdeploy-overdue", now)
	overdue.ExpiresAt = now.Add(-time.Minute)
	working := newTask("flexdeploy-working", now)
	working.Enqueue(approvals.JobPost, now.Add(-10*time.Second))
	soon := newTask("flexdeploy-soon", now)
	soon.ExpiresAt = now.Add(30 * time.Second)
	later := newTask("flexdeploy-later", now) // due after the walk's end
	for _, task := range []*approvals.Task{overdue, working, soon, later} {
		if _, _, err := store.Create(ctx, task); err != nil {
			t.Fatal(err)
		}
	}

	ms := func(at time.Time) *types.AttributeValueMemberN {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(at.UnixMilli(), 10)}
	}
	s := func(v string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: v} }
	bad := []map[string]types.AttributeValue{
		{ // the task's data is not JSON
			"id": s("flexdeploy-garbage"), "version": &types.AttributeValueMemberN{Value: "1"},
			"data":      &types.AttributeValueMemberB{Value: []byte("\x00\xffnot json at all")},
			"due_shard": s("due"), "due_at": ms(now.Add(-30 * time.Second)),
		},
		{ // sound data, but no version to condition writes on
			"id":        s("flexdeploy-no-version"),
			"data":      &types.AttributeValueMemberB{Value: []byte(`{"id":"flexdeploy-no-version","status":"pending"}`)},
			"due_shard": s("due"), "due_at": ms(now),
		},
	}
	var badIDs []string
	for _, item := range bad {
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatalf("PutItem: %v", err)
		}
		badIDs = append(badIDs, item["id"].(*types.AttributeValueMemberS).Value)
	}

	storetest.CheckCorrupt(t, store, now.Add(time.Minute), badIDs, []string{overdue.ID, working.ID, soon.ID})
}
