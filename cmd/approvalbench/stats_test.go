package main

import (
	"encoding/base64"
	"io"
	"strings"
	"testing"
	"time"
)

func durations(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one sample is every percentile", durations(7), 1, 7 * time.Millisecond},
		{"one sample, p100", durations(7), 100, 7 * time.Millisecond},
		{"p50 of 1..100 is 50", hundred, 50, 50 * time.Millisecond},
		{"p99 of 1..100 is 99", hundred, 99, 99 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"p99 of 10 samples is the max (nearest rank)", durations(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"p50 of an even count is the lower middle", durations(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p0 is the min", durations(3, 4), 0, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(p%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarizeDoesNotReorderItsInput(t *testing.T) {
	t.Parallel()
	in := durations(30, 10, 20, 40)
	s := summarize(in)
	want := summary{N: 4, P50: 20 * time.Millisecond, P90: 40 * time.Millisecond, P99: 40 * time.Millisecond,
		Max: 40 * time.Millisecond, Mean: 25 * time.Millisecond}
	if s != want {
		t.Errorf("summarize = %+v, want %+v", s, want)
	}
	if in[0] != 30*time.Millisecond || in[1] != 10*time.Millisecond {
		t.Errorf("summarize sorted the caller's slice: %v", in)
	}
	if got := summarize(nil); got != (summary{}) {
		t.Errorf("summarize(nil) = %+v, want zero", got)
	}
	if got := median(durations(9, 1, 5)); got != 5*time.Millisecond {
		t.Errorf("median = %v, want 5ms", got)
	}
}

func TestMarkdownTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header []string
		rows   [][]string
		want   string
	}{
		{
			name:   "columns padded to the widest cell",
			header: []string{"target", "met"},
			rows:   [][]string{{"intake p99 < 10 ms", "yes"}, {"ready", "no"}},
			want: "" +
				"| target             | met |\n" +
				"| ------------------ | --- |\n" +
				"| intake p99 < 10 ms | yes |\n" +
				"| ready              | no  |\n",
		},
		{
			name:   "pipes escaped, short rows filled, width in runes",
			header: []string{"a", "b"},
			rows:   [][]string{{"x|y"}, {"→ 1", "z"}},
			want: "" +
				"| a    | b   |\n" +
				"| ---- | --- |\n" +
				"| x\\|y |     |\n" +
				"| → 1  | z   |\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := markdownTable(tt.header, tt.rows); got != tt.want {
				t.Errorf("markdownTable =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	tests := []struct{ got, want string }{
		{ms(1500 * time.Microsecond), "1.50 ms"},
		{ms(0), "0.00 ms"},
		{mib(51200), "50.0 MiB"},
		{yesNo(true), "yes"},
		{yesNo(false), "no"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if got := perSecond(500, 250*time.Millisecond); got != 2000 {
		t.Errorf("perSecond(500, 250ms) = %v, want 2000", got)
	}
	if got := perSecond(5, 0); got != 0 {
		t.Errorf("perSecond over no time = %v, want 0", got)
	}
}

func TestParseProcStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    memory
		wantErr bool
	}{
		{
			name: "all fields",
			in:   "Name:\tapprovalbot\nVmPeak:\t  900000 kB\nVmHWM:\t   44123 kB\nVmRSS:\t   42000 kB\nRssAnon:\t   30000 kB\nRssFile:\t   12000 kB\nThreads:\t9\n",
			want: memory{HWM: 44123, RSS: 42000, Anon: 30000, File: 12000},
		},
		{name: "an old kernel without the split", in: "VmHWM:\t 5 kB\nVmRSS:\t 4 kB\n", want: memory{HWM: 5, RSS: 4}},
		{name: "missing VmHWM", in: "VmRSS:\t 1 kB\n", wantErr: true},
		{name: "garbage number", in: "VmHWM:\t x kB\nVmRSS:\t 1 kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseProcStatus(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %t", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("= %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTokenTaskID(t *testing.T) {
	t.Parallel()
	payload := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name, token, want string
	}{
		{"a JWT", "h." + payload(`{"tid":"flexdeploy-t1","jti":"x","exp":1}`) + ".sig", "flexdeploy-t1"},
		{"not a JWT", "abc", ""},
		{"no tid", "h." + payload(`{"jti":"x"}`) + ".sig", ""},
		{"bad base64", "h.!!!.sig", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tokenTaskID(tt.token)
			if got != tt.want || (err == nil) != (tt.want != "") {
				t.Errorf("tokenTaskID = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestTargetRows checks the "met" judgement of each target on made-up
// results, not any measurement.
func TestTargetRows(t *testing.T) {
	t.Parallel()
	o := options{concurrency: 32, pending: 10000, rate: 1000}
	good := results{
		Store:      "bolt",
		Starts:     durations(8, 9, 7),
		Intake:     loadResult{N: 5000, Elapsed: time.Second, Latency: summary{N: 5000, P99: 8 * time.Millisecond}},
		Paced:      loadResult{N: 5000, Elapsed: 5 * time.Second, Latency: summary{N: 5000, P99: 3 * time.Millisecond}},
		Click:      summary{N: 500, P99: 5 * time.Millisecond},
		ClickToPut: summary{N: 500, P50: 2 * time.Millisecond},
		Race:       raceResult{Clicks: 50, OK: 50, PUTs: 1},
		Memory:     memory{HWM: 40 << 10, RSS: 38 << 10},
		Binary:     binaryFacts{Size: 15e6, Static: true},
	}
	met := func(r results) map[string]string {
		out := map[string]string{}
		for _, row := range r.targetRows(o) {
			out[row[0]] = row[2]
		}
		return out
	}
	for target, m := range met(good) {
		want := "yes"
		if strings.HasPrefix(target, "container image") {
			want = "n/a"
		}
		if m != want {
			t.Errorf("good results: %q met = %q, want %q", target, m, want)
		}
	}

	bad := good
	bad.Starts = durations(8, 250)
	bad.Intake.Elapsed = 10 * time.Second // 500 tasks/s
	bad.Intake.Latency.P99 = 12 * time.Millisecond
	bad.Race.PUTs = 2
	bad.Memory.HWM = 60 << 10
	got := met(bad)
	for target, want := range map[string]string{
		"ready < 200 ms from process start":                                "no",
		"intake > 1,000 tasks/s (embedded store)":                          "no",
		"intake p99 < 10 ms (embedded store)":                              "yes at 1000/s, no at saturation",
		"50 concurrent clicks on one message: one decision, one REST call": "no",
		"< 50 MB RSS with 10,000 pending tasks":                            "no",
		"click to 200 p99 < 10 ms":                                         "yes",
	} {
		if got[target] != want {
			t.Errorf("bad results: %q met = %q, want %q", target, got[target], want)
		}
	}

	dynamo := good
	dynamo.Store = "dynamodb"
	if m := met(dynamo)["intake > 1,000 tasks/s (embedded store)"]; !strings.HasPrefix(m, "n/a") {
		t.Errorf("dynamodb intake target met = %q, want n/a", m)
	}
	if m := met(results{Store: "bolt"})["click to 200 p99 < 10 ms"]; m != "no" {
		t.Errorf("a target not measured is met = %q, want no", m)
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(options) bool
	}{
		{name: "defaults", args: nil, check: func(o options) bool {
			return o.store == "bolt" && o.tasks == 5000 && o.concurrency == 32 && o.pending == 10000 && o.clicks == 500
		}},
		{name: "dynamodb", args: []string{"--store", "dynamodb"}, check: func(o options) bool { return o.store == "dynamodb" }},
		{name: "clicks capped by tasks", args: []string{"--tasks", "10"}, check: func(o options) bool { return o.clicks == 10 }},
		{name: "unknown store", args: []string{"--store", "mysql"}, wantErr: true},
		{name: "zero concurrency", args: []string{"--concurrency", "0"}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := parseFlags(tt.args, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseFlags(%v) err = %v, wantErr %t", tt.args, err, tt.wantErr)
			}
			if err == nil && !tt.check(o) {
				t.Errorf("parseFlags(%v) = %+v", tt.args, o)
			}
		})
	}
}
