// Package telemetry turns what the bot does into log lines and Prometheus
// series: the domain's events, HTTP requests, store operations, and the
// outbox backlog at scrape time. It owns no behaviour of the bot; the wiring
// plugs it in.
package telemetry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/smithy-go/logging"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/approvalbot/approvalbot/approvals"
)

// Metrics are approvalbot's Prometheus series, in a registry of their own
// (no global state).
type Metrics struct {
	reg         *prometheus.Registry
	storeOps    *prometheus.HistogramVec
	corrupt     prometheus.Counter
	tasks       *prometheus.CounterVec
	decisions   *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	jobs        *prometheus.CounterVec
	jobDuration *prometheus.HistogramVec
	requests    *prometheus.HistogramVec
	slack429s   *prometheus.CounterVec
}

// New registers the series, and the Go and process collectors, in a new
// registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		storeOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "approvalbot_store_operation_seconds", Help: "Store operation latency, by operation and result (ok, error).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"op", "result"}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "approvalbot_store_corrupt_records_total", Help: "Stored records that could not be decoded and were skipped (each counted once per process).",
		}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "approvalbot_tasks_received_total", Help: "Tasks recorded, by source (repeats not counted).",
		}, []string{"source"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "approvalbot_decisions_total", Help: "Final outcomes, by outcome (approved, rejected, expired, decided elsewhere).",
		}, []string{"outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "approvalbot_refusals_total", Help: "Clicks refused, by reason (the refusal's code).",
		}, []string{"reason"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "approvalbot_outbox_attempts_total", Help: "Outbox job attempts, by job kind, target (slack or the deployment tool) and result (ok, retry, wait, failed).",
		}, []string{"job", "target", "result"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "approvalbot_outbox_attempt_seconds", Help: "Duration of outbox job attempts (Slack and deployment-tool calls).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"job"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "approvalbot_http_request_seconds", Help: "HTTP request latency, by route and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route", "code"}),
		slack429s: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "approvalbot_slack_rate_limited_total", Help: "Slack Web API calls Slack answered 429 (rate limited), by method.",
		}, []string{"method"}),
	}
	m.reg.MustRegister(m.storeOps, m.corrupt, m.tasks, m.decisions, m.refusals, m.jobs, m.jobDuration, m.requests, m.slack429s,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveRequest records one HTTP request.
func (m *Metrics) ObserveRequest(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, statusLabel(status)).Observe(d.Seconds())
}

// statusLabel is strconv.Itoa(status), without allocating for the statuses
// the bot answers most.
func statusLabel(status int) string {
	switch status {
	case 200:
		return "200"
	case 202:
		return "202"
	case 400:
		return "400"
	case 401:
		return "401"
	case 404:
		return "404"
	}
	return strconv.Itoa(status)
}

// SlackRateLimited counts one 429 Slack answered to a call of method.
func (m *Metrics) SlackRateLimited(method string) {
	m.slack429s.WithLabelValues(method).Inc()
}

func (m *Metrics) observeEvent(e approvals.Event) {
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
		m.refusals.WithLabelValues(string(approvals.KindOf(e.Err).Code)).Inc()
	case approvals.EventCorrupt:
		m.corrupt.Inc()
	case approvals.EventJobDone, approvals.EventJobRetry, approvals.EventJobWait, approvals.EventJobFailed:
		result := map[approvals.EventType]string{approvals.EventJobDone: "ok", approvals.EventJobRetry: "retry", approvals.EventJobWait: "wait", approvals.EventJobFailed: "failed"}[e.Type]
		m.jobs.WithLabelValues(string(e.Job), jobTarget(e), result).Inc()
		m.jobDuration.WithLabelValues(string(e.Job)).Observe(e.Duration.Seconds())
	}
}

// jobTarget is whom an outbox job talks to: the task's deployment tool,
// or "chat" for the jobs that go to every chat the task is in (one job
// may reach several; each chat counts its own rate limits).
func jobTarget(e approvals.Event) string {
	switch e.Job {
	case approvals.JobDeliver, approvals.JobAnnounce:
		return e.Source
	}
	return "chat"
}

// Observer turns the domain's events into metrics and log lines.
type Observer struct {
	Log     zerolog.Logger
	Metrics *Metrics
}

var _ approvals.Observer = Observer{}

// Observe records and logs one event.
func (o Observer) Observe(_ context.Context, e approvals.Event) {
	if o.Metrics != nil {
		o.Metrics.observeEvent(e)
	}
	var ev *zerolog.Event
	switch e.Type {
	case approvals.EventError, approvals.EventCorrupt:
		ev = o.Log.Error()
	case approvals.EventJobRetry, approvals.EventJobFailed:
		ev = o.Log.Warn()
		if _, paced := approvals.RetryAfter(e.Err); paced && e.Type == approvals.EventJobRetry && jobTarget(e) == "chat" {
			// A chat's 429 to a call for no task's turn: Slack's own 429s
			// are counted in approvalbot_slack_rate_limited_total.
			ev = o.Log.Debug()
		}
	case approvals.EventJobDone, approvals.EventJobWait, approvals.EventDuplicate:
		// A Slack call held back to its turn under Slack's rate limits
		// (bot/pace.go) is the normal pace of a busy channel, not a
		// warning: a thousand posts into one channel make a thousand.
		ev = o.Log.Debug()
	default:
		ev = o.Log.Info()
	}
	if !ev.Enabled() {
		return // below the log level: nothing to build
	}
	ev = ev.Str("event", string(e.Type))
	if e.TaskID != "" {
		ev = ev.Str("task", e.TaskID)
	}
	if e.Source != "" {
		ev = ev.Str("source", e.Source)
	}
	if e.Job != "" {
		ev = ev.Str("job", string(e.Job)).Int("attempt", e.Attempt).Dur("duration", e.Duration)
	}
	if e.Detail != "" {
		ev = ev.Str("detail", e.Detail)
	}
	if e.Type == approvals.EventRefused {
		ev = ev.Str("code", string(approvals.KindOf(e.Err).Code))
	}
	if e.Err != nil {
		ev = ev.AnErr("error", e.Err)
	}
	ev.Msg("task " + string(e.Type))
}

// Store times every operation of a store.
type Store struct {
	approvals.Store
	Metrics *Metrics
}

func (s Store) observe(op string, start time.Time, err error) {
	result := "ok"
	if err != nil && !answered(err) {
		result = "error"
	}
	s.Metrics.storeOps.WithLabelValues(op, result).Observe(time.Since(start).Seconds())
}

// answered reports the errors that are answers of the domain (a refusal
// that aborted an Update, a task not found, work already taken), not
// failures of the store.
func answered(err error) bool {
	return approvals.IsRefusal(err) || errors.Is(err, approvals.ErrNotFound) ||
		errors.Is(err, approvals.ErrLeased) || errors.Is(err, approvals.ErrNothingToDo)
}

func (s Store) Create(ctx context.Context, t *approvals.Task) (*approvals.Task, bool, error) {
	start := time.Now()
	got, created, err := s.Store.Create(ctx, t)
	s.observe("create", start, err)
	return got, created, err
}

func (s Store) Get(ctx context.Context, id string) (*approvals.Task, error) {
	start := time.Now()
	got, err := s.Store.Get(ctx, id)
	s.observe("get", start, err)
	return got, err
}

func (s Store) Update(ctx context.Context, id string, fn func(*approvals.Task) error) (*approvals.Task, error) {
	start := time.Now()
	got, err := s.Store.Update(ctx, id, fn)
	s.observe("update", start, err)
	return got, err
}

func (s Store) Due(ctx context.Context, before time.Time, after approvals.Cursor, limit int) (approvals.DuePage, error) {
	start := time.Now()
	got, err := s.Store.Due(ctx, before, after, limit)
	s.observe("due", start, err)
	return got, err
}

// outboxCountLimit bounds what one scrape reads of the due index.
const outboxCountLimit = 1000

// outboxCollector reports, at scrape time, how much work is due and how
// long the oldest has waited: the signal that Slack or a deployment tool
// has been unreachable for a while.
type outboxCollector struct {
	store                approvals.Store
	depth, age, readable *prometheus.Desc
}

// WatchOutbox adds the outbox backlog series, read from store at every
// scrape.
func (m *Metrics) WatchOutbox(store approvals.Store) {
	m.reg.MustRegister(&outboxCollector{
		store: store,
		depth: prometheus.NewDesc("approvalbot_outbox_due_tasks", "Tasks whose outbox work (or expiry) is due now; counted up to 1000.", nil, nil),
		age:   prometheus.NewDesc("approvalbot_outbox_oldest_due_seconds", "How long the oldest due work has waited.", nil, nil),
		readable: prometheus.NewDesc("approvalbot_outbox_due_readable",
			"1 when the store's due work could be read at this scrape, 0 when it failed (the backlog series are then left out).", nil, nil),
	})
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.age
	ch <- c.readable
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now := time.Now()
	page, err := c.store.Due(ctx, now, "", outboxCountLimit)
	if err != nil {
		// The scrape goes on: every other series stays fresh, and this
		// one says the store could not be read.
		ch <- prometheus.MustNewConstMetric(c.readable, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.readable, prometheus.GaugeValue, 1)
	oldest := 0.0
	if len(page.Tasks) > 0 {
		if at, ok := page.Tasks[0].DueAt(); ok {
			oldest = max(0, now.Sub(at).Seconds())
		}
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(len(page.Tasks)+len(page.Corrupt)))
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, oldest)
}

// AWSLogger puts the AWS SDK's warnings into the bot's JSON log.
func AWSLogger(log *zerolog.Logger) logging.Logger { return awsLogger{log} }

type awsLogger struct{ log *zerolog.Logger }

func (l awsLogger) Logf(c logging.Classification, format string, v ...any) {
	ev := l.log.Warn()
	if c == logging.Debug {
		ev = l.log.Debug()
	}
	ev.Str("component", "aws-sdk").Msgf(format, v...)
}

// NewLogger is the bot's JSON logger at level (info when empty or unknown).
func NewLogger(level string, out io.Writer) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger()
}
