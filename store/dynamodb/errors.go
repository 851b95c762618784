package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/approvalbot/approvalbot/approvals"
)

// createTableHint is what an operator must do when the table is missing.
const createTableHint = "create it with `approvalbot dynamodb create-table`"

// wrapErr turns an SDK error into the store's: a missing table names the
// table and the command that creates it, and anything that says the service
// cannot serve us now (network, timeouts, throttling after retries, 5xx,
// credentials) wraps approvals.ErrUnavailable so that readiness and intake
// answer 503. Requests the service refuses as malformed (an item over the
// size limit) stay plain errors: retrying them cannot help.
func wrapErr(op, table string, err error) error {
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		return fmt.Errorf("dynamodb: %s: table %q does not exist (%s): %w: %w",
			op, table, createTableHint, approvals.ErrUnavailable, err)
	case unavailable(err):
		return fmt.Errorf("dynamodb: %s: %w: %w", op, approvals.ErrUnavailable, err)
	default:
		return fmt.Errorf("dynamodb: %s: %w", op, err)
	}
}

// unavailable reports whether err means the service could not serve the
// request now, as opposed to refusing it.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		// The caller gave up; the service may be fine.
		return false
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		// No answer at all: connection refused, DNS, timeout, credentials
		// that could not be fetched, retry quota exhausted.
		return true
	}
	if apiErr.ErrorFault() == smithy.FaultServer {
		return true
	}
	switch apiErr.ErrorCode() {
	case "ProvisionedThroughputExceededException", "ThrottlingException",
		"RequestLimitExceeded", "LimitExceededException",
		"InternalServerError", "ServiceUnavailable",
		// Wrong or expired credentials, missing permissions: an operator
		// must fix the deployment; until then the store is unusable.
		"AccessDeniedException", "UnrecognizedClientException",
		"InvalidSignatureException", "ExpiredTokenException",
		"MissingAuthenticationTokenException", "IncompleteSignatureException":
		return true
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		status := respErr.HTTPStatusCode()
		return status >= http.StatusInternalServerError || status == http.StatusTooManyRequests
	}
	return false
}

// isConditionFailed reports whether a conditional write lost.
func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// isUnknownOperation reports whether the endpoint does not implement the
// operation (dynalite has no UpdateTimeToLive).
func isUnknownOperation(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "UnknownOperationException"
}
