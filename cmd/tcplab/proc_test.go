package main

// Helpers for the tests that drive whole tcplab processes and watch the
// kernel state they make: their labs, their agents, the sockets inside.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a tcplab process started by a test.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	lines  chan string // stderr, line by line
	done   chan struct{}
	err    error
	began  time.Time
	ended  time.Time // when it exited
}

// startTcplab starts the test binary as the tcplab CLI, in its own process
// group (so that a signal to the group reaches it and its agents, as a
// terminal's Ctrl-C does, and nothing else).
func startTcplab(t testing.TB, args ...string) *proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, lines: make(chan string, 256), done: make(chan struct{})}
	p.cmd = exec.Command(exe, args...)
	p.cmd.Args[0] = "tcplab"
	p.cmd.Env = append(os.Environ(), cliEnv+"=1")
	p.cmd.Stdout = &p.stdout
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.began = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start tcplab %v: %v", args, err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			p.stderr.Write(append(sc.Bytes(), '\n'))
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		<-read
		p.err = p.cmd.Wait()
		p.ended = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) signal(s syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		p.t.Fatalf("send %v to tcplab: %v", s, err)
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to end and returns its exit status: -1 if a
// signal killed it.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("tcplab %v still running after %v; stderr:\n%s", p.cmd.Args[1:], timeout, p.stderr.String())
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	p.t.Fatalf("wait for tcplab: %v", p.err)
	return -1
}

// waitLine waits for a line on the process's stderr containing s.
func (p *proc) waitLine(s string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-p.lines:
			if strings.Contains(l, s) {
				return
			}
		case <-p.done:
			p.t.Fatalf("tcplab ended before saying %q; stderr:\n%s", s, p.stderr.String())
		case <-deadline:
			p.t.Fatalf("tcplab did not say %q within %v; stderr:\n%s", s, timeout, p.stderr.String())
		}
	}
}

// until polls cond, which reads kernel state, until it holds or the
// deadline passes; a poll, not a sleep standing in for an event.
func until(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// labOf returns the id of the lab whose state file names pid as its
// owner, or "".
func labOf(pid int) string {
	ents, err := os.ReadDir(topology.StateDir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || topology.ValidateID(id) != nil {
			continue
		}
		if s, err := topology.ReadState(id); err == nil && s.PID == pid {
			return id
		}
	}
	return ""
}

// children lists the child processes of pid (of every thread of it).
func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(s); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// netnsOf returns the network namespace inode of a process, or 0.
func netnsOf(pid int) uint64 {
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return 0
	}
	s, _ := strings.CutPrefix(link, "net:[")
	n, _ := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
	return n
}

// labInodes returns the inodes of lab id's namespaces that exist, by role.
func labInodes(id string) map[string]uint64 {
	out := map[string]uint64{}
	for _, r := range topology.Roles {
		var st unix.Stat_t
		if unix.Stat(filepath.Join(topology.NetnsDir, topology.NSName(id, r)), &st) == nil {
			out[r] = st.Ino
		}
	}
	return out
}

// holdAttempts bounds the tries at catching a case (or an up) at a given
// moment. A short case can end before a loaded machine lets the test see
// its agents: in full runs of this package about one attempt in seven
// missed, and one case missing three in a row failed a run.
const holdAttempts = 10

// agentsOf waits until tcplab process p has a client and a server agent,
// each in its lab namespace, and returns them by role with the lab's id;
// ok is false if p ended first (a short case can run its course between
// two looks). With hold, each agent is stopped (SIGSTOP) as soon as it is
// seen, which holds the case: tcplab waits for both agents to say they are
// ready before it asks anything of them.
func agentsOf(t testing.TB, p *proc, timeout time.Duration, hold bool) (lab string, agents map[string]int, ok bool) {
	t.Helper()
	pid := p.pid()
	agents = map[string]int{}
	// A case can run past the moment both agents exist before both are
	// seen (a reboot or shutdown ends the server agent at once): then the
	// one held is let go, and the attempt counts as a case that ended first.
	var firstSeen time.Time
	missed := false
	until(t, fmt.Sprintf("the agents of tcplab %d", pid), timeout, func() bool {
		if p.exited() {
			return true
		}
		if hold && len(agents) == 1 && time.Since(firstSeen) > 3*time.Second {
			for _, c := range agents {
				syscall.Kill(c, syscall.SIGCONT)
			}
			missed = true
			return true
		}
		if lab == "" {
			if lab = labOf(pid); lab == "" {
				return false
			}
		}
		ino := labInodes(lab)
		for _, c := range children(pid) {
			for _, r := range []string{topology.Client, topology.Server} {
				if n := netnsOf(c); n != 0 && n == ino[r] {
					if hold && agents[r] != c {
						// Not before it has exec'd: until then tcplab's
						// forking thread waits for it, holding the lock
						// that the other agent's start needs.
						if !isAgent(c) {
							continue
						}
						syscall.Kill(c, syscall.SIGSTOP)
					}
					if len(agents) == 0 {
						firstSeen = time.Now()
					}
					agents[r] = c
				}
			}
		}
		return len(agents) == 2
	})
	if missed {
		p.wait(60 * time.Second)
		return lab, agents, false
	}
	return lab, agents, len(agents) == 2 && !p.exited()
}

// isAgent reports whether process pid has exec'd as an agent (its
// environment names its role).
func isAgent(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	return err == nil && bytes.Contains(b, []byte(experiments.AgentEnv+"="))
}

// mustAgentsOf is agentsOf for a case long enough not to end first.
func mustAgentsOf(t testing.TB, p *proc, timeout time.Duration) (string, map[string]int) {
	t.Helper()
	lab, agents, ok := agentsOf(t, p, timeout, false)
	if !ok {
		t.Fatalf("tcplab ended before its agents were seen; stderr:\n%s", p.stderr.String())
	}
	return lab, agents
}

// pidfds opens a pidfd on each process, to wait for its exit without
// mistaking a reused pid for it.
func pidfds(t testing.TB, pids map[string]int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for role, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Fatalf("pidfd of the %s agent %d: %v", role, pid, err)
		}
		out[role] = fd
		t.Cleanup(func() { unix.Close(fd) })
	}
	return out
}

// waitGone waits until every process behind the pidfds has exited.
func waitGone(t testing.TB, fds map[string]int, timeout time.Duration) {
	t.Helper()
	for role, fd := range fds {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		deadline := time.Now().Add(timeout)
		for {
			n, err := unix.Poll(p, int(time.Until(deadline).Milliseconds())+1)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				t.Fatalf("wait for the %s agent: %v", role, err)
			}
			if n == 0 {
				t.Errorf("the %s agent still runs %v after its tcplab ended", role, timeout)
			}
			break
		}
	}
}

// processesIn lists the processes whose network namespace is one of inodes.
func processesIn(inodes map[string]uint64) []int {
	want := map[uint64]bool{}
	for _, i := range inodes {
		want[i] = true
	}
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if want[netnsOf(pid)] {
			out = append(out, pid)
		}
	}
	return out
}

// stateFilesOf lists the files under the state directory that belong to
// lab id, temporary ones included.
func stateFilesOf(id string) []string {
	ents, _ := os.ReadDir(topology.StateDir)
	var out []string
	for _, e := range ents {
		n := e.Name()
		if n == id+".json" || strings.HasPrefix(n, "."+id+".") {
			out = append(out, n)
		}
	}
	return out
}

// leftovers counts what remains of lab id: namespaces, state files,
// processes in its (recorded) namespaces, links named for it in the host.
func leftovers(id string, inodes map[string]uint64) int {
	n := len(labInodes(id)) + len(stateFilesOf(id)) + len(processesIn(inodes))
	links, _ := netlink.LinkList()
	for _, l := range links {
		if strings.Contains(l.Attrs().Name, "-"+id+"-") {
			n++
		}
	}
	return n
}

// noLeftovers fails the test if anything of lab id remains.
func noLeftovers(t testing.TB, id string, inodes map[string]uint64) {
	t.Helper()
	labtest.NoLeftovers(t, id)
	if f := stateFilesOf(id); len(f) > 0 {
		t.Errorf("state files of lab %s remain: %v", id, f)
	}
	if ps := processesIn(inodes); len(ps) > 0 {
		t.Errorf("processes %v remain in the namespaces of lab %s", ps, id)
	}
}

// tcpStates lists the states of the TCP sockets in node role of lab id,
// through the kernel's socket diagnostics in that namespace. The netlink
// socket is closed before returning: it would keep the namespace alive.
func tcpStates(id, role string) []uint8 {
	ns, err := netns.GetFromPath(filepath.Join(topology.NetnsDir, topology.NSName(id, role)))
	if err != nil {
		return nil
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_INET_DIAG)
	if err != nil {
		return nil
	}
	defer h.Close()
	socks, err := h.SocketDiagTCP(unix.AF_INET)
	if err != nil {
		return nil
	}
	var out []uint8
	for _, s := range socks {
		out = append(out, s.State)
	}
	return out
}

// TCP states (include/net/tcp_states.h).
const (
	tcpEstablished = 1
	tcpSynSent     = 2
	tcpListen      = 10
)

func hasState(states []uint8, want uint8) bool {
	for _, s := range states {
		if s == want {
			return true
		}
	}
	return false
}

// linkUp reports whether link name in node role of lab id is up (admin).
func linkUp(id, role, name string) (up, found bool) {
	ns, err := netns.GetFromPath(filepath.Join(topology.NetnsDir, topology.NSName(id, role)))
	if err != nil {
		return false, false
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return false, false
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return false, false
	}
	return l.Attrs().Flags&1 != 0, true // net.FlagUp
}

// procState is the one-letter state of a process (R, S, T, Z...).
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return ""
	}
	return string(b[i+2])
}

// stopped waits until the process is stopped by SIGSTOP.
func stopped(t testing.TB, pid int) {
	t.Helper()
	if !stoppedOrGone(t, pid) {
		t.Fatalf("process %d ended instead of stopping", pid)
	}
}

// stoppedOrGone waits until the process is stopped by SIGSTOP, or has
// ended (false).
func stoppedOrGone(t testing.TB, pid int) bool {
	t.Helper()
	var st string
	until(t, fmt.Sprintf("process %d to stop", pid), 5*time.Second, func() bool {
		st = procState(pid)
		return st == "T" || st == "Z" || st == "X" || st == ""
	})
	return st == "T"
}
