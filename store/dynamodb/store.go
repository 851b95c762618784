package dynamodb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
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
// attempts (approvals.Backoff) grows from updateBackoffBase up to
// updateBackoffMax, jittered.
// Fifty clicks on one message decide after one write and then fail fast in
// fn. Fifty writers that all succeed (votes of a large quorum) take up to
// about 15 attempts on dynalite under load; the bound leaves room for that
// and exists only to end a pathological hot spot.
const (
	defaultUpdateAttempts = 50
	updateBackoffBase     = 5 * time.Millisecond
	updateBackoffMax      = 250 * time.Millisecond
)

// DefaultCallTimeout bounds each request of Create, Get, Update and Ping,
// the SDK's retries included: intake and clicks must answer (a 503 when
// DynamoDB does not) within a second, whatever the endpoint does.
const DefaultCallTimeout = 800 * time.Millisecond

// The health item Ping writes; see the package comment.
const (
	healthID     = "#health"
	attrPingedAt = "pinged_at"
)

// Store keeps tasks in a DynamoDB table made by CreateTable.
type Store struct {
	client         *dynamodb.Client
	table          string
	updateAttempts int
	callTimeout    time.Duration
}

var _ approvals.Store = (*Store)(nil)

// New returns a store on the table.
func New(client *dynamodb.Client, table string) *Store {
	return &Store{client: client, table: table, updateAttempts: defaultUpdateAttempts, callTimeout: DefaultCallTimeout}
}

// bounded is ctx limited to one request's time (see DefaultCallTimeout).
// When that runs out, the SDK's error wraps context.DeadlineExceeded,
// which wrapErr makes approvals.ErrUnavailable.
func (s *Store) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.callTimeout)
}

// Create writes t as version 1 unless a task with its ID exists; then it
// returns that one as it is.
func (s *Store) Create(ctx context.Context, t *approvals.Task) (*approvals.Task, bool, error) {
	if t == nil || t.ID == "" {
		return nil, false, fmt.Errorf("dynamodb: create task: %w", approvals.Invalidf("task has no id"))
	}
	if t.ID == healthID {
		return nil, false, fmt.Errorf("dynamodb: create task: %w", approvals.Invalidf("task id %q is the health record's", t.ID))
	}
	op := "create task " + t.ID
	stored := *t
	stored.Version = 1
	data, err := json.Marshal(&stored)
	if err != nil {
		return nil, false, fmt.Errorf("dynamodb: %s: encode: %w", op, err)
	}
	// The write's own id tells this write from another intake of the task
	// should the SDK have to send it again (below).
	var writeID [16]byte
	if _, err := rand.Read(writeID[:]); err != nil {
		return nil, false, fmt.Errorf("dynamodb: %s: write id: %w", op, err)
	}
	created := hex.EncodeToString(writeID[:])
	item := map[string]types.AttributeValue{
		attrID:      &types.AttributeValueMemberS{Value: stored.ID},
		attrVersion: number(stored.Version),
		attrData:    &types.AttributeValueMemberB{Value: data},
		attrCreated: &types.AttributeValueMemberS{Value: created},
	}
	if due, ok := stored.DueAt(); ok {
		item[attrDueShard] = &types.AttributeValueMemberS{Value: dueShard}
		item[attrDueAt] = number(due.UnixMilli())
	}
	if expires, ok := expiry(&stored); ok {
		item[attrTTL] = number(expires)
	}
	callCtx, cancel := s.bounded(ctx)
	_, err = s.client.PutItem(callCtx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#id)"),
		ExpressionAttributeNames: map[string]string{"#id": attrID},
	})
	cancel()
	if isConditionFailed(err) {
		existing, found, err := s.getItem(ctx, op, stored.ID)
		if err != nil {
			return nil, false, err
		}
		// The SDK sends a write again when its answer was lost (a 5xx,
		// a dropped connection); the item it then finds may be this very
		// write, landed on the earlier try, as its write id tells.
		by, _ := found[attrCreated].(*types.AttributeValueMemberS)
		return existing, by != nil && by.Value == created, nil
	}
	if err != nil {
		return nil, false, wrapErr(op, s.table, err)
	}
	// Hand back what a Get would return, sharing nothing with t.
	task, err := decode(data, stored.Version)
	if err != nil {
		return nil, false, fmt.Errorf("dynamodb: %s: %w", op, err)
	}
	return task, true, nil
}

// Get reads the task (strongly consistent). Expiry is the caller's business:
// an item TTL has not deleted yet is returned as it is.
func (s *Store) Get(ctx context.Context, id string) (*approvals.Task, error) {
	return s.get(ctx, "get task "+id, id)
}

func (s *Store) get(ctx context.Context, op, id string) (*approvals.Task, error) {
	t, _, err := s.getItem(ctx, op, id)
	return t, err
}

// getItem is get that also returns the task's item.
func (s *Store) getItem(ctx context.Context, op, id string) (*approvals.Task, map[string]types.AttributeValue, error) {
	if id == "" || id == healthID {
		return nil, nil, fmt.Errorf("dynamodb: %s: %w", op, approvals.ErrNotFound)
	}
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            map[string]types.AttributeValue{attrID: &types.AttributeValueMemberS{Value: id}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, nil, wrapErr(op, s.table, err)
	}
	if out.Item == nil {
		return nil, nil, fmt.Errorf("dynamodb: %s: %w", op, approvals.ErrNotFound)
	}
	t, err := decodeItem(out.Item)
	if err != nil {
		return nil, nil, fmt.Errorf("dynamodb: %s: %w", op, &approvals.CorruptError{Key: id, Err: err})
	}
	return t, out.Item, nil
}

// Update reads the task, applies fn and writes the result with one
// UpdateItem conditioned on the version it read; a lost race reads again and
// calls fn again, a bounded number of times.
func (s *Store) Update(ctx context.Context, id string, fn func(*approvals.Task) error) (*approvals.Task, error) {
	op := "update task " + id
	var sent *dynamodb.UpdateItemInput // the last write refused on its condition
	for attempt := 1; ; attempt++ {
		t, item, err := s.getItem(ctx, op, id)
		if err != nil {
			return nil, err
		}
		if sent != nil && landed(sent, item) {
			// The SDK sent the write again after its answer was lost (a
			// 5xx, a dropped connection), and the earlier try had landed:
			// the condition refused the write's own repeat. fn must not
			// run a second time on its own result.
			return t, nil
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
		callCtx, cancel := s.bounded(ctx)
		_, err = s.client.UpdateItem(callCtx, input)
		cancel()
		if err == nil {
			return t, nil
		}
		if !isConditionFailed(err) {
			return nil, wrapErr(op, s.table, err)
		}
		sent = input
		if attempt >= s.updateAttempts {
			return nil, fmt.Errorf("dynamodb: %s: lost %d races in a row: %w", op, attempt, approvals.ErrConflict)
		}
		if err := approvals.Sleep(ctx, approvals.Backoff(attempt, updateBackoffBase, updateBackoffMax)); err != nil {
			return nil, fmt.Errorf("dynamodb: %s: %w", op, err)
		}
	}
}

// landed reports whether item holds what the write in sent made: its
// version and its bytes (which no other write makes but with the very
// same change).
func landed(sent *dynamodb.UpdateItemInput, item map[string]types.AttributeValue) bool {
	want, _ := sent.ExpressionAttributeValues[":data"].(*types.AttributeValueMemberB)
	wantVersion, _ := sent.ExpressionAttributeValues[":new"].(*types.AttributeValueMemberN)
	data, _ := item[attrData].(*types.AttributeValueMemberB)
	version, _ := item[attrVersion].(*types.AttributeValueMemberN)
	return want != nil && wantVersion != nil && data != nil && version != nil &&
		version.Value == wantVersion.Value && bytes.Equal(data.Value, want.Value)
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

// maxQueryLimit bounds one Query's Limit; DynamoDB also ends a page at
// 1 MB of items.
const maxQueryLimit = 1000

// Due queries the sparse due index for one page: tasks whose DueAt is at or
// before before, earliest first. It makes one Query. DynamoDB's Limit
// counts the items it read, and it stops early at 1 MB, so a page may hold
// fewer than limit tasks while more remain: Next is set whenever DynamoDB
// says where to go on. The index is eventually consistent, so a caller
// re-reads a task (Get or Update) before working on it.
func (s *Store) Due(ctx context.Context, before time.Time, after approvals.Cursor, limit int) (approvals.DuePage, error) {
	op := "find due tasks"
	if limit <= 0 {
		return approvals.DuePage{}, fmt.Errorf("dynamodb: %s: %w", op, approvals.Invalidf("page limit %d, want at least 1", limit))
	}
	start, err := decodeCursor(after)
	if err != nil {
		return approvals.DuePage{}, fmt.Errorf("dynamodb: %s: %w", op, err)
	}
	out, err := s.client.Query(ctx, &dynamodb.QueryInput{
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
		ScanIndexForward:  aws.Bool(true),
		Limit:             aws.Int32(int32(min(limit, maxQueryLimit))),
		ExclusiveStartKey: start,
	})
	if err != nil {
		return approvals.DuePage{}, wrapErr(op, s.table, err)
	}
	var page approvals.DuePage
	for _, item := range out.Items {
		t, err := decodeItem(item)
		if err != nil {
			page.Corrupt = append(page.Corrupt, itemID(item))
			continue
		}
		// The index holds milliseconds; drop a task due later within
		// before's millisecond.
		if due, ok := t.DueAt(); ok && !due.After(before) {
			page.Tasks = append(page.Tasks, t)
		}
	}
	if len(out.LastEvaluatedKey) > 0 {
		if page.Next, err = encodeCursor(out.LastEvaluatedKey); err != nil {
			return approvals.DuePage{}, fmt.Errorf("dynamodb: %s: %w", op, err)
		}
	}
	// Tasks due within the same millisecond come in no particular order.
	slices.SortStableFunc(page.Tasks, func(a, b *approvals.Task) int {
		da, _ := a.DueAt()
		db, _ := b.DueAt()
		return da.Compare(db)
	})
	return page, nil
}

// cursor is the due index's LastEvaluatedKey: the index keys and the
// table's key of the last item a Query read.
type cursor struct {
	Shard string `json:"s"`
	DueAt int64  `json:"d"`
	ID    string `json:"id"`
}

// encodeCursor makes a LastEvaluatedKey an opaque, URL-safe cursor.
func encodeCursor(key map[string]types.AttributeValue) (approvals.Cursor, error) {
	shard, okShard := key[attrDueShard].(*types.AttributeValueMemberS)
	due, okDue := key[attrDueAt].(*types.AttributeValueMemberN)
	id, okID := key[attrID].(*types.AttributeValueMemberS)
	if !okShard || !okDue || !okID || len(key) != 3 {
		return "", fmt.Errorf("unexpected LastEvaluatedKey with attributes %v", slices.Sorted(maps.Keys(key)))
	}
	at, err := strconv.ParseInt(due.Value, 10, 64)
	if err != nil {
		return "", fmt.Errorf("LastEvaluatedKey's %s: %w", attrDueAt, err)
	}
	data, err := json.Marshal(cursor{Shard: shard.Value, DueAt: at, ID: id.Value})
	if err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	return approvals.Cursor(base64.RawURLEncoding.EncodeToString(data)), nil
}

// decodeCursor turns a cursor back into the ExclusiveStartKey it came
// from; nil for the start of the walk.
func decodeCursor(c approvals.Cursor) (map[string]types.AttributeValue, error) {
	if c == "" {
		return nil, nil
	}
	var k cursor
	data, err := base64.RawURLEncoding.DecodeString(string(c))
	if err == nil {
		err = json.Unmarshal(data, &k)
	}
	if err != nil || k.Shard != dueShard || k.ID == "" {
		return nil, approvals.Invalidf("malformed due cursor %q", c)
	}
	return map[string]types.AttributeValue{
		attrDueShard: &types.AttributeValueMemberS{Value: k.Shard},
		attrDueAt:    number(k.DueAt),
		attrID:       &types.AttributeValueMemberS{Value: k.ID},
	}, nil
}

// Ping writes the health item, one UpdateItem: ready means writable, so a
// table that is missing, throttled, out of reach or closed to this bot's
// writes fails it with approvals.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       map[string]types.AttributeValue{attrID: &types.AttributeValueMemberS{Value: healthID}},
		UpdateExpression:          aws.String("SET #at = :at"),
		ExpressionAttributeNames:  map[string]string{"#at": attrPingedAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": number(time.Now().UnixMilli())},
	})
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

// decodeItem reads a stored item; its error says why the record cannot
// be decoded (the callers make it a *approvals.CorruptError).
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

// itemID is the key of an item, for naming one that cannot be decoded.
func itemID(item map[string]types.AttributeValue) string {
	if id, ok := item[attrID].(*types.AttributeValueMemberS); ok {
		return id.Value
	}
	return ""
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
