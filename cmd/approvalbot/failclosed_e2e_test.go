package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDamagedStoreFileExitsWithAMessage: the real binary on a truncated
// store file says what is wrong and exits 1; it does not panic (exit 2).
func TestDamagedStoreFileExitsWithAMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	for i := range 50 {
		e.submit(fmt.Sprintf(`{"taskId":"trunc%02d","environment":"PROD"}`, i))
	}
	e.stop()
	db := filepath.Join(e.dir, "approvalbot.db")
	info, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(db, info.Size()/3); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(approvalbotBinary(t), "serve", "--config", e.config)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("serve on a truncated store file: %v, want exit status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "damaged") || !strings.Contains(string(out), db) || strings.Contains(string(out), "panic") {
		t.Errorf("the message does not say which file is damaged, or it panicked:\n%s", out)
	}
}

// TestDynamoDBDownFailsFast: with the table unreachable, intake answers 503
// with Retry-After (within the 800 ms bound of a store call) and /readyz
// answers 503 too.
func TestDynamoDBDownFailsFast(t *testing.T) {
	t.Parallel()
	// A DynamoDB that takes connections and drops them at once: the port
	// stays ours (a closed one could be given to another test's server
	// meanwhile), and no request is ever answered.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	dead := "http://" + ln.Addr().String()
	e := newEnv(t)
	e.store = fmt.Sprintf("{driver: dynamodb, dynamodb: {table: down, region: us-east-1, endpoint: %q}}", dead)
	e.start()
	start := time.Now()
	status, h, body := e.api("POST", "/v1/tasks", `{"taskId":"down1"}`)
	t.Logf("intake with DynamoDB down answered %d in %s", status, time.Since(start).Round(time.Millisecond))
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || body["error"] == nil {
		t.Fatalf("intake answered %d %v, want 503 with Retry-After", status, body)
	}
	res, err := http.Get(e.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz answered %d while the store cannot be written", res.StatusCode)
	}
}
