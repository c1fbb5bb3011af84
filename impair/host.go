package impair

import (
	"fmt"
	"time"

	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Crash makes the server host vanish without a word: its link goes down,
// so it sends nothing more (no FIN, no RST), and since the router's
// neighbour entry for it is permanent, the router keeps forwarding into the
// dead link, where the frames are dropped, and never reports anything.
func crash(lab *topology.Lab) error { return lab.SetLink(topology.Server, topology.Router, false) }

// crashReported is a crash as most real routers see it: the router's
// neighbour entries for the server are ordinary, learnt ones. The next frame
// for the server makes the router resolve it again; the ARP requests (or
// neighbour solicitations) go unanswered, and after the kernel's probes
// (net.ipv4.neigh.*.mcast_solicit times retrans_time_ms, 3 x 1 s by
// default) the router answers the queued packets with ICMP host unreachable
// (ICMPv6 address unreachable).
func crashReported(lab *topology.Lab) error {
	if err := crash(lab); err != nil {
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
	for _, f := range []struct {
		af     int
		family int
	}{{unix.AF_INET, 4}, {unix.AF_INET6, 6}} {
		n := &netlink.Neigh{LinkIndex: l.Attrs().Index, Family: f.af, IP: topology.Addr(topology.Server, f.family)}
		if err := h.NeighDel(n); err != nil {
			return fmt.Errorf("forget the server's address %s in %s: %w", n.IP, lab.Router.NSName, err)
		}
	}
	return nil
}

// shutdownTimes records a shutdown's signals and the processes' exit.
type shutdownTimes struct {
	Term, Kill, Exit time.Time // Kill is zero when SIGTERM was enough
}

func waitPidfd(fd int, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left < 0 {
			left = 0
		}
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(p, int((left+time.Millisecond-1)/time.Millisecond)) // round up: never wake before the deadline
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("wait for process exit: %w", err)
		}
		return n > 0, nil
	}
}

// shutdownNode shuts a host down as init does: SIGTERM to every process in
// the node, up to grace for them to exit, then SIGKILL to those left.
func shutdownNode(n *topology.Node, grace time.Duration) (shutdownTimes, error) {
	var st shutdownTimes
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
