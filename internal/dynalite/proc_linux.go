package dynalite

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts dynalite in its own process group, so that stopping
// it also stops anything it spawned, and has the kernel kill it should this
// process die without stopping it (a test timeout's panic, a SIGKILL).
// Pdeathsig fires when the starting thread ends, which is why StartBinary
// starts it from a goroutine locked to its thread for the child's life.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killProcessGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
