// Package dynamodb keeps approval tasks in one DynamoDB table: the shared
// store for several replicas of the bot. Each task is one item written with
// conditional puts and updates (no transactions, no Scan); a sparse global
// secondary index holds only the tasks that need a worker some time, so that
// finding due work is one Query.
//
// Item layout:
//
//	id        S  partition key: Task.ID
//	version   N  optimistic-concurrency counter: Task.Version
//	data      B  JSON of the approvals.Task (its JSON form is the storage form)
//	due_shard S  "due" while Task.DueAt is ok, absent otherwise
//	due_at    N  Task.DueAt in unix milliseconds, present with due_shard
//	ttl       N  epoch seconds for DynamoDB's TTL deletion: ExpiresAt + 30
//	             days, set only once the task is final with an empty outbox
//	created_by S  random id of the Create that wrote the item, so that a
//	             Create the SDK sent again (its answer lost) knows its own
//	             item from another intake's
//
// Index "due": partition key due_shard, sort key due_at, projection ALL.
//
// One more item, id "#health" with a pinged_at attribute (unix
// milliseconds), is written by Ping and by nothing else. No task id can be
// "#health" (approvals.TaskRecordID makes ids of letters, digits and
// "._~-"; Create refuses it), it is in no index and has no ttl, and Get and
// Update answer approvals.ErrNotFound for it without a request.
package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/logging"
)

// Options say where the table's service is and how to reach it.
type Options struct {
	// Region is the AWS region; empty means the default chain's
	// (AWS_REGION, shared config).
	Region string
	// Endpoint overrides the service's URL (dynalite, DynamoDB Local, a
	// VPC endpoint); empty means the region's public endpoint.
	Endpoint string
	// Credentials replaces the default credential chain when set; tests use
	// static dummy keys for dynalite.
	Credentials aws.CredentialsProvider
	// Timeout bounds one HTTP request (one attempt); zero means
	// DefaultRequestTimeout.
	Timeout time.Duration
	// Logger receives the SDK's own warnings (left alone, it writes plain
	// text to stderr beside the bot's JSON log). Request logging stays off.
	Logger logging.Logger
}

// Client defaults. A throttled or failing request is tried three times at
// most, at most 100 ms apart: intake and clicks wait on the store and must
// answer, a 503 if need be, within a second, and work that failed is the
// outbox's to retry later. Against an endpoint that refuses connections a
// call fails after its two backoffs, about 200 ms (TestUnreachableFailsFast
// logs it); one that hangs is cut off by the store's per-request timeout
// (DefaultCallTimeout), not by DefaultRequestTimeout, which bounds the
// store's other requests (Due's Query, table creation) and the credential
// providers.
const (
	DefaultRequestTimeout = 10 * time.Second
	defaultMaxAttempts    = 3
	defaultMaxBackoff     = 100 * time.Millisecond
	dialTimeout           = 3 * time.Second
	tlsHandshakeTimeout   = 5 * time.Second
)

// NewClient builds a DynamoDB client from the default AWS configuration
// (credential chain, shared config, environment) and o. optFns are applied
// last, so callers (tests) can replace anything.
func NewClient(ctx context.Context, o Options, optFns ...func(*dynamodb.Options)) (*dynamodb.Client, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	// The same HTTP client also serves the credential providers (IMDS,
	// STS), so every outbound call of the SDK has a deadline.
	httpClient := awshttp.NewBuildableClient().
		WithTimeout(timeout).
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = dialTimeout }).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = tlsHandshakeTimeout
			t.ResponseHeaderTimeout = timeout
		})
	loadOpts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = defaultMaxAttempts
				so.MaxBackoff = defaultMaxBackoff
			})
		}),
	}
	if o.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(o.Region))
	}
	if o.Credentials != nil {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(o.Credentials))
	}
	if o.Logger != nil {
		loadOpts = append(loadOpts, config.WithLogger(o.Logger))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("dynamodb: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("dynamodb: no AWS region: set store.dynamodb.region or AWS_REGION")
	}
	fns := make([]func(*dynamodb.Options), 0, len(optFns)+1)
	if o.Endpoint != "" {
		endpoint := o.Endpoint
		fns = append(fns, func(do *dynamodb.Options) { do.BaseEndpoint = aws.String(endpoint) })
	}
	fns = append(fns, optFns...)
	return dynamodb.NewFromConfig(cfg, fns...), nil
}
