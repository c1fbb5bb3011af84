package topology

import (
	"fmt"
	"os/exec"
	"runtime"
	"syscall"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Start starts cmd inside the node: it is forked from a thread that is
// already in the namespace, so the child and everything it starts live
// there. The child gets SIGKILL if tcplab dies, so a killed tcplab leaves no
// process behind.
//
// The kernel sends the parent-death signal when the thread that forked the
// child ends, not the process (prctl(2), PR_SET_PDEATHSIG). The Go runtime
// ends a thread whenever a goroutine exits while locked to it, so a thread
// returned to the pool could end, and kill the child, long before tcplab
// does. Start therefore keeps the forking thread locked, back in the host
// namespace and blocked waiting for the child to exit, for as long as the
// child lives: one parked thread per running child.
func (n *Node) Start(cmd *exec.Cmd) error {
	ns, err := n.NS()
	if err != nil {
		return err
	}
	if hostNSErr != nil {
		return fmt.Errorf("open host network namespace: %w", hostNSErr)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	// A pidfd from the fork itself, to wait on: opened later from the pid,
	// it could name another process if the child had been reaped and its
	// pid reused meanwhile.
	callerFD := cmd.SysProcAttr.PidFD
	pidfd := -1
	cmd.SysProcAttr.PidFD = &pidfd

	if ShuttingDown() {
		return ErrShuttingDown
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread() // never left the host namespace
			errc <- fmt.Errorf("enter %s: %w", n.NSName, err)
			return
		}
		// Not under closing: Start waits for the child to exec, which a
		// stopped child never does, and Shutdown must not wait for it.
		serr := cmd.Start()
		if serr == nil && ShuttingDown() {
			// Shutdown began meanwhile and may have looked for the lab's
			// processes before this one existed.
			_ = cmd.Process.Kill()
			serr = ErrShuttingDown
			defer cmd.Wait()
		}
		back := netns.Set(hostNS)
		cmd.SysProcAttr.PidFD = callerFD
		if serr == nil && callerFD != nil {
			*callerFD = -1
			if pidfd >= 0 {
				if d, err := unix.FcntlInt(uintptr(pidfd), unix.F_DUPFD_CLOEXEC, 0); err == nil {
					*callerFD = d
				}
			}
		}
		if serr != nil && pidfd >= 0 {
			unix.Close(pidfd)
		}
		switch {
		case back != nil && serr == nil:
			errc <- nil
			waitExit(pidfd, cmd)
			return // still locked in the wrong namespace: the thread ends
		case back != nil:
			errc <- serr
			return
		case serr != nil:
			runtime.UnlockOSThread()
			errc <- serr
			return
		}
		errc <- nil
		waitExit(pidfd, cmd)
		runtime.UnlockOSThread()
	}()
	return <-errc
}

// waitExit blocks the calling thread until the child has exited (it need
// not have been reaped), then closes pidfd.
func waitExit(pidfd int, cmd *exec.Cmd) {
	if pidfd < 0 {
		// No pidfd from the fork (old kernel): open one now. The child
		// cannot have been reaped yet unless cmd.Wait ran, and then the
		// open fails or the wait below ends at once.
		fd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
		if err != nil {
			return
		}
		pidfd = fd
	}
	defer unix.Close(pidfd)
	for {
		p := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		_, err := unix.Poll(p, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil || p[0].Revents != 0 {
			return
		}
	}
}
