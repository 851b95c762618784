package dynamodb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/approvalbot/approvalbot/internal/dynalitetest"
	ddbstore "github.com/approvalbot/approvalbot/store/dynamodb"
)

func deleteTableOnCleanup(t *testing.T, client *dynamodb.Client, table string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
}

func TestCreateTable(t *testing.T) {
	t.Parallel()
	client := dynalitetest.NewClient(t)
	table := dynalitetest.TableName(t)
	deleteTableOnCleanup(t, client, table)
	ctx := t.Context()

	first, err := ddbstore.CreateTable(ctx, client, table)
	if err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	// dynalite has no TTL: reported, not an error.
	if want := (ddbstore.CreateTableResult{Created: true, TTLEnabled: false}); first != want {
		t.Errorf("CreateTable = %+v, want %+v", first, want)
	}
	second, err := ddbstore.CreateTable(ctx, client, table)
	if err != nil {
		t.Fatalf("CreateTable on an existing table: %v", err)
	}
	if want := (ddbstore.CreateTableResult{Created: false, TTLEnabled: false}); second != want {
		t.Errorf("CreateTable on an existing table = %+v, want %+v", second, want)
	}

	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatalf("DescribeTable: %v", err)
	}
	desc := out.Table
	if desc.TableStatus != types.TableStatusActive {
		t.Errorf("table status %s, want ACTIVE", desc.TableStatus)
	}
	if got := keys(desc.KeySchema); got != "id:HASH" {
		t.Errorf("key schema %s, want id:HASH", got)
	}
	if desc.BillingModeSummary == nil || desc.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("billing mode %+v, want PAY_PER_REQUEST", desc.BillingModeSummary)
	}
	if len(desc.GlobalSecondaryIndexes) != 1 {
		t.Fatalf("%d global secondary indexes, want 1", len(desc.GlobalSecondaryIndexes))
	}
	gsi := desc.GlobalSecondaryIndexes[0]
	if aws.ToString(gsi.IndexName) != "due" || keys(gsi.KeySchema) != "due_shard:HASH,due_at:RANGE" ||
		gsi.Projection == nil || gsi.Projection.ProjectionType != types.ProjectionTypeAll {
		t.Errorf("index %s keys %s projection %+v, want due with due_shard:HASH,due_at:RANGE and ALL",
			aws.ToString(gsi.IndexName), keys(gsi.KeySchema), gsi.Projection)
	}
}

func TestCreateTableRefusesForeignTable(t *testing.T) {
	t.Parallel()
	client := dynalitetest.NewClient(t)
	table := dynalitetest.TableName(t)
	deleteTableOnCleanup(t, client, table)
	_, err := client.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("create a table without the index: %v", err)
	}
	_, err = ddbstore.CreateTable(t.Context(), client, table)
	if err == nil || !strings.Contains(err.Error(), `"due" index`) {
		t.Errorf("CreateTable on a table without the due index: err = %v, want one naming the index", err)
	}
}

func keys(schema []types.KeySchemaElement) string {
	parts := make([]string, len(schema))
	for i, k := range schema {
		parts[i] = aws.ToString(k.AttributeName) + ":" + string(k.KeyType)
	}
	return strings.Join(parts, ",")
}
