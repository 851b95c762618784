package dynamodb_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/internal/dynalitetest"
	ddbstore "github.com/approvalbot/approvalbot/store/dynamodb"
)

// newDownClient is a client of endpoint built as the bot builds its own:
// no test overrides of retries or timeouts.
func newDownClient(t *testing.T, endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	t.Helper()
	client, err := ddbstore.NewClient(t.Context(), ddbstore.Options{
		Region:      dynalitetest.Region,
		Endpoint:    endpoint,
		Credentials: credentials.NewStaticCredentialsProvider("x", "y", ""),
	}, optFns...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return client
}

// listen returns a loopback listener closed at the end of the test.
func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// closedPort is the URL of a loopback port nobody listens on: every
// connection is refused at once.
func closedPort(t *testing.T) string {
	l := listen(t)
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

// silentServer accepts connections and never answers: a DynamoDB that
// hangs (an overloaded proxy, a half-open path).
func silentServer(t *testing.T) string {
	l := listen(t)
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

// TestUnreachableFailsFast: with DynamoDB down, every request-path call
// fails with approvals.ErrUnavailable (intake and clicks answer 503), and
// does so by itself: the caller's context has no deadline. The elapsed
// times are logged, not asserted (BenchmarkCreateUnreachable measures).
func TestUnreachableFailsFast(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		endpoint func(t *testing.T) string
	}{
		{"connection refused", closedPort},
		{"no answer", silentServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := ddbstore.New(newDownClient(t, tc.endpoint(t)), "approvalbot")
			now := time.Now()
			calls := []struct {
				name string
				call func(ctx context.Context) error
			}{
				{"Create", func(ctx context.Context) error {
					_, _, err := store.Create(ctx, newTask("flexdeploy-1", now))
					return err
				}},
				{"Get", func(ctx context.Context) error {
					_, err := store.Get(ctx, "flexdeploy-1")
					return err
				}},
				{"Update", func(ctx context.Context) error {
					_, err := store.Update(ctx, "flexdeploy-1", func(*approvals.Task) error { return nil })
					return err
				}},
				{"Ping", store.Ping},
			}
			for _, c := range calls {
				start := time.Now()
				err := c.call(t.Context())
				t.Logf("%s failed after %v: %v", c.name, time.Since(start).Round(time.Millisecond), err)
				if !errors.Is(err, approvals.ErrUnavailable) {
					t.Errorf("%s: err = %v, want ErrUnavailable", c.name, err)
				}
				if errors.Is(err, approvals.ErrNotFound) {
					t.Errorf("%s: err = %v also claims not found", c.name, err)
				}
			}
		})
	}
}

// maxTries is the most tries of one request intake's budget allows: a
// second to answer, a 503 if need be, with retries 100 ms apart and room
// for the request itself.
const maxTries = 3

// TestRetriesBounded counts the attempts of one call against an endpoint
// that drops every connection: the client's defaults bound the SDK's
// retries, so a call cannot stretch past intake's budget.
func TestRetriesBounded(t *testing.T) {
	t.Parallel()
	l := listen(t)
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	store := ddbstore.New(newDownClient(t, "http://"+l.Addr().String()), "approvalbot")
	_, _, err := store.Create(t.Context(), newTask("flexdeploy-1", time.Now()))
	if !errors.Is(err, approvals.ErrUnavailable) {
		t.Fatalf("Create: err = %v, want ErrUnavailable", err)
	}
	if n := accepted.Load(); n < 1 || n > maxTries {
		t.Errorf("Create tried %d times, want 1 to %d", n, maxTries)
	}
}

// TestRequestPathHasDeadline checks that every request of Create, Get,
// Update and Ping carries the store's own deadline although the caller's
// context has none: a DynamoDB that hangs cannot hold intake or a click.
func TestRequestPathHasDeadline(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		requests = map[string]int{}
		missing  []string
	)
	record := func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("deadline", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				op := operationName(in.Parameters)
				mu.Lock()
				requests[op]++
				if _, ok := ctx.Deadline(); !ok {
					missing = append(missing, op)
				}
				mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
		})
	}
	_, table := dynalitetest.NewTable(t)
	store := ddbstore.New(dynalitetest.NewClient(t, record), table)
	ctx := t.Context()
	task := newTask("flexdeploy-deadline", time.Now().UTC().Truncate(time.Millisecond))
	if _, _, err := store.Create(ctx, task); err != nil {
		t.Fatal(err)
	}
	if _, created, err := store.Create(ctx, task); err != nil || created {
		t.Fatalf("repeated Create: %v, %v", created, err)
	}
	if _, err := store.Get(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(ctx, task.ID, func(*approvals.Task) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := store.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if requests["PutItem"] != 2 || requests["GetItem"] != 3 || requests["UpdateItem"] != 2 {
		t.Errorf("requests = %v, want 2 PutItem, 3 GetItem, 2 UpdateItem", requests)
	}
	if len(missing) > 0 {
		t.Errorf("requests without a deadline: %v", missing)
	}
}

func operationName(params any) string {
	switch params.(type) {
	case *dynamodb.PutItemInput:
		return "PutItem"
	case *dynamodb.GetItemInput:
		return "GetItem"
	case *dynamodb.UpdateItemInput:
		return "UpdateItem"
	case *dynamodb.QueryInput:
		return "Query"
	case *dynamodb.DescribeTableInput:
		return "DescribeTable"
	}
	return "other"
}
