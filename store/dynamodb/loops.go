package dynamodb

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/approvalbot/approvalbot/approvals"
)

// A background loop's lease is an item of its own, "#loop/<name>" (no
// task id starts with '#'), with its owner and until (Unix milliseconds);
// it carries no index attributes, so Due never sees it.
const (
	loopPrefix    = "#loop/"
	attrLoopOwner = "owner"
	attrLoopUntil = "until"
)

var _ approvals.LoopLeases = (*Store)(nil)

// TryLoop takes or renews the loop's lease for owner until until, in one
// conditional write: it succeeds when nobody holds it, owner does, or the
// holder's lease ran out before now.
func (s *Store) TryLoop(ctx context.Context, loop, owner string, now, until time.Time) (bool, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.table),
		Key:                 map[string]types.AttributeValue{attrID: &types.AttributeValueMemberS{Value: loopPrefix + loop}},
		UpdateExpression:    aws.String("SET #owner = :owner, #until = :until"),
		ConditionExpression: aws.String("attribute_not_exists(#owner) OR #owner = :owner OR #until < :now"),
		ExpressionAttributeNames: map[string]string{
			"#owner": attrLoopOwner, "#until": attrLoopUntil,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":owner": &types.AttributeValueMemberS{Value: owner},
			":until": number(until.UnixMilli()),
			":now":   number(now.UnixMilli()),
		},
	})
	switch {
	case err == nil:
		return true, nil
	case isConditionFailed(err):
		return false, nil
	}
	return false, wrapErr(fmt.Sprintf("lease loop %s", loop), s.table, err)
}

// ReleaseLoop gives the loop's lease back, if owner holds it, so another
// process takes the loop over at its next tick.
func (s *Store) ReleaseLoop(ctx context.Context, loop, owner string) error {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       map[string]types.AttributeValue{attrID: &types.AttributeValueMemberS{Value: loopPrefix + loop}},
		UpdateExpression:          aws.String("REMOVE #owner, #until"),
		ConditionExpression:       aws.String("#owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#owner": attrLoopOwner, "#until": attrLoopUntil},
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": &types.AttributeValueMemberS{Value: owner}},
	})
	if err == nil || isConditionFailed(err) {
		return nil
	}
	return wrapErr(fmt.Sprintf("release loop %s", loop), s.table, err)
}
