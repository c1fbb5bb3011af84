package topology

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Down removes the lab: every process inside its namespaces, every TCP
// socket left in them, the namespaces (and with them their links), and the
// state file with any temporary one a killed writer left. It is
// idempotent, and safe after a partial Up or from another process than the
// one that made the lab, killed at any moment: a namespace file that is not
// (yet, or any more) a namespace is removed without being entered.
func (l *Lab) Down() error {
	l.downOnce.Do(func() { l.downErr = l.down() })
	return l.downErr
}

func (l *Lab) down() error {
	var errs []error
	var live []*Node
	for _, n := range l.Nodes() {
		if _, err := n.NS(); err == nil {
			live = append(live, n)
		}
	}
	if err := KillProcesses(live...); err != nil {
		errs = append(errs, err)
	}
	// Each node's sockets are its own: clear the three at once.
	fns := make([]func() error, len(live))
	for i, n := range live {
		fns[i] = n.DestroySockets
	}
	if err := parallel(fns...); err != nil {
		errs = append(errs, err)
	}
	for _, n := range l.Nodes() {
		n.release()
		if err := deleteNamedNS(n.NSName); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, removeState(l.ID), removeStaleTemps(l.ID))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove lab %s: %w", l.ID, err)
	}
	return nil
}

// DestroySockets aborts every TCP socket in the node (SOCK_DESTROY). Once
// its process is gone, a socket that still has a FIN or data to send lives
// on as an orphan and holds a reference on its namespace, keeping the
// namespace and its links alive long after it was unmounted.
func (n *Node) DestroySockets() error {
	return n.Do(func() error {
		// Listing sockets walks the kernel's TCP hash table, which every
		// namespace shares (hundreds of thousands of buckets, a fraction
		// of a millisecond): skip a family when the namespace's own
		// counters show no TCP socket of it at all.
		for _, f := range []struct {
			family       uint8
			file, prefix string
		}{
			{unix.AF_INET, "/proc/thread-self/net/sockstat", "TCP: "},
			{unix.AF_INET6, "/proc/thread-self/net/sockstat6", "TCP6: "},
		} {
			if some, err := hasTCP(f.file, f.prefix); err == nil && !some {
				continue
			}
			if err := destroyAll(f.family); err != nil {
				return fmt.Errorf("%s: %w", n.NSName, err)
			}
		}
		return nil
	})
}

// KillProcesses sends SIGKILL to every process whose network namespace is
// one of the nodes', and waits until each has exited. Only processes inside
// a lab namespace are touched: every one of them was started by the lab or
// entered it through the lab.
func KillProcesses(nodes ...*Node) error {
	inodes := map[uint64]bool{}
	for _, n := range nodes {
		ns, err := n.NS()
		if err != nil {
			continue
		}
		ino, err := nsInode(ns)
		if err != nil {
			return fmt.Errorf("identify namespace %s: %w", n.NSName, err)
		}
		inodes[ino] = true
	}
	if len(inodes) == 0 {
		return nil
	}
	pids, err := pidsIn(inodes)
	if err != nil {
		return err
	}
	return killAndWait(pids, 5*time.Second)
}

// pidsIn scans /proc for processes in one of the namespaces. It reads the
// directory unsorted and each link into one buffer: the scan is the larger
// part of what a down costs.
func pidsIn(inodes map[uint64]bool) ([]int, error) {
	dir, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	var pids []int
	buf := make([]byte, 64)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			// tcplab's own threads enter lab namespaces; they are not
			// processes of the lab.
			continue
		}
		n, err := unix.Readlink("/proc/"+name+"/ns/net", buf)
		if err != nil {
			continue // gone, or a kernel thread
		}
		s, ok := strings.CutPrefix(string(buf[:n]), "net:[")
		if !ok {
			continue
		}
		ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
		if err == nil && inodes[ino] {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// killAndWait kills through pidfds, which cannot hit a recycled pid, and
// waits for the exits by polling the pidfds: no sleeping.
func killAndWait(pids []int, timeout time.Duration) error {
	var fds []unix.PollFd
	defer func() {
		for _, p := range fds {
			unix.Close(int(p.Fd))
		}
	}()
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // already gone
		}
		if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
			unix.Close(fd)
			return fmt.Errorf("kill process %d: %w", pid, err)
		}
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	deadline := time.Now().Add(timeout)
	for len(fds) > 0 {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("wait for %d lab processes to exit: timed out", len(fds))
		}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for lab processes: %w", err)
		}
		if n == 0 {
			continue
		}
		keep := fds[:0]
		for _, p := range fds {
			if p.Revents != 0 {
				unix.Close(int(p.Fd))
			} else {
				keep = append(keep, p)
			}
		}
		fds = keep
	}
	return nil
}
