package dynamodb

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/approvalbot/approvalbot/approvals"
)

func apiErr(code string, fault smithy.ErrorFault) error {
	return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "GetItem",
		Err: &smithy.GenericAPIError{Code: code, Message: "m", Fault: fault}}
}

func responseErr(status int, code string) error {
	return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "GetItem",
		Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
				Err:      &smithy.GenericAPIError{Code: code, Message: "m"},
			},
		}}
}

func TestWrapErr(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		name        string
		err         error
		unavailable bool
		contains    string
	}{
		{"connection refused", &smithyhttp.RequestSendError{Err: refused}, true, ""},
		{"deadline", context.DeadlineExceeded, true, ""},
		{"caller gave up", &smithyhttp.RequestSendError{Err: context.Canceled}, false, ""},
		{"retries exhausted", &retry.MaxAttemptsError{Attempt: 5, Err: apiErr("ThrottlingException", smithy.FaultClient)}, true, ""},
		{"throughput", apiErr("ProvisionedThroughputExceededException", smithy.FaultClient), true, ""},
		{"server fault", apiErr("SomethingNew", smithy.FaultServer), true, ""},
		{"unmodelled 503", responseErr(http.StatusServiceUnavailable, "Whatever"), true, ""},
		{"unmodelled 400", responseErr(http.StatusBadRequest, "Whatever"), false, ""},
		{"bad credentials", apiErr("UnrecognizedClientException", smithy.FaultClient), true, ""},
		{"item too large", apiErr("ValidationException", smithy.FaultClient), false, ""},
		{"missing table", &types.ResourceNotFoundException{Message: new(string)}, true, "approvalbot dynamodb create-table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := wrapErr("get task x", "tasks", tt.err)
			if errors.Is(got, approvals.ErrUnavailable) != tt.unavailable {
				t.Errorf("wrapErr(%v) = %v; wraps ErrUnavailable: %v, want %v", tt.err, got, !tt.unavailable, tt.unavailable)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("wrapErr(%v) = %v, lost the cause", tt.err, got)
			}
			if !strings.HasPrefix(got.Error(), "dynamodb: get task x: ") || !strings.Contains(got.Error(), tt.contains) {
				t.Errorf("wrapErr(%v) = %q, want the operation named and %q", tt.err, got, tt.contains)
			}
		})
	}
}
