package main

import (
	"os"
	"testing"

	"github.com/approvalbot/approvalbot/internal/dynalitetest"
)

// TestMain runs the package's tests with a dynalite server for the
// replica tests. The bot reads AWS credentials the usual way; dynalite
// accepts any.
func TestMain(m *testing.M) {
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"} {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	dynalitetest.Main(m)
}
