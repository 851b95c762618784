package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/approvalbot/approvalbot/approvals"
)

// metrics are approvalbot's Prometheus series. They live in a registry of
// their own (no global state).
type metrics struct {
	storeOps    *prometheus.HistogramVec
	tasks       *prometheus.CounterVec
	decisions   *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	jobs        *prometheus.CounterVec
	jobDuration *prometheus.HistogramVec
	requests    *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		storeOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "approvalbot_store_operation_seconds", Help: "Store operation latency, by operation and result (ok, error).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"op", "result"}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "approvalbot_tasks_received_total", Help: "Tasks recorded, by source (repeats not counted).",
		}, []string{"source"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "approvalbot_decisions_total", Help: "Final outcomes, by outcome (approved, rejected, expired, decided elsewhere).",
		}, []string{"outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "approvalbot_refusals_total", Help: "Clicks refused, by reason.",
		}, []string{"reason"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "approvalbot_outbox_attempts_total", Help: "Outbox job attempts, by job kind, target (slack or the deployment tool) and result (ok, retry, failed).",
		}, []string{"job", "target", "result"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "approvalbot_outbox_attempt_seconds", Help: "Duration of outbox job attempts (Slack and deployment-tool calls).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"job"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "approvalbot_http_request_seconds", Help: "HTTP request latency, by route and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route", "code"}),
	}
	reg.MustRegister(m.storeOps, m.tasks, m.decisions, m.refusals, m.jobs, m.jobDuration, m.requests,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

func (m *metrics) observeRequest(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Observe(d.Seconds())
}

func (m *metrics) observeEvent(e approvals.Event) {
	switch e.Type {
	case approvals.EventReceived:
		m.tasks.WithLabelValues(e.Source).Inc()
	case approvals.EventDecided:
		m.decisions.WithLabelValues(e.Detail).Inc()
	case approvals.EventExpired:
		m.decisions.WithLabelValues("expired").Inc()
	case approvals.EventDecidedElsewhere:
		m.decisions.WithLabelValues("decided_elsewhere").Inc()
	case approvals.EventRefused:
		m.refusals.WithLabelValues(refusalReason(e.Err)).Inc()
	case approvals.EventJobDone, approvals.EventJobRetry, approvals.EventJobFailed:
		result := map[approvals.EventType]string{approvals.EventJobDone: "ok", approvals.EventJobRetry: "retry", approvals.EventJobFailed: "failed"}[e.Type]
		m.jobs.WithLabelValues(string(e.Job), jobTarget(e), result).Inc()
		m.jobDuration.WithLabelValues(string(e.Job)).Observe(e.Duration.Seconds())
	}
}

// jobTarget is whom an outbox job talks to: Slack, or the task's
// deployment tool.
func jobTarget(e approvals.Event) string {
	switch e.Job {
	case approvals.JobDeliver, approvals.JobAnnounce:
		return e.Source
	}
	return "slack"
}

func refusalReason(err error) string {
	for reason, sentinel := range map[string]error{
		"bad_token": approvals.ErrBadToken, "expired": approvals.ErrExpired,
		"already_decided": approvals.ErrAlreadyDecided, "not_approver": approvals.ErrNotApprover,
		"self_approval": approvals.ErrSelfApproval, "already_voted": approvals.ErrAlreadyVoted,
		"reason_required": approvals.ErrReasonRequired, "no_policy": approvals.ErrNoPolicy,
	} {
		if errors.Is(err, sentinel) {
			return reason
		}
	}
	return "other"
}

// instrumentedStore times every store operation.
type instrumentedStore struct {
	approvals.Store
	m *metrics
}

func (s instrumentedStore) observe(op string, start time.Time, err error) {
	result := "ok"
	if err != nil && !errors.Is(err, approvals.ErrNotFound) && !isFnError(err) {
		result = "error"
	}
	s.m.storeOps.WithLabelValues(op, result).Observe(time.Since(start).Seconds())
}

// isFnError reports the domain's own refusals that abort an Update; they
// are answers, not store failures.
func isFnError(err error) bool {
	for _, e := range []error{approvals.ErrAlreadyDecided, approvals.ErrAlreadyVoted, approvals.ErrBadToken, approvals.ErrExpired,
		approvals.ErrLeased, approvals.ErrNothingToDo} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s instrumentedStore) Create(ctx context.Context, t *approvals.Task) (*approvals.Task, bool, error) {
	start := time.Now()
	got, created, err := s.Store.Create(ctx, t)
	s.observe("create", start, err)
	return got, created, err
}

func (s instrumentedStore) Get(ctx context.Context, id string) (*approvals.Task, error) {
	start := time.Now()
	got, err := s.Store.Get(ctx, id)
	s.observe("get", start, err)
	return got, err
}

func (s instrumentedStore) Update(ctx context.Context, id string, fn func(*approvals.Task) error) (*approvals.Task, error) {
	start := time.Now()
	got, err := s.Store.Update(ctx, id, fn)
	s.observe("update", start, err)
	return got, err
}

func (s instrumentedStore) Due(ctx context.Context, before time.Time, limit int) ([]*approvals.Task, error) {
	start := time.Now()
	got, err := s.Store.Due(ctx, before, limit)
	s.observe("due", start, err)
	return got, err
}

// outboxCollector reports, at scrape time, how much work is due and how
// long the oldest has waited: the signal that Slack or a deployment tool
// has been unreachable for a while.
type outboxCollector struct {
	store      approvals.Store
	depth, age *prometheus.Desc
}

func newOutboxCollector(store approvals.Store) *outboxCollector {
	return &outboxCollector{
		store: store,
		depth: prometheus.NewDesc("approvalbot_outbox_due_tasks", "Tasks whose outbox work (or expiry) is due now; counted up to 1000.", nil, nil),
		age:   prometheus.NewDesc("approvalbot_outbox_oldest_due_seconds", "How long the oldest due work has waited.", nil, nil),
	}
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.depth; ch <- c.age }

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now := time.Now()
	due, err := c.store.Due(ctx, now, 1000)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.depth, err)
		return
	}
	oldest := 0.0
	if len(due) > 0 {
		if at, ok := due[0].DueAt(); ok {
			oldest = max(0, now.Sub(at).Seconds())
		}
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(len(due)))
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, oldest)
}
