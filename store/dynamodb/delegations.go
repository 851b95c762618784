package dynamodb

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/approvalbot/approvalbot/approvals"
)

// The delegations are one item, "#delegations" (no task id starts with
// '#'): their JSON in data and a version for conditional writes. It has no
// index attributes, so Due never sees it. One item keeps a change and its
// checks (no chains) in one conditional write, without transactions.
const (
	delegationsID   = "#delegations"
	attrDelegations = "data"
	attrDelVersion  = "version"
)

var _ approvals.DelegationStore = (*Store)(nil)

// Delegations returns every stored delegation (a consistent read).
func (s *Store) Delegations(ctx context.Context) ([]approvals.Delegation, error) {
	out, _, err := s.readDelegations(ctx)
	return out, err
}

func (s *Store) readDelegations(ctx context.Context) ([]approvals.Delegation, int64, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            map[string]types.AttributeValue{attrID: &types.AttributeValueMemberS{Value: delegationsID}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, 0, wrapErr("read delegations", s.table, err)
	}
	if out.Item == nil {
		return nil, 0, nil
	}
	data, _ := out.Item[attrDelegations].(*types.AttributeValueMemberS)
	ver, _ := out.Item[attrDelVersion].(*types.AttributeValueMemberN)
	if data == nil || ver == nil {
		return nil, 0, fmt.Errorf("dynamodb: read delegations: %w", &approvals.CorruptError{Key: delegationsID, Err: fmt.Errorf("data or version missing")})
	}
	version, err := strconv.ParseInt(ver.Value, 10, 64)
	var list []approvals.Delegation
	if err == nil {
		err = json.Unmarshal([]byte(data.Value), &list)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("dynamodb: read delegations: %w", &approvals.CorruptError{Key: delegationsID, Err: err})
	}
	return list, version, nil
}

// UpdateDelegations reads the delegations, applies fn and writes the result
// conditioned on the version it read; a lost race reads again.
func (s *Store) UpdateDelegations(ctx context.Context, fn func([]approvals.Delegation) ([]approvals.Delegation, error)) ([]approvals.Delegation, error) {
	for attempt := 0; attempt < s.updateAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(approvals.Backoff(attempt, updateBackoffBase, updateBackoffMax)):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		cur, version, err := s.readDelegations(ctx)
		if err != nil {
			return nil, err
		}
		next, err := fn(slices.Clone(cur))
		if err != nil {
			return nil, err
		}
		data, err := json.Marshal(next)
		if err != nil {
			return nil, fmt.Errorf("dynamodb: update delegations: %w: %w", approvals.ErrInvalid, err)
		}
		cond := "attribute_not_exists(#id)"
		values := map[string]types.AttributeValue{":data": &types.AttributeValueMemberS{Value: string(data)}, ":next": number(version + 1)}
		if version > 0 {
			cond = "#version = :read"
			values[":read"] = number(version)
		}
		wctx, cancel := s.bounded(ctx)
		_, err = s.client.UpdateItem(wctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(s.table),
			Key:                       map[string]types.AttributeValue{attrID: &types.AttributeValueMemberS{Value: delegationsID}},
			UpdateExpression:          aws.String("SET #data = :data, #version = :next"),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  conditionNames(version, map[string]string{"#data": attrDelegations, "#version": attrDelVersion}),
			ExpressionAttributeValues: values,
		})
		cancel()
		switch {
		case err == nil:
			return next, nil
		case isConditionFailed(err):
			continue
		}
		return nil, wrapErr("update delegations", s.table, err)
	}
	return nil, fmt.Errorf("dynamodb: update delegations: %w: lost %d races", approvals.ErrConflict, s.updateAttempts)
}

// conditionNames adds #id where the condition names it.
func conditionNames(version int64, names map[string]string) map[string]string {
	if version == 0 {
		names["#id"] = attrID
	}
	return names
}
