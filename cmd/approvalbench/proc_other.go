//go:build !linux

package main

import (
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// The bench measures memory from /proc: on other systems it runs, but
// reports no memory.

func setProcAttr(*exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if sig == syscall.SIGKILL {
		_ = cmd.Process.Kill()
		return
	}
	_ = cmd.Process.Signal(sig)
}

func procMemory(int) (memory, error) {
	return memory{}, errors.New("memory is read from /proc, which this system lacks")
}

func cpuModel() string { return "unknown" }

func procCPU(int) (time.Duration, error) {
	return 0, errors.New("CPU times are read from /proc, which this system lacks")
}

func selfCPU() time.Duration { return 0 }
