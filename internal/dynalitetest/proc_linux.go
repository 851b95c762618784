package dynalitetest

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts dynalite in its own process group, so that stopping
// it also stops anything it spawned, and has the kernel kill it should the
// test binary die without running its cleanup (a test timeout's panic, a
// SIGKILL). Pdeathsig fires when the starting thread ends, which is why
// Main locks its goroutine to that thread.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killProcessGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
