package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/approvalbot/approvalbot/config"
)

// TestBotConfigIsValid loads the configuration the bench writes with the
// bot's own loader, for both stores, so that a change of the
// configuration's keys breaks this test rather than a bench run.
func TestBotConfigIsValid(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"bolt", "dynamodb"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			c := botConfig{
				Listen: "127.0.0.1:8999", Store: store, BoltPath: filepath.Join(dir, "x.db"),
				Table: "approvalbench-main", Endpoint: "http://127.0.0.1:4567",
				SlackAPIURL: "http://127.0.0.1:1/", FlexDeployURL: "http://127.0.0.1:2/flexdeploy/rest/v1",
				Secrets: newSecrets(),
			}
			path := filepath.Join(dir, "approvalbot.yaml")
			if err := writeConfig(path, c); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if cfg.Store.Driver != store || cfg.Server.Listen != c.Listen || cfg.Log.Level != "warn" ||
				cfg.Slack.SigningSecret != c.Secrets.SigningSecret || len(cfg.Policies) != 1 {
				t.Errorf("loaded %+v", cfg)
			}
			if store == "dynamodb" && (cfg.Store.DynamoDB.Endpoint != c.Endpoint || cfg.Store.DynamoDB.Table != c.Table) {
				t.Errorf("dynamodb %+v", cfg.Store.DynamoDB)
			}
		})
	}
}

// TestFloorStoresEachRequest drives the floor with runLoad: every request
// is answered 202 and its body is in the file afterwards.
func TestFloorStoresEachRequest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := startFloor(dir)
	if err != nil {
		t.Fatal(err)
	}
	client := newClient(4)
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const n = 40
	res := runLoad(ctx, client, load{N: n, Concurrency: 4, Want: http.StatusAccepted}, func(ctx context.Context, i int) (*http.Request, error) {
		return intakeRequest(ctx, f.URL, "key", "t"+itoa(i))
	})
	if res.Errors != 0 || res.Latency.N != n {
		t.Fatalf("load on the floor: %+v", res)
	}
	if err := f.close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(filepath.Join(dir, "floor.db"), 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stored := 0
	if err := db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(floorBucket)).ForEach(func(_, v []byte) error {
			if !strings.Contains(string(v), `"taskId":"t`) {
				t.Errorf("stored %q, not a task body", v)
			}
			stored++
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if stored != n {
		t.Errorf("%d bodies stored, want %d", stored, n)
	}
}

// TestRunLoadCountsWrongStatusAsError: a request answered otherwise than
// wanted is an error and does not count in the latencies.
func TestRunLoadCountsWrongStatusAsError(t *testing.T) {
	t.Parallel()
	f, err := startFloor(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	client := newClient(2)
	defer client.CloseIdleConnections()
	res := runLoad(t.Context(), client, load{N: 5, Concurrency: 2, Rate: 1000, Want: http.StatusOK}, func(ctx context.Context, i int) (*http.Request, error) {
		return intakeRequest(ctx, f.URL, "key", "t"+itoa(i))
	})
	if res.Errors != 5 || res.Latency.N != 0 || !strings.Contains(res.FirstErr, "answered 202, want 200") {
		t.Errorf("runLoad = %+v; want 5 errors naming the status", res)
	}
}

// TestTaskBodyIsTheWebhook: the body the load generator writes out is the
// JSON of the task's fields.
func TestTaskBodyIsTheWebhook(t *testing.T) {
	t.Parallel()
	var got map[string]string
	if err := json.Unmarshal([]byte(taskBodyIn(`t"1`, "p\\2")), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"taskId": `t"1`, "description": "approvalbench: v1.2.3 is about to be deployed to PROD",
		"environment": "PROD", "project": "p\\2", "release": "v1.2.3", "pipeline": "Standard", "requestedBy": "bench@example.com"}
	if !maps.Equal(got, want) {
		t.Errorf("body %v, want %v", got, want)
	}
}

// TestScalingConfigsAreValid: the configurations of --mode slack (a policy
// per channel), scale (loop intervals) and replicas (a FlexDeploy user per
// replica, enrichment off) load with the bot's own loader.
func TestScalingConfigsAreValid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var policies strings.Builder
	for c := range 10 {
		policies.WriteString(benchPolicy(fmt.Sprintf("c%02d", c), fmt.Sprintf("p%02d", c), fmt.Sprintf("C%02d", c)))
	}
	c := botConfig{
		Listen: "127.0.0.1:8999", Store: "bolt", BoltPath: filepath.Join(dir, "x.db"),
		SlackAPIURL: "http://127.0.0.1:1/", FlexDeployURL: "http://127.0.0.1:2/flexdeploy/rest/v1",
		Secrets: newSecrets(), Policies: policies.String(), Sweep: "1s", Reconcile: "8s", FDUser: "replica2", NoEnrich: true,
	}
	path := filepath.Join(dir, "approvalbot.yaml")
	if err := writeConfig(path, c); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(cfg.Policies) != 10 || cfg.Policies[3].Channel != "C03" || cfg.Sweeper.Interval != time.Second ||
		cfg.Reconcile.Interval != 8*time.Second || cfg.FlexDeploy.Username != "replica2" || cfg.FlexDeploy.Enrich {
		t.Errorf("loaded %+v", cfg)
	}
}

// TestTeamsConfigIsValid: the configuration of --mode teams (Teams keys,
// server.public_url, approvers by id and email) loads with the bot's own
// loader.
func TestTeamsConfigIsValid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := botConfig{
		Listen: "127.0.0.1:8999", Store: "bolt", BoltPath: filepath.Join(dir, "x.db"),
		SlackAPIURL: "http://127.0.0.1:1/", FlexDeployURL: "http://127.0.0.1:2/flexdeploy/rest/v1",
		Secrets: newSecrets(),
	}
	withTeams(&c, "http://127.0.0.1:3/", "http://127.0.0.1:3/openid", "http://127.0.0.1:3/tenant/oauth2/v2.0/token")
	path := filepath.Join(dir, "approvalbot.yaml")
	if err := writeConfig(path, c); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if !cfg.Teams.Enabled() || cfg.Teams.Channel != teamsChannel || cfg.Server.PublicURL == "" ||
		len(cfg.Policies) != 1 || len(cfg.Policies[0].Approvers.Emails) != len(teamsMembers) || len(cfg.Policies[0].Approvers.Users) != len(approvers) {
		t.Errorf("loaded %+v", cfg)
	}
}
