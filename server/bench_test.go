package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/flexdeploy"
	"github.com/approvalbot/approvalbot/server"
	"github.com/approvalbot/approvalbot/store/bolt"
	"github.com/approvalbot/approvalbot/tokens"
)

const benchAPIKey = "bench-api-key-0123456789abcdef"

// newIntakeHandler is the bot's intake path without the network: the real
// server.New handler, approvals.Service on store/bolt (a temp file, fsync
// on), tokens.Issuer and FlexDeploy's intake. No scheduler runs: the
// service's kicks go nowhere, which costs the intake nothing.
func newIntakeHandler(b *testing.B, level zerolog.Level) http.Handler {
	b.Helper()
	store, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	issuer, err := tokens.NewIssuer([]tokens.Key{{ID: "k1", Secret: []byte("bench-token-signing-key-0123456789abcdef")}})
	if err != nil {
		b.Fatal(err)
	}
	rules := approvals.Rules{DefaultTTL: 24 * time.Hour, Policies: []approvals.Policy{{
		Name: "production", Match: map[string]string{"environment": "PROD*"}, Channels: map[string]string{"slack": "CPROD"},
		Approvers: approvals.Approvers{Users: []string{"UALICE"}}, RequiredApprovals: 1,
	}}}
	tool := flexdeploy.Tool(nil, false)
	tools, err := approvals.NewTools(tool)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := approvals.NewService(approvals.Config{
		Store:  store,
		Tokens: issuer,
		Tools:  tools,
		Rules:  func() approvals.Rules { return rules },
	})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(server.Config{
		Tasks:   svc,
		Ready:   store.Ping,
		APIKeys: func() []server.APIKey { return []server.APIKey{{Name: "flexdeploy", Key: benchAPIKey}} },
		Intakes: tool.Intakes,
		// As the bot logs: JSON lines, here to nowhere, at the level given.
		Logger: zerolog.New(io.Discard).Level(level).With().Timestamp().Logger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	return srv.Handler()
}

// intakeBody is a complete FlexDeploy webhook (nothing to enrich).
func intakeBody(id int64) string {
	return `{"taskId":"` + strconv.FormatInt(id, 10) + `","description":"v1.2.3 is about to be deployed to PROD",` +
		`"environment":"PROD","project":"payments","release":"v1.2.3","pipeline":"Standard","requestedBy":"dev@example.com"}`
}

func postTask(b *testing.B, h http.Handler, id int64) {
	req := httptest.NewRequest(http.MethodPost, "/v1/tasks", strings.NewReader(intakeBody(id)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", benchAPIKey)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		b.Errorf("intake of task %d answered %d: %s", id, rec.Code, rec.Body)
	}
}

// BenchmarkIntake is POST /v1/tasks through the real handler and store,
// every task new. clients=1 is one request at a time, so every request
// waits for its own fsync; clients=32 is the load command's concurrency,
// where the store's group commit shares fsyncs. log=info is the bot's
// default level (an access log line per request), warn the bench's.
func BenchmarkIntake(b *testing.B) {
	for _, bc := range []struct {
		clients int
		level   zerolog.Level
	}{
		{1, zerolog.WarnLevel},
		{32, zerolog.WarnLevel},
		{32, zerolog.InfoLevel},
	} {
		b.Run(fmt.Sprintf("clients=%d/log=%s", bc.clients, bc.level), func(b *testing.B) {
			h := newIntakeHandler(b, bc.level)
			var next atomic.Int64
			b.ReportAllocs()
			if bc.clients == 1 {
				for b.Loop() {
					postTask(b, h, next.Add(1))
				}
				return
			}
			// RunParallel runs parallelism × GOMAXPROCS goroutines.
			b.SetParallelism(max(1, bc.clients/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					postTask(b, h, next.Add(1))
				}
			})
		})
	}
}
