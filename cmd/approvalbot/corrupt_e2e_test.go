package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	bbolt "go.etcd.io/bbolt"

	"github.com/approvalbot/approvalbot/internal/dynalitetest"
)

// shortLived is a policy whose tasks expire within seconds, so that the
// sweeper has work while a damaged record sits in the store.
const shortLived = `
  - name: short
    approvers: {users: [UALICE]}
    ttl: 2s
`

// checkDamagedRecordIsSkipped: with the record of task bad damaged, the bot
// is ready, the damaged task answers a JSON 500, the sweeper still expires
// good, and the damage is logged once and counted.
func checkDamagedRecordIsSkipped(t *testing.T, e *env, good, bad string) {
	t.Helper()
	if res, err := http.Get(e.url + "/readyz"); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("readyz with a damaged record: %v %v", res, err)
	}
	status, _, body := e.api("GET", "/v1/tasks/"+bad, "")
	if status != http.StatusInternalServerError || body["error"] == nil {
		t.Fatalf("the damaged task answered %d %v, want a JSON 500", status, body)
	}
	e.waitTask(good, "the good task expired by the sweeper", func(task map[string]any) bool { return task["status"] == "expired" })
	waitFor(t, "the damage logged", func() bool { return strings.Contains(e.logs.String(), `"event":"corrupt_record"`) })
	waitFor(t, "the damage counted", func() bool {
		res, err := http.Get(e.url + "/metrics")
		if err != nil {
			return false
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return strings.Contains(string(raw), "approvalbot_store_corrupt_records_total 1")
	})
	// Sweeps run every 200ms: the record is reported once, not every round.
	lines := 0
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(l, `"event":"corrupt_record"`) {
			lines++
			if !strings.Contains(l, bad) {
				t.Errorf("the log line does not name the record: %s", l)
			}
		}
	}
	if lines != 1 {
		t.Errorf("the damaged record was logged %d times, want once", lines)
	}
}

func TestDamagedBoltRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.policies = shortLived
	e.start()
	bad := e.submit(`{"taskId":"damaged"}`)
	good := e.submit(`{"taskId":"sound"}`)
	e.message("damaged")
	e.message("sound")
	e.stop()

	db, err := bbolt.Open(filepath.Join(e.dir, "approvalbot.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("tasks")).Put([]byte(bad), []byte(`{"id": "`+bad+`", "status": [not json`))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	e.start()
	checkDamagedRecordIsSkipped(t, e, good, bad)
}

func TestDamagedDynamoDBItem(t *testing.T) {
	t.Parallel()
	client, table := dynalitetest.NewTable(t)
	e := newEnv(t)
	e.policies = shortLived
	e.store = fmt.Sprintf("{driver: dynamodb, dynamodb: {table: %q, region: %q, endpoint: %q}}", table, dynalitetest.Region, dynalitetest.Endpoint())
	e.start()
	bad := e.submit(`{"taskId":"damaged"}`)
	good := e.submit(`{"taskId":"sound"}`)
	e.message("damaged")
	e.message("sound")
	// The posts' results are written after Slack answered them: damaged
	// before that, the item would be written over.
	for _, id := range []string{bad, good} {
		e.waitTask(id, "its message recorded", func(task map[string]any) bool { return task["message"] != nil })
	}
	// The item keeps its key and its place in the due index; its task data
	// no longer decodes.
	if _, err := client.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: bad}},
		UpdateExpression:          aws.String("SET #data = :garbage"),
		ExpressionAttributeNames:  map[string]string{"#data": "data"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":garbage": &types.AttributeValueMemberB{Value: []byte("{not json")}},
	}); err != nil {
		t.Fatal(err)
	}
	checkDamagedRecordIsSkipped(t, e, good, bad)
}
