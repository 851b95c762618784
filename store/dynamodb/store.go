package dynamodb

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/approvalbot/approvalbot/approvals"
)

// Retention is how long after its expiry a finished task's record stays
// before DynamoDB's TTL may delete it: long enough to answer status queries
// and audits of recent tasks.
const Retention = 30 * 24 * time.Hour

// Update retries lost races at most this many times; the backoff between
// attempts grows from updateBackoffBase up to updateBackoffMax, jittered.
// Fifty clicks on one message decide after one write and then fail fast in
// fn. Fifty writers that all succeed (votes of a large quorum) take up to
// about 15 attempts on dynalite under load; the bound leaves room for that
// and exists only to end a pathological hot spot.
const (
	defaultUpdateAttempts = 50
	updateBackoffBase     = 5 * time.Millisecond
	updateBackoffMax      = 250 * time.Millisecond
)

// Store keeps tasks in a DynamoDB table made by CreateTable.
type Store struct {
	client         *dynamodb.Client
	table          string
	updateAttempts int
}

var _ approvals.Store = (*Store)(nil)

// New returns a store on the table.
func New(client *dynamodb.Client, table string) *Store {
	return &Store{client: client, table: table, updateAttempts: defaultUpdateAttempts}
}

// Create writes t as version 1 unless a task with its ID exists; then it
// returns that one as it is.
func (s *Store) Create(ctx context.Context, t *approvals.Task) (*approvals.Task, bool, error) {
	if t == nil || t.ID == "" {
		return nil, false, fmt.Errorf("dynamodb: create task: %w", approvals.Invalidf("task has no id"))
	}
	op := "create task " + t.ID
	stored := *t
	stored.Version = 1
	data, err := json.Marshal(&stored)
	if err != nil {
		return nil, false, fmt.Errorf("dynamodb: %s: encode: %w", op, err)
	}
	item := map[string]types.AttributeValue{
		attrID:      &types.AttributeValueMemberS{Value: stored.ID},
		attrVersion: number(stored.Version),
		attrData:    &types.AttributeValueMemberB{Value: data},
	}
	if due, ok := stored.DueAt(); ok {
		item[attrDueShard] = &types.AttributeValueMemberS{Value: dueShard}
		item[attrDueAt] = number(due.UnixMilli())
	}
	if expires, ok := expiry(&stored); ok {
		item[attrTTL] = number(expires)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#id)"),
		ExpressionAttributeNames: map[string]string{"#id": attrID},
	})
	if isConditionFailed(err) {
		existing, err := s.get(ctx, op, stored.ID)
		if err != nil {
			return nil, false, err
		}
		return existing, false, nil
	}
	if err != nil {
		return nil, false, wrapErr(op, s.table, err)
	}
	// Hand back what a Get would return, sharing nothing with t.
	created, err := decode(data, stored.Version)
	if err != nil {
		return nil, false, fmt.Errorf("dynamodb: %s: %w", op, err)
	}
	return created, true, nil
}

// Get reads the task (strongly consistent). Expiry is the caller's business:
// an item TTL has not deleted yet is returned as it is.
func (s *Store) Get(ctx context.Context, id string) (*approvals.Task, error) {
	return s.get(ctx, "get task "+id, id)
}

func (s *Store) get(ctx context.Context, op, id string) (*approvals.Task, error) {
	if id == "" {
		return nil, fmt.Errorf("dynamodb: %s: %w", op, approvals.ErrNotFound)
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            map[string]types.AttributeValue{attrID: &types.AttributeValueMemberS{Value: id}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, wrapErr(op, s.table, err)
	}
	if out.Item == nil {
		return nil, fmt.Errorf("dynamodb: %s: %w", op, approvals.ErrNotFound)
	}
	t, err := decodeItem(out.Item)
	if err != nil {
		return nil, fmt.Errorf("dynamodb: %s: %w", op, err)
	}
	return t, nil
}

// Update reads the task, applies fn and writes the result with one
// UpdateItem conditioned on the version it read; a lost race reads again and
// calls fn again, a bounded number of times.
func (s *Store) Update(ctx context.Context, id string, fn func(*approvals.Task) error) (*approvals.Task, error) {
	op := "update task " + id
	for attempt := 1; ; attempt++ {
		t, err := s.get(ctx, op, id)
		if err != nil {
			return nil, err
		}
		read := t.Version
		if err := fn(t); err != nil {
			return nil, err
		}
		if t.ID != id {
			return nil, fmt.Errorf("dynamodb: %s: the update changed the task's id to %q", op, t.ID)
		}
		t.Version = read + 1
		input, err := s.updateInput(t, read)
		if err != nil {
			return nil, fmt.Errorf("dynamodb: %s: %w", op, err)
		}
		_, err = s.client.UpdateItem(ctx, input)
		if err == nil {
			return t, nil
		}
		if !isConditionFailed(err) {
			return nil, wrapErr(op, s.table, err)
		}
		if attempt >= s.updateAttempts {
			return nil, fmt.Errorf("dynamodb: %s: lost %d races in a row: %w", op, attempt, approvals.ErrConflict)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return nil, fmt.Errorf("dynamodb: %s: %w", op, err)
		}
	}
}

// updateInput writes t over the version read: data and version always, the
// due index keys and the TTL set or removed as t now needs them.
func (s *Store) updateInput(t *approvals.Task, read int64) (*dynamodb.UpdateItemInput, error) {
	data, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	names := map[string]string{
		"#id":      attrID,
		"#data":    attrData,
		"#version": attrVersion,
		"#shard":   attrDueShard,
		"#due":     attrDueAt,
		"#ttl":     attrTTL,
	}
	values := map[string]types.AttributeValue{
		":data": &types.AttributeValueMemberB{Value: data},
		":new":  number(t.Version),
		":old":  number(read),
	}
	set := []string{"#data = :data", "#version = :new"}
	var remove []string
	if due, ok := t.DueAt(); ok {
		set = append(set, "#shard = :shard", "#due = :due")
		values[":shard"] = &types.AttributeValueMemberS{Value: dueShard}
		values[":due"] = number(due.UnixMilli())
	} else {
		remove = append(remove, "#shard", "#due")
	}
	if expires, ok := expiry(t); ok {
		set = append(set, "#ttl = :ttl")
		values[":ttl"] = number(expires)
	} else {
		remove = append(remove, "#ttl")
	}
	expr := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	return &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       map[string]types.AttributeValue{attrID: &types.AttributeValueMemberS{Value: t.ID}},
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String("attribute_exists(#id) AND #version = :old"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}, nil
}

// Due queries the sparse due index: tasks whose DueAt is at or before
// before, earliest first. The index is eventually consistent, so a caller
// re-reads a task (Get or Update) before working on it.
func (s *Store) Due(ctx context.Context, before time.Time, limit int) ([]*approvals.Task, error) {
	if limit <= 0 {
		return nil, nil
	}
	op := "find due tasks"
	input := &dynamodb.QueryInput{
		TableName:              aws.String(s.table),
		IndexName:              aws.String(DueIndex),
		KeyConditionExpression: aws.String("#shard = :shard AND #due <= :before"),
		ExpressionAttributeNames: map[string]string{
			"#shard": attrDueShard,
			"#due":   attrDueAt,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":shard":  &types.AttributeValueMemberS{Value: dueShard},
			":before": number(before.UnixMilli()),
		},
		ScanIndexForward: aws.Bool(true),
	}
	var tasks []*approvals.Task
	for len(tasks) < limit {
		input.Limit = aws.Int32(int32(min(limit-len(tasks), 1000)))
		out, err := s.client.Query(ctx, input)
		if err != nil {
			return nil, wrapErr(op, s.table, err)
		}
		for _, item := range out.Items {
			t, err := decodeItem(item)
			if err != nil {
				return nil, fmt.Errorf("dynamodb: %s: %w", op, err)
			}
			// The index holds milliseconds; drop a task due later within
			// before's millisecond.
			if due, ok := t.DueAt(); ok && !due.After(before) {
				tasks = append(tasks, t)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		input.ExclusiveStartKey = out.LastEvaluatedKey
	}
	// Tasks due within the same millisecond come in no particular order.
	slices.SortStableFunc(tasks, func(a, b *approvals.Task) int {
		da, _ := a.DueAt()
		db, _ := b.DueAt()
		return da.Compare(db)
	})
	return tasks, nil
}

// Ping checks that the table can be reached.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)})
	if err != nil {
		return wrapErr(fmt.Sprintf("ping table %q", s.table), s.table, err)
	}
	return nil
}

// expiry is the ttl attribute's value, when DynamoDB may delete the record:
// only once nothing about the task can happen any more (final, outbox
// done), and then long after its expiry.
func expiry(t *approvals.Task) (int64, bool) {
	if !t.Status.Final() || len(t.Outbox) > 0 {
		return 0, false
	}
	return t.ExpiresAt.Add(Retention).Unix(), true
}

func decodeItem(item map[string]types.AttributeValue) (*approvals.Task, error) {
	data, ok := item[attrData].(*types.AttributeValueMemberB)
	if !ok {
		return nil, fmt.Errorf("record has no %s attribute", attrData)
	}
	v, ok := item[attrVersion].(*types.AttributeValueMemberN)
	if !ok {
		return nil, fmt.Errorf("record has no %s attribute", attrVersion)
	}
	version, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("record's %s: %w", attrVersion, err)
	}
	return decode(data.Value, version)
}

// decode reads a stored task; the version attribute, which the conditional
// writes check, is authoritative.
func decode(data []byte, version int64) (*approvals.Task, error) {
	var t approvals.Task
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	t.Version = version
	return &t, nil
}

func number(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// backoff is a full-jitter exponential delay before attempt+1, so that
// racing writers spread out instead of colliding again.
func backoff(attempt int) time.Duration {
	ceiling := updateBackoffBase << min(attempt-1, 10)
	ceiling = min(ceiling, updateBackoffMax)
	return time.Duration(rand.Int64N(int64(ceiling))) + time.Millisecond
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
