package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// memory is a process's resident set from /proc/PID/status, in kB.
type memory struct {
	HWM  int64 // VmHWM: the peak resident set
	RSS  int64 // VmRSS: the current one, = RssAnon + RssFile + RssShmem
	Anon int64 // RssAnon: heap, stacks (the Go runtime's memory)
	File int64 // RssFile: mapped files (the binary, bbolt's mmap of its file)
}

// parseProcStatus reads a /proc/PID/status. VmHWM and VmRSS are required;
// RssAnon and RssFile (Linux 4.5 and later) are read when present.
func parseProcStatus(r io.Reader) (memory, error) {
	var m memory
	fields := map[string]*int64{"VmHWM": &m.HWM, "VmRSS": &m.RSS, "RssAnon": &m.Anon, "RssFile": &m.File}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		dst := fields[key]
		if !ok || dst == nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("/proc status %s: %q: %w", key, value, err)
		}
		*dst = n
		seen[key] = true
	}
	if err := sc.Err(); err != nil {
		return memory{}, err
	}
	if !seen["VmHWM"] || !seen["VmRSS"] {
		return memory{}, fmt.Errorf("/proc status: VmHWM or VmRSS missing")
	}
	return m, nil
}
