package topology

import (
	"os/exec"
	"syscall"
)

// Start starts cmd inside the node: it is forked from a thread that is
// already in the namespace, so the child and everything it starts live
// there. The child gets SIGKILL if tcplab dies, so a killed tcplab leaves no
// process behind.
func (n *Node) Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// The parent-death signal fires when the forking thread exits. Do
	// returns that thread to the runtime's pool, which keeps it until the
	// process ends, unless it could not leave the namespace, in which
	// case the start fails anyway.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	return n.Do(cmd.Start)
}
