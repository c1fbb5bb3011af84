package impair

import (
	"fmt"
	"time"

	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// setLink sets the link of node `on` that faces node `to` up or down.
func setLink(lab *topology.Lab, on, to string, up bool) error {
	n := lab.Node(on)
	if n == nil {
		return fmt.Errorf("set link: no node %q", on)
	}
	h, err := n.Handle()
	if err != nil {
		return err
	}
	name := topology.LinkName(lab.ID, on, to)
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", name, n.NSName, err)
	}
	if up {
		err = h.LinkSetUp(l)
	} else {
		err = h.LinkSetDown(l)
	}
	if err != nil {
		return fmt.Errorf("set %s in %s up=%v: %w", name, n.NSName, up, err)
	}
	return nil
}

// LinkDown sets the server's link to the router down.
func LinkDown(lab *topology.Lab) error {
	return setLink(lab, topology.Server, topology.Router, false)
}

// LinkUp sets the server's link to the router up again, and restores what
// setting it down flushed: the server's neighbour entries and routes.
func LinkUp(lab *topology.Lab) error {
	if err := setLink(lab, topology.Server, topology.Router, true); err != nil {
		return err
	}
	return lab.Rewire(topology.Server)
}

// Crash makes the server host vanish without a word: its link goes down,
// so it sends nothing more (no FIN, no RST), and since the router's
// neighbour entry for it is permanent, the router keeps forwarding into the
// dead link, where the frames are dropped, and never reports anything.
func Crash(lab *topology.Lab) error { return LinkDown(lab) }

// CrashReported is a crash as most real routers see it: the router's
// neighbour entry for the server is an ordinary, learnt one. The next frame
// for the server makes the router resolve it again; the ARP requests go
// unanswered, and after the kernel's probes (net.ipv4.neigh.*.mcast_solicit
// times retrans_time_ms, 3 x 1 s by default) the router answers the queued
// packets with ICMP host unreachable.
func CrashReported(lab *topology.Lab) error {
	if err := LinkDown(lab); err != nil {
		return err
	}
	h, err := lab.Router.Handle()
	if err != nil {
		return err
	}
	name := topology.LinkName(lab.ID, topology.Router, topology.Server)
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", name, lab.Router.NSName, err)
	}
	n := &netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_INET, IP: topology.ServerIP}
	if err := h.NeighDel(n); err != nil {
		return fmt.Errorf("forget the server's address in %s: %w", lab.Router.NSName, err)
	}
	return nil
}

// Reboot flushes the server host and brings it back, as a crash and a
// reboot would: the link goes down (nothing more leaves the old host), every
// process in the namespace is killed, every TCP socket left (orphans still
// trying to send a FIN hold a reference on their namespace) is destroyed,
// the namespace is deleted, and only once the kernel has really freed it
// (the router's end of the old veth disappears with it) is a new namespace
// made under the same name, with the same addresses and MAC, and its link
// brought up. down, if not nil, runs while the host is down.
func Reboot(lab *topology.Lab, down func()) error {
	s := lab.Server
	if err := LinkDown(lab); err != nil {
		return err
	}
	if err := topology.KillProcesses(s); err != nil {
		return err
	}
	if err := s.DestroySockets(); err != nil {
		return err
	}
	gone, err := watchLinkGone(lab.Router, topology.LinkName(lab.ID, topology.Router, topology.Server))
	if err != nil {
		return err
	}
	if err := s.Delete(); err != nil {
		return err
	}
	if err := gone(10 * time.Second); err != nil {
		return fmt.Errorf("reboot %s: the old namespace was not freed (%w); something still refers to it", s.NSName, err)
	}
	if down != nil {
		down()
	}
	if err := s.Recreate(); err != nil {
		return err
	}
	return lab.Reconnect(topology.Server)
}

// watchLinkGone subscribes to link notifications in node n and returns a
// function that waits until link `name` is deleted.
func watchLinkGone(n *topology.Node, name string) (func(time.Duration) error, error) {
	ns, err := n.NS()
	if err != nil {
		return nil, err
	}
	h, err := n.Handle()
	if err != nil {
		return nil, err
	}
	ch := make(chan netlink.LinkUpdate, 32)
	done := make(chan struct{})
	if err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{Namespace: &ns}); err != nil {
		return nil, fmt.Errorf("watch links in %s: %w", n.NSName, err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		close(done)
		return func(time.Duration) error { return nil }, nil // already gone
	}
	idx := l.Attrs().Index
	return func(timeout time.Duration) error {
		defer close(done)
		t := time.After(timeout)
		for {
			select {
			case u, ok := <-ch:
				if !ok {
					return fmt.Errorf("link notifications in %s closed", n.NSName)
				}
				if u.Header.Type == unix.RTM_DELLINK && int(u.Index) == idx {
					return nil
				}
			case <-t:
				return fmt.Errorf("%s still exists after %v", name, timeout)
			}
		}
	}, nil
}

// ShutdownTimes records a shutdown's signals and the process's exit.
type ShutdownTimes struct {
	Term, Kill, Exit time.Time // Kill is zero when SIGTERM was enough
}

// Shutdown does what init does at shutdown to one process the lab started:
// SIGTERM, up to grace for it to exit, then SIGKILL. The grace period is a
// deliberate wait, cut short when the process exits.
func Shutdown(pid int, grace time.Duration) (ShutdownTimes, error) {
	var st ShutdownTimes
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return st, fmt.Errorf("shutdown process %d: %w", pid, err)
	}
	defer unix.Close(fd)
	st.Term = time.Now()
	if err := unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0); err != nil {
		return st, fmt.Errorf("send SIGTERM to %d: %w", pid, err)
	}
	if exited, err := waitPidfd(fd, grace); err != nil {
		return st, err
	} else if exited {
		st.Exit = time.Now()
		return st, nil
	}
	st.Kill = time.Now()
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
		return st, fmt.Errorf("send SIGKILL to %d: %w", pid, err)
	}
	if exited, err := waitPidfd(fd, 10*time.Second); err != nil {
		return st, err
	} else if !exited {
		return st, fmt.Errorf("process %d still alive 10s after SIGKILL", pid)
	}
	st.Exit = time.Now()
	return st, nil
}

func waitPidfd(fd int, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left < 0 {
			left = 0
		}
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(p, int(left.Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("wait for process exit: %w", err)
		}
		return n > 0, nil
	}
}

// ShutdownNode shuts a host down as init does: SIGTERM to every process in
// the node, up to grace for them to exit, then SIGKILL to those left.
func ShutdownNode(n *topology.Node, grace time.Duration) (ShutdownTimes, error) {
	var st ShutdownTimes
	pids, err := n.Processes()
	if err != nil {
		return st, err
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, pid := range pids {
		if fd, err := unix.PidfdOpen(pid, 0); err == nil {
			fds = append(fds, fd)
		}
	}
	st.Term = time.Now()
	for _, fd := range fds {
		_ = unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0)
	}
	deadline := st.Term.Add(grace)
	var left []int
	for _, fd := range fds {
		exited, err := waitPidfd(fd, max(time.Until(deadline), 0))
		if err != nil {
			return st, err
		}
		if !exited {
			left = append(left, fd)
		}
	}
	if len(left) > 0 {
		st.Kill = time.Now()
		for _, fd := range left {
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		}
		for _, fd := range left {
			if exited, err := waitPidfd(fd, 10*time.Second); err != nil || !exited {
				return st, fmt.Errorf("shutdown %s: a process survived SIGKILL (%v)", n.NSName, err)
			}
		}
	}
	st.Exit = time.Now()
	return st, nil
}
