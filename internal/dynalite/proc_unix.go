//go:build unix && !linux

package dynalite

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts dynalite in its own process group, so that stopping
// it also stops anything it spawned.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func killProcessGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
