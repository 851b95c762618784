package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute and index names of the table; see the package comment.
const (
	attrID       = "id"
	attrVersion  = "version"
	attrData     = "data"
	attrDueShard = "due_shard"
	attrDueAt    = "due_at"
	attrTTL      = "ttl"
	// attrCreated is the id of the write that created the item, so that
	// Create knows its own write when the SDK had to send it again.
	attrCreated = "created_by"

	// DueIndex is the sparse global secondary index of tasks that need a
	// worker some time.
	DueIndex = "due"
	// dueShard is the one partition of the due index. One partition keeps
	// the index ordered by due time; the index holds only tasks with work
	// pending, far below one partition's throughput.
	dueShard = "due"
)

// CreateTableResult says what CreateTable found and did.
type CreateTableResult struct {
	// Created is false when the table existed already; it is then left as
	// it is (TTL aside).
	Created bool
	// TTLEnabled reports whether DynamoDB deletes old records by their ttl
	// attribute. It is false on endpoints without TTL (dynalite); records
	// then stay until deleted by hand, which is harmless.
	TTLEnabled bool
}

// Table creation waits at most this long for the table to become active
// when ctx has no deadline of its own.
const createTableWait = 5 * time.Minute

// CreateTable creates the table (on-demand capacity) with its due index,
// waits until both are active, then enables TTL on the ttl attribute where
// the endpoint supports it. An existing table is not an error: the result
// says so, after checking that it has the due index.
func CreateTable(ctx context.Context, client *dynamodb.Client, table string) (CreateTableResult, error) {
	var result CreateTableResult
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, createTableWait)
		defer cancel()
	}
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrID), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrDueShard), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrDueAt), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrID), KeyType: types.KeyTypeHash},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(DueIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrDueShard), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrDueAt), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	})
	var inUse *types.ResourceInUseException
	switch {
	case err == nil:
		result.Created = true
	case errors.As(err, &inUse):
		// Exists already (or is being created by someone else).
	default:
		return result, wrapErr(fmt.Sprintf("create table %q", table), table, err)
	}

	desc, err := waitActive(ctx, client, table)
	if err != nil {
		return result, err
	}
	if !hasDueIndex(desc) {
		return result, fmt.Errorf("dynamodb: table %q exists without the %q index; it was not created by approvalbot", table, DueIndex)
	}

	result.TTLEnabled, err = enableTTL(ctx, client, table)
	return result, err
}

// waitActive polls until the table and its indexes are active. The SDK's
// waiter starts at a 20 s delay, too slow for dynalite's instant tables.
func waitActive(ctx context.Context, client *dynamodb.Client, table string) (*types.TableDescription, error) {
	delay := 100 * time.Millisecond
	for {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		var notFound *types.ResourceNotFoundException
		switch {
		case errors.As(err, &notFound):
			// Eventually consistent right after CreateTable: try again.
		case err != nil:
			return nil, wrapErr(fmt.Sprintf("wait for table %q", table), table, err)
		case active(out.Table):
			return out.Table, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dynamodb: wait for table %q to become active: %w", table, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

func active(t *types.TableDescription) bool {
	if t == nil || t.TableStatus != types.TableStatusActive {
		return false
	}
	for _, gsi := range t.GlobalSecondaryIndexes {
		if gsi.IndexStatus != types.IndexStatusActive {
			return false
		}
	}
	return true
}

func hasDueIndex(t *types.TableDescription) bool {
	for _, gsi := range t.GlobalSecondaryIndexes {
		if aws.ToString(gsi.IndexName) == DueIndex {
			return true
		}
	}
	return false
}

// enableTTL turns on TTL deletion by the ttl attribute unless it is on.
// Endpoints that do not know TTL at all (dynalite answers
// UnknownOperationException) report false without an error.
func enableTTL(ctx context.Context, client *dynamodb.Client, table string) (bool, error) {
	op := fmt.Sprintf("enable TTL on table %q", table)
	desc, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	switch {
	case isUnknownOperation(err):
		return false, nil
	case err != nil:
		return false, wrapErr(op, table, err)
	}
	if d := desc.TimeToLiveDescription; d != nil {
		switch d.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			if name := aws.ToString(d.AttributeName); name != attrTTL {
				return false, fmt.Errorf("dynamodb: %s: TTL is enabled on attribute %q, approvalbot uses %q", op, name, attrTTL)
			}
			return true, nil
		}
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	switch {
	case isUnknownOperation(err):
		return false, nil
	case err != nil:
		return false, wrapErr(op, table, err)
	}
	return true, nil
}
