package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill a harness's server when the harness
// itself dies, so no server outlives its run.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
