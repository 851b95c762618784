package dynamodb_test

import (
	"testing"

	"github.com/approvalbot/approvalbot/internal/dynalitetest"
)

func TestMain(m *testing.M) { dynalitetest.Main(m) }
