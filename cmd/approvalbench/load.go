package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/approvalbot/approvalbot/internal/slacktest"
)

// requestTimeout bounds every request the bench makes.
const requestTimeout = 10 * time.Second

// newClient is a keep-alive client for concurrency workers on loopback.
func newClient(concurrency int) *http.Client {
	return &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          concurrency,
			MaxIdleConnsPerHost:   concurrency,
			IdleConnTimeout:       30 * time.Second,
			ResponseHeaderTimeout: requestTimeout,
			DisableCompression:    true,
		},
	}
}

// loadResult is one load run.
type loadResult struct {
	N        int
	Errors   int
	FirstErr string
	Elapsed  time.Duration
	Latency  summary
}

// Throughput is successful requests per second.
func (r loadResult) Throughput() float64 { return perSecond(r.N-r.Errors, r.Elapsed) }

// load is what runLoad sends.
type load struct {
	N           int
	Concurrency int
	// Rate, when positive, sends request i at i/Rate seconds after the
	// start (an open loop: arrivals do not wait for answers, up to
	// Concurrency in flight). Zero is a closed loop: each worker sends
	// its next request as soon as the last is answered.
	Rate float64
	// Want is the status that counts as success.
	Want int
}

// runLoad sends l.N requests and times each, to the end of its body, from
// when it was sent or, for a paced load, from when it was due: a request
// that had to wait for a free worker counts its wait (no coordinated
// omission). A request counts as an error unless it is answered l.Want.
func runLoad(ctx context.Context, client *http.Client, l load, newReq func(ctx context.Context, i int) (*http.Request, error)) loadResult {
	latencies := make([]time.Duration, l.N)
	ok := make([]bool, l.N)
	var (
		next     atomic.Int64
		errMu    sync.Mutex
		firstErr string
		wg       sync.WaitGroup
	)
	fail := func(msg string) {
		errMu.Lock()
		defer errMu.Unlock()
		if firstErr == "" {
			firstErr = msg
		}
	}
	began := time.Now()
	for range l.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= l.N || ctx.Err() != nil {
					return
				}
				req, err := newReq(ctx, i)
				if err != nil {
					fail(err.Error())
					continue
				}
				from := time.Now()
				if l.Rate > 0 {
					from = began.Add(time.Duration(float64(i) / l.Rate * float64(time.Second)))
					if wait := time.Until(from); wait > 0 {
						time.Sleep(wait)
					}
				}
				resp, err := client.Do(req)
				if err != nil {
					fail(err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				latencies[i] = time.Since(from)
				if resp.StatusCode != l.Want {
					fail(fmt.Sprintf("%s %s answered %d, want %d", req.Method, req.URL.Path, resp.StatusCode, l.Want))
					continue
				}
				ok[i] = true
			}
		}()
	}
	wg.Wait()
	res := loadResult{N: l.N, Elapsed: time.Since(began), FirstErr: firstErr}
	var good []time.Duration
	for i := range l.N {
		if ok[i] {
			good = append(good, latencies[i])
		} else {
			res.Errors++
		}
	}
	res.Latency = summarize(good)
	return res
}

// taskBodyIn is taskBody of a task of project (which the policies of
// --mode slack match on to pick its channel).
func taskBodyIn(taskID, project string) string {
	// Written out rather than encoded from a map: the load generator runs
	// on the bot's two cores, and what it spends the bot does not get.
	return `{"description":"approvalbench: v1.2.3 is about to be deployed to PROD","environment":"PROD",` +
		`"pipeline":"Standard","project":` + jsonString(project) + `,"release":"v1.2.3","requestedBy":"bench@example.com",` +
		`"taskId":` + jsonString(taskID) + `}`
}

// jsonString is s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// intakeRequest builds the POST /v1/tasks of a task.
func intakeRequest(ctx context.Context, url, apiKey, taskID string) (*http.Request, error) {
	return intakeRequestIn(ctx, url, apiKey, taskID, "payments")
}

// intakeRequestIn builds the POST /v1/tasks of a task of project.
func intakeRequestIn(ctx context.Context, url, apiKey, taskID, project string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/tasks", strings.NewReader(taskBodyIn(taskID, project)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", apiKey)
	return req, nil
}

// recordID is the bot's id of a FlexDeploy task (approvals.TaskRecordID for
// the plain ids the bench uses).
func recordID(taskID string) string { return "flexdeploy-" + taskID }

// clickRequest builds Slack's signed click on a message's approve or
// reject button; signing happens here, before the clock starts.
func clickRequest(ctx context.Context, url, secret string, m message, action, user string) (*http.Request, error) {
	click := slacktest.Click{ActionID: action, Value: m.Token, UserID: user, UserName: user,
		Channel: m.Channel, MessageTS: "1700000000.000001", TriggerID: "trigger-" + user}
	req, err := slacktest.InteractionRequest(url+"/slack/interactions", secret, time.Now(), click.Payload())
	if err != nil {
		return nil, err
	}
	return req.WithContext(ctx), nil
}

// do sends req and returns the status, when it was sent and the time from
// then to the end of the body.
func do(client *http.Client, req *http.Request) (status int, sent time.Time, d time.Duration, err error) {
	sent = time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, sent, 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, sent, time.Since(sent), nil
}
