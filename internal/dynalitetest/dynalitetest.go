// Package dynalitetest runs a package's tests against dynalite, a DynamoDB
// implementation in Node.js installed by `make tools` into
// tools/node_modules. Tests never skip for want of it: a missing dynalite
// fails the run, so CI cannot pass without having tested the store.
package dynalitetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/approvalbot/approvalbot/internal/dynalite"
	ddbstore "github.com/approvalbot/approvalbot/store/dynamodb"
)

// EndpointEnv names an already running DynamoDB-compatible endpoint to use
// instead of starting dynalite.
const EndpointEnv = "APPROVALBOT_TEST_DYNAMODB_ENDPOINT"

// Region is the region the test clients claim; dynalite ignores it.
const Region = "us-east-1"

const startTries = 3

// endpoint is set once by Main before any test runs. It is package state
// because testing.M offers no other way to hand a value to the tests.
var endpoint atomic.Pointer[string]

// Main runs a package's tests with a dynalite server: it uses
// $APPROVALBOT_TEST_DYNAMODB_ENDPOINT when set; otherwise it starts
// tools/node_modules/.bin/dynalite (found by walking up from the working
// directory to go.mod) on a free 127.0.0.1 port (in memory), waits until it
// answers, runs m.Run() and stops it (the whole process group, no orphan).
// If dynalite is not installed it fails with exit status 1, telling to run
// `make tools`.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if ep := os.Getenv(EndpointEnv); ep != "" {
		endpoint.Store(&ep)
		return m.Run()
	}
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(os.Stderr, "dynalitetest: %v\n", err)
		return 1
	}
	bin, err := findDynalite(wd)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dynalitetest: %v\n", err)
		return 1
	}
	var srv *server
	for try := 1; ; try++ {
		srv, err = start(bin)
		if err == nil {
			break
		}
		// Another process may have taken the free port between our check
		// and dynalite's listen; a fresh port usually mends it.
		if try == startTries {
			fmt.Fprintf(os.Stderr, "dynalitetest: %v\n", err)
			return 1
		}
	}
	defer srv.stop()
	ep := srv.endpoint
	endpoint.Store(&ep)
	return m.Run()
}

// Endpoint is the URL of the DynamoDB endpoint Main set up ("" before).
func Endpoint() string {
	if ep := endpoint.Load(); ep != nil {
		return *ep
	}
	return ""
}

// NewClient returns a client of the test endpoint with static dummy
// credentials; optFns are applied last (Counter.Option, for example).
func NewClient(t testing.TB, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	t.Helper()
	ep := Endpoint()
	if ep == "" {
		t.Fatal("dynalitetest: no endpoint: the package needs func TestMain(m *testing.M) { dynalitetest.Main(m) }")
	}
	client, err := ddbstore.NewClient(context.Background(), ddbstore.Options{
		Region:      Region,
		Endpoint:    ep,
		Credentials: credentials.NewStaticCredentialsProvider("dynalite", "dynalite", ""),
	}, optFns...)
	if err != nil {
		t.Fatalf("dynalitetest: %v", err)
	}
	return client
}

// NewTable creates a fresh uniquely named table (via store/dynamodb
// CreateTable) and returns a client and the table name; the table is
// deleted in t.Cleanup.
func NewTable(t testing.TB) (*dynamodb.Client, string) {
	t.Helper()
	client := NewClient(t)
	table := TableName(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := ddbstore.CreateTable(ctx, client, table); err != nil {
		t.Fatalf("dynalitetest: %v", err)
	}
	t.Cleanup(func() {
		// t's own context is done by now; deletion needs a fresh one.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &table}); err != nil {
			t.Errorf("dynalitetest: delete table %s: %v", table, err)
		}
	})
	return client, table
}

// TableName returns a unique table name that tells which test made it.
func TableName(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			return r
		}
		return '_'
	}, t.Name())
	const maxPrefix = 200 // table names are at most 255 characters
	if len(name) > maxPrefix {
		name = name[:maxPrefix]
	}
	return "test-" + name + "-" + hex.EncodeToString(b[:])
}

// findDynalite walks up from dir to the module root and returns its
// dynalite binary.
func findDynalite(start string) (string, error) {
	bin, err := dynalite.Find(start)
	if errors.Is(err, dynalite.ErrNotInstalled) {
		return "", fmt.Errorf("%w, or set %s to a running DynamoDB-compatible endpoint", err, EndpointEnv)
	}
	return bin, err
}

// server is a running dynalite.
type server struct {
	endpoint string
	exited   <-chan struct{} // closed when the process has ended
	stop     func()          // kills it and waits for it to end
}

// start runs dynalite on a free port and waits until it answers.
func start(bin string) (*server, error) {
	srv, err := dynalite.StartBinary(context.Background(), bin)
	if err != nil {
		return nil, err
	}
	return &server{endpoint: srv.Endpoint, exited: srv.Exited(), stop: srv.Stop}, nil
}
