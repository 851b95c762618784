package dynamodb_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/dynalitetest"
	ddbstore "github.com/approvalbot/approvalbot/store/dynamodb"
	"github.com/approvalbot/approvalbot/store/storetest"
)

func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) approvals.Store {
		client, table := dynalitetest.NewTable(t)
		return ddbstore.New(client, table)
	})
}

func newTask(id string, now time.Time) *approvals.Task {
	return &approvals.Task{
		ID:                id,
		Source:            "flexdeploy",
		TaskID:            strings.TrimPrefix(id, "flexdeploy-"),
		Status:            approvals.StatusPending,
		RequiredApprovals: 1,
		Delivery:          approvals.Delivery{State: approvals.DeliveryPending},
		CreatedAt:         now,
		ExpiresAt:         now.Add(time.Hour),
	}
}

// lifecycle is a task's usual writes after intake: the post recorded, the
// decision, the delivery.
var lifecycle = []struct {
	name string
	fn   func(now time.Time) func(*approvals.Task) error
}{
	{"post recorded", func(now time.Time) func(*approvals.Task) error {
		return func(t *approvals.Task) error {
			t.Messages = []approvals.MessageRef{{Chat: "slack", Channel: "C1", TS: "1.2"}}
			t.Outbox = nil
			return nil
		}
	}},
	{"decided", func(now time.Time) func(*approvals.Task) error {
		return func(t *approvals.Task) error {
			t.Status = approvals.StatusApproved
			t.DecidedBy = &approvals.Person{ID: "U1", Name: "Alice"}
			t.DecidedAt = &now
			t.Enqueue(approvals.JobDeliver, now)
			t.Enqueue(approvals.JobUpdate, now)
			return nil
		}
	}},
	{"delivered", func(now time.Time) func(*approvals.Task) error {
		return func(t *approvals.Task) error {
			t.Delivery.State = approvals.DeliveryDelivered
			t.Delivery.DeliveredAt = &now
			t.Outbox = nil
			return nil
		}
	}},
}

// TestRequestsPerLifecycle checks the design's write budget: intake is one
// PutItem, each Update one UpdateItem, reads never write, and nothing scans.
func TestRequestsPerLifecycle(t *testing.T) {
	t.Parallel()
	_, table := dynalitetest.NewTable(t)
	counter := dynalitetest.NewCounter()
	store := ddbstore.New(dynalitetest.NewClient(t, counter.Option()), table)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)

	task := newTask("flexdeploy-requests", now)
	task.Enqueue(approvals.JobPost, now)
	if _, created, err := store.Create(ctx, task); err != nil || !created {
		t.Fatalf("Create: created=%v err=%v", created, err)
	}
	if _, created, err := store.Create(ctx, task); err != nil || created {
		t.Fatalf("repeated Create: created=%v err=%v", created, err)
	}
	for _, step := range lifecycle {
		if _, err := store.Update(ctx, task.ID, step.fn(now)); err != nil {
			t.Fatalf("Update %s: %v", step.name, err)
		}
		if _, err := store.Get(ctx, task.ID); err != nil {
			t.Fatalf("Get: %v", err)
		}
		if _, err := store.Due(ctx, now.Add(time.Hour), "", 10); err != nil {
			t.Fatalf("Due: %v", err)
		}
	}
	// An Update whose fn refuses writes nothing.
	if _, err := store.Update(ctx, task.ID, func(*approvals.Task) error { return approvals.ErrAlreadyDecided }); !errors.Is(err, approvals.ErrAlreadyDecided) {
		t.Fatalf("refused Update: %v", err)
	}

	got := counter.Snapshot()
	want := map[string]int{
		"PutItem":    2, // the intake and its repeat, which writes nothing
		"UpdateItem": 3,
		"Scan":       0,
		"DeleteItem": 0,
	}
	for op, n := range want {
		if got[op] != n {
			t.Errorf("%s calls = %d, want %d (all: %v)", op, got[op], n, got)
		}
	}
	if got["Query"] != len(lifecycle) {
		t.Errorf("Query calls = %d, want %d (all: %v)", got["Query"], len(lifecycle), got)
	}
	if got["PutItem"]-1+got["UpdateItem"] > 4 {
		t.Errorf("a lifecycle took %d writes, the design allows 4", got["PutItem"]-1+got["UpdateItem"])
	}
}

// TestItemAttributes inspects the raw item after each write: the due index
// keys only while the task is due some time, the TTL only once it is final
// with an empty outbox.
func TestItemAttributes(t *testing.T) {
	t.Parallel()
	client, table := dynalitetest.NewTable(t)
	store := ddbstore.New(client, table)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	task := newTask("flexdeploy-attrs", now)
	task.Enqueue(approvals.JobPost, now.Add(time.Second))
	if _, _, err := store.Create(ctx, task); err != nil {
		t.Fatalf("Create: %v", err)
	}

	ms := func(at time.Time) string { return strconv.FormatInt(at.UnixMilli(), 10) }
	wantTTL := strconv.FormatInt(now.Add(time.Hour).Add(ddbstore.Retention).Unix(), 10)
	steps := []struct {
		name    string
		fn      func(*approvals.Task) error
		version string
		dueAt   string // "" when the item must have no due keys
		ttl     string // "" when the item must have no ttl
	}{
		{"created: post job first", nil, "1", ms(now.Add(time.Second)), ""},
		{"posted: pending, due at expiry", lifecycle[0].fn(now), "2", ms(now.Add(time.Hour)), ""},
		{"decided: jobs pending", lifecycle[1].fn(now), "3", ms(now), ""},
		{"delivered: final, outbox empty", lifecycle[2].fn(now), "4", "", wantTTL},
		{"final again with a job: no ttl", func(t *approvals.Task) error {
			t.Enqueue(approvals.JobUpdate, now.Add(time.Minute))
			return nil
		}, "5", ms(now.Add(time.Minute)), ""},
		{"expired, outbox empty", func(t *approvals.Task) error {
			t.Status = approvals.StatusExpired
			t.Outbox = nil
			return nil
		}, "6", "", wantTTL},
	}
	for _, step := range steps {
		if step.fn != nil {
			if _, err := store.Update(ctx, task.ID, step.fn); err != nil {
				t.Fatalf("%s: Update: %v", step.name, err)
			}
		}
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      aws.String(table),
			Key:            map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: task.ID}},
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			t.Fatalf("%s: GetItem: %v", step.name, err)
		}
		item := out.Item
		if got := numberAttr(item, "version"); got != step.version {
			t.Errorf("%s: version = %q, want %q", step.name, got, step.version)
		}
		if _, ok := item["data"].(*types.AttributeValueMemberB); !ok {
			t.Errorf("%s: data is %T, want binary", step.name, item["data"])
		}
		if got := numberAttr(item, "due_at"); got != step.dueAt {
			t.Errorf("%s: due_at = %q, want %q", step.name, got, step.dueAt)
		}
		shard, hasShard := item["due_shard"].(*types.AttributeValueMemberS)
		if (step.dueAt != "") != hasShard || (hasShard && shard.Value != "due") {
			t.Errorf("%s: due_shard = %v, want it exactly while due_at is set", step.name, item["due_shard"])
		}
		if got := numberAttr(item, "ttl"); got != step.ttl {
			t.Errorf("%s: ttl = %q, want %q", step.name, got, step.ttl)
		}
	}
}

func numberAttr(item map[string]types.AttributeValue, name string) string {
	if n, ok := item[name].(*types.AttributeValueMemberN); ok {
		return n.Value
	}
	return ""
}

// TestUpdateGivesUpAfterBound makes every attempt lose its race: Update must
// stop after the bound with ErrConflict, one UpdateItem per attempt.
func TestUpdateGivesUpAfterBound(t *testing.T) {
	t.Parallel()
	client, table := dynalitetest.NewTable(t)
	counter := dynalitetest.NewCounter()
	store := ddbstore.New(dynalitetest.NewClient(t, counter.Option()), table)
	const attempts = 4
	ddbstore.SetUpdateAttempts(store, attempts)
	ctx := t.Context()
	task := newTask("flexdeploy-conflict", time.Now())
	if _, _, err := store.Create(ctx, task); err != nil {
		t.Fatalf("Create: %v", err)
	}
	rival := ddbstore.New(client, table)

	calls := 0
	_, err := store.Update(ctx, task.ID, func(t *approvals.Task) error {
		calls++
		// Another writer gets in between every read and write.
		_, err := rival.Update(ctx, task.ID, func(t *approvals.Task) error {
			t.Reason = "rival " + strconv.Itoa(calls)
			return nil
		})
		return err
	})
	if !errors.Is(err, approvals.ErrConflict) {
		t.Fatalf("Update: err = %v, want ErrConflict", err)
	}
	if calls != attempts {
		t.Errorf("fn called %d times, want %d", calls, attempts)
	}
	if got := counter.Count("UpdateItem"); got != attempts {
		t.Errorf("UpdateItem calls = %d, want %d", got, attempts)
	}
	got, err := store.Get(ctx, task.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Version != attempts+1 || got.Reason != "rival "+strconv.Itoa(attempts) {
		t.Errorf("stored: version %d reason %q, want the rivals' writes only", got.Version, got.Reason)
	}
}

func TestUpdateRejectsChangedID(t *testing.T) {
	t.Parallel()
	client, table := dynalitetest.NewTable(t)
	store := ddbstore.New(client, table)
	task := newTask("flexdeploy-id", time.Now())
	if _, _, err := store.Create(t.Context(), task); err != nil {
		t.Fatalf("Create: %v", err)
	}
	_, err := store.Update(t.Context(), task.ID, func(t *approvals.Task) error {
		t.ID = "flexdeploy-other"
		return nil
	})
	if err == nil {
		t.Fatal("Update changing the id: no error")
	}
	if _, err := store.Get(t.Context(), "flexdeploy-other"); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("Get of the changed id: err = %v, want ErrNotFound", err)
	}
}

func TestCreateRejectsEmptyID(t *testing.T) {
	t.Parallel()
	client, table := dynalitetest.NewTable(t)
	store := ddbstore.New(client, table)
	_, _, err := store.Create(t.Context(), newTask("", time.Now()))
	if !errors.Is(err, approvals.ErrInvalid) {
		t.Errorf("Create without id: err = %v, want ErrInvalid", err)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	unreachable, err := ddbstore.NewClient(context.Background(), ddbstore.Options{
		Region:      "us-east-1",
		Endpoint:    "http://127.0.0.1:1",
		Credentials: credentials.NewStaticCredentialsProvider("x", "y", ""),
	}, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	down := ddbstore.New(unreachable, "approvalbot")
	missing := ddbstore.New(dynalitetest.NewClient(t), "no-such-table")

	tests := []struct {
		name     string
		call     func(ctx context.Context) error
		wantIs   error
		notIs    error
		contains []string
	}{
		{"unreachable ping", down.Ping, approvals.ErrUnavailable, nil, nil},
		{"unreachable get", func(ctx context.Context) error {
			_, err := down.Get(ctx, "flexdeploy-1")
			return err
		}, approvals.ErrUnavailable, approvals.ErrNotFound, nil},
		{"unreachable create", func(ctx context.Context) error {
			_, _, err := down.Create(ctx, newTask("flexdeploy-1", time.Now()))
			return err
		}, approvals.ErrUnavailable, nil, nil},
		{"unreachable due", func(ctx context.Context) error {
			_, err := down.Due(ctx, time.Now(), "", 10)
			return err
		}, approvals.ErrUnavailable, nil, nil},
		{"missing table ping", missing.Ping, approvals.ErrUnavailable, nil,
			[]string{`"no-such-table"`, "approvalbot dynamodb create-table"}},
		{"missing table update", func(ctx context.Context) error {
			_, err := missing.Update(ctx, "flexdeploy-1", func(*approvals.Task) error { return nil })
			return err
		}, approvals.ErrUnavailable, approvals.ErrNotFound, []string{`"no-such-table"`, "create-table"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.call(t.Context())
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want it to wrap %v", err, tt.wantIs)
			}
			if tt.notIs != nil && errors.Is(err, tt.notIs) {
				t.Errorf("err = %v, must not wrap %v", err, tt.notIs)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %q, want it to contain %q", err, s)
				}
			}
		})
	}
}
