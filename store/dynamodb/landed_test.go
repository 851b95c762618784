package dynamodb_test

import (
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/dynalitetest"
	ddbstore "github.com/approvalbot/approvalbot/store/dynamodb"
)

// lostAnswers is dynalite behind a proxy that, for the next writes of an
// operation it is told of, lets the write through and then loses its
// answer: the client gets a 500, as from a DynamoDB whose answer went
// missing after it applied the write, and the SDK sends it again.
type lostAnswers struct {
	mu     sync.Mutex
	lose   map[string]int // operation (UpdateItem, PutItem) → answers to lose
	url    string
	sent   map[string]int // requests by operation
	server *httptest.Server
}

func newLostAnswers(t *testing.T) *lostAnswers {
	t.Helper()
	target, err := url.Parse(dynalitetest.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	l := &lostAnswers{lose: map[string]int{}, sent: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	l.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Header.Get("X-Amz-Target")
		op = op[strings.LastIndexByte(op, '.')+1:]
		l.mu.Lock()
		l.sent[op]++
		lose := l.lose[op] > 0
		if lose {
			l.lose[op]--
		}
		l.mu.Unlock()
		if !lose {
			proxy.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		proxy.ServeHTTP(rec, r) // applied by dynalite; its answer is dropped
		_, _ = io.Copy(io.Discard, rec.Result().Body)
		body := `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"answer lost"}`
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(body))), 10))
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(l.server.Close)
	l.url = l.server.URL
	return l
}

func (l *lostAnswers) loseNext(op string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lose[op]++
}

func (l *lostAnswers) count(op string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent[op]
}

// A write whose answer was lost after DynamoDB applied it is sent again by
// the SDK; its condition then refuses it. The store must see that the
// write it finds is its own: an Update does not run fn again on its own
// result (an audit record, a delivery attempt counted twice), and a Create
// reports the task created, not a duplicate intake.
func TestAWriteWhoseAnswerWasLostIsNotMadeTwice(t *testing.T) {
	t.Parallel()
	_, table := dynalitetest.NewTable(t)
	lost := newLostAnswers(t)
	store := ddbstore.New(dynalitetest.NewClient(t, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(lost.url) }), table)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)

	lost.loseNext("PutItem")
	task := newTask("flexdeploy-lost", now)
	stored, created, err := store.Create(ctx, task)
	if err != nil {
		t.Fatalf("Create after a lost answer: %v", err)
	}
	if !created || stored.Version != 1 {
		t.Fatalf("Create after a lost answer: created=%v version=%d; want created, version 1", created, stored.Version)
	}
	if n := lost.count("PutItem"); n != 2 {
		t.Fatalf("PutItem sent %d times, want 2 (the SDK's second try)", n)
	}

	lost.loseNext("UpdateItem")
	runs := 0
	updated, err := store.Update(ctx, task.ID, func(t *approvals.Task) error {
		runs++
		t.Record(approvals.AuditRecord{At: now, Event: "voted", Detail: "UALICE"})
		return nil
	})
	if err != nil {
		t.Fatalf("Update after a lost answer: %v", err)
	}
	if n := lost.count("UpdateItem"); n != 2 {
		t.Fatalf("UpdateItem sent %d times, want 2 (the SDK's second try)", n)
	}
	got, err := store.Get(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if runs != 1 || updated.Version != 2 || got.Version != 2 || len(got.Audit) != len(task.Audit)+1 {
		t.Errorf("fn ran %d times; version %d (stored %d), %d audit records; want once, 2, one record more than %d",
			runs, updated.Version, got.Version, len(got.Audit), len(task.Audit))
	}

	// A real race still reads again and runs fn on the other writer's result.
	other := ddbstore.New(dynalitetest.NewClient(t), table)
	first := true
	if _, err := store.Update(ctx, task.ID, func(t *approvals.Task) error {
		if first {
			first = false
			if _, err := other.Update(ctx, task.ID, func(t *approvals.Task) error { t.Reason = "the other writer"; return nil }); err != nil {
				return err
			}
		}
		t.Description = "mine"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.Get(ctx, task.ID); got.Reason != "the other writer" || got.Description != "mine" || got.Version != 4 {
		t.Errorf("after a race: reason %q, description %q, version %d; want both writes, version 4", got.Reason, got.Description, got.Version)
	}
}
