package main

import (
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
	tasks       *prometheus.CounterVec
	decisions   *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	jobs        *prometheus.CounterVec
	jobDuration *prometheus.HistogramVec
	requests    *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
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
			Name: "approvalbot_outbox_attempts_total", Help: "Outbox job attempts, by job kind and result (ok, retry, failed).",
		}, []string{"job", "result"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "approvalbot_outbox_attempt_seconds", Help: "Duration of outbox job attempts (Slack and deployment-tool calls).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"job"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "approvalbot_http_request_seconds", Help: "HTTP request latency, by route and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route", "code"}),
	}
	reg.MustRegister(m.tasks, m.decisions, m.refusals, m.jobs, m.jobDuration, m.requests,
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
	case approvals.EventJobDone:
		m.jobs.WithLabelValues(string(e.Job), "ok").Inc()
		m.jobDuration.WithLabelValues(string(e.Job)).Observe(e.Duration.Seconds())
	case approvals.EventJobRetry:
		m.jobs.WithLabelValues(string(e.Job), "retry").Inc()
		m.jobDuration.WithLabelValues(string(e.Job)).Observe(e.Duration.Seconds())
	case approvals.EventJobFailed:
		m.jobs.WithLabelValues(string(e.Job), "failed").Inc()
		m.jobDuration.WithLabelValues(string(e.Job)).Observe(e.Duration.Seconds())
	}
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
