package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// summary is the distribution of a set of latencies.
type summary struct {
	N                        int
	P50, P90, P99, Max, Mean time.Duration
}

// summarize sorts nothing of the caller's: it works on a copy.
func summarize(samples []time.Duration) summary {
	if len(samples) == 0 {
		return summary{}
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	var total time.Duration
	for _, d := range sorted {
		total += d
	}
	return summary{
		N:    len(sorted),
		P50:  percentile(sorted, 50),
		P90:  percentile(sorted, 90),
		P99:  percentile(sorted, 99),
		Max:  sorted[len(sorted)-1],
		Mean: total / time.Duration(len(sorted)),
	}
}

// percentile is the nearest-rank percentile p (0 < p <= 100) of sorted
// samples: the smallest sample that at least p% of the samples do not
// exceed. It never interpolates, so it is always a latency that was seen.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// median of samples (the lower middle one for an even count).
func median(samples []time.Duration) time.Duration {
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	return percentile(sorted, 50)
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// perSecond is n events over d.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// mib formats a size in kB (as /proc reports it) in MiB.
func mib(kB int64) string {
	return fmt.Sprintf("%.1f MiB", float64(kB)/1024)
}

// yesNo is the "met" column.
func yesNo(met bool) string {
	if met {
		return "yes"
	}
	return "no"
}

// markdownTable renders a GitHub-flavoured markdown table with its columns
// padded to a common width (in runes), so that it also reads well as plain text. A
// "|" in a cell is escaped.
func markdownTable(header []string, rows [][]string) string {
	width := make([]int, len(header))
	cell := func(row []string, i int) string {
		if i >= len(row) {
			return ""
		}
		return strings.ReplaceAll(row[i], "|", `\|`)
	}
	for i, h := range header {
		width[i] = max(utf8.RuneCountInString(h), 3)
	}
	for _, r := range rows {
		for i := range header {
			width[i] = max(width[i], utf8.RuneCountInString(cell(r, i)))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		b.WriteString("|")
		for i := range header {
			c := cell(row, i)
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)) + " |")
		}
		b.WriteString("\n")
	}
	line(header)
	b.WriteString("|")
	for i := range header {
		b.WriteString(" " + strings.Repeat("-", width[i]) + " |")
	}
	b.WriteString("\n")
	for _, r := range rows {
		line(r)
	}
	return b.String()
}
