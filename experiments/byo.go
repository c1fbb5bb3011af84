package experiments

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
)

// BYO runs a case with the user's own programs in place of the built-in
// client, server, or both: each a /bin/sh -c command line run inside its
// node, told where to connect by environment variables.
type BYO struct {
	ServerCmd string
	ClientCmd string
	// ClientTimeout stops a client that has not finished by then.
	ClientTimeout time.Duration
	// Expect is what the programs must do; with nothing expected the
	// verdict is observed, else pass or fail.
	Expect Expect
}

// DefaultClientTimeout is how long a user's client may run.
const DefaultClientTimeout = 3 * time.Minute

// Observed is the verdict of a run with the user's own programs: there is
// no declared expectation for a foreign program, only what it did.
const Observed = "observed"

// CheckBYO tells whether case c can run with the given programs.
func CheckBYO(c *Case, b BYO) error {
	if c.Own == nil {
		return fmt.Errorf("case %s cannot run with your own programs: its fault is the built-in client's own reset", c.ID)
	}
	if !c.Own.Listener && b.ServerCmd != "" {
		return fmt.Errorf("case %s needs no server: nothing may listen on the port", c.ID)
	}
	if b.ClientTimeout < 0 {
		return errors.New("the client timeout must not be negative")
	}
	return b.Expect.CheckPrograms(b)
}

// Program is what one of the user's programs did.
type Program struct {
	Cmd          string   `json:"cmd"`
	Exit         *int     `json:"exit"`
	Signal       string   `json:"signal,omitempty"`
	TimedOut     bool     `json:"timed_out"`
	RanMS        float64  `json:"ran_ms"`
	AfterFaultMS *float64 `json:"after_fault_ms"`
	StderrTail   []string `json:"stderr_tail"`
	// Stopped, when tcplab ended the program, says when: "3m0s after it
	// started (--client-timeout)", "5s after the fault (--expect-within)",
	// "when the run ended".
	Stopped string `json:"stopped,omitempty"`
	// StdoutTail is the last lines of its standard output.
	StdoutTail []string `json:"stdout_tail,omitempty"`
}

// program is a user's command running in a node.
type program struct {
	script string
	cmd    *exec.Cmd
	stderr *tail
	// stdout and stderrAll keep the last OutputKept bytes of each stream
	// for the expectations; stdoutTail its last lines for the reports.
	stdout, stderrAll *keep
	stdoutTail        *tail
	// stoppedBy says when tcplab stopped it, if it did; timedOut, that
	// it was at --client-timeout.
	stoppedBy string
	timedOut  bool
	started   time.Time
	ended     time.Time
	done      chan struct{}
	status    *os.ProcessState
	killed    bool
}

func startProgram(n *topology.Node, script string, env []string) (*program, error) {
	p := &program{script: script, stderr: &tail{max: 10}, done: make(chan struct{}),
		stdout: newKeep(OutputKept), stderrAll: newKeep(OutputKept), stdoutTail: &tail{max: 10}}
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = io.MultiWriter(p.stdoutTail, p.stdout)
	cmd.Stderr = io.MultiWriter(p.stderr, p.stderrAll)
	// Its own process group, so a timeout stops the command's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd = cmd
	p.started = time.Now()
	if err := n.Start(cmd); err != nil {
		return nil, fmt.Errorf("start %q in %s: %w", script, n.NSName, err)
	}
	go func() {
		_ = cmd.Wait()
		p.ended = time.Now()
		p.status = cmd.ProcessState
		close(p.done)
	}()
	return p, nil
}

// stop kills the program's process group and waits for it; why says when
// it was stopped, for the report.
func (p *program) stop(why string) {
	select {
	case <-p.done:
		return
	default:
	}
	p.killed = true
	p.stoppedBy = why
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *program) report(fault time.Time) *Program {
	out := &Program{Cmd: p.script, StderrTail: p.stderr.lines(), StdoutTail: p.stdoutTail.lines(), Stopped: p.stoppedBy}
	select {
	case <-p.done:
	default:
		return out
	}
	out.RanMS = ms(p.ended.Sub(p.started))
	if !fault.IsZero() {
		a := ms(p.ended.Sub(fault))
		out.AfterFaultMS = &a
	}
	if ws, ok := p.status.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		out.Signal = SignalName(ws.Signal())
	} else {
		code := p.status.ExitCode()
		out.Exit = &code
	}
	return out
}

// tail keeps the last lines written to it.
type tail struct {
	mu      sync.Mutex
	max     int
	partial string
	buf     []string
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.partial + string(b)
	parts := strings.Split(s, "\n")
	t.partial = parts[len(parts)-1]
	t.buf = append(t.buf, parts[:len(parts)-1]...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(b), nil
}

func (t *tail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string{}, t.buf...)
	if t.partial != "" {
		out = append(out, t.partial)
	}
	if len(out) > t.max {
		out = out[len(out)-t.max:]
	}
	return out
}

// runOwn is the body of a run with the user's programs: it starts them
// in place of the built-in agents and applies the case's fault to them.
func (r *Run) runOwn(b BYO) (client, server *program, err error) {
	return r.byoSteps(*r.Case.Own, b)
}

// reportOwn adds what the user's programs did to the result and, with
// expectations, judges them.
func reportOwn(res *Result, b *BYO, client, server *program) {
	if client != nil {
		res.ClientProgram = client.report(res.faultAt)
		res.ClientProgram.TimedOut = client.timedOut
	}
	if server != nil {
		res.ServerProgram = server.report(res.faultAt)
	}
	if b != nil {
		judgeExpect(res, b.Expect, client, server)
	}
}

// stoppedEnd says a program was stopped because the run was over.
const stoppedEnd = "when the run ended"

func (r *Run) byoEnv() []string {
	return []string{
		"TCPLAB_SERVER_ADDR=" + r.ServerAddr(),
		"TCPLAB_SERVER_PORT=" + strconv.Itoa(r.Port()),
		"TCPLAB_CLIENT_ADDR=" + topology.Addr(topology.Client, r.Cfg.Family).String(),
	}
}

func (r *Run) byoSteps(plan Own, b BYO) (client, server *program, err error) {
	switch {
	case b.ServerCmd != "":
		if server, err = startProgram(r.Lab.Server, b.ServerCmd, r.byoEnv()); err != nil {
			return nil, nil, err
		}
		r.mark("server", "server command started", false)
		// A bound, not a window: a loaded machine starts programs slowly.
		if err := r.waitListening(server, 30*time.Second); err != nil {
			return nil, server, err
		}
		r.mark("server", fmt.Sprintf("server listens on port %d", r.Port()), false)
	case plan.Listener:
		if err := r.listen(); err != nil {
			return nil, nil, err
		}
		if err := r.Begin(r.Server, syscallCmd("accept")); err != nil {
			return nil, nil, err
		}
	}
	if plan.Before != nil {
		if err := plan.Before(r); err != nil {
			return nil, server, err
		}
	}
	if b.ClientCmd == "" {
		ev, err := r.connect()
		if err != nil || plan.After == nil {
			return nil, server, err
		}
		if ev.Result != "ok" {
			return nil, server, fmt.Errorf("client connect: %s", ev.Result)
		}
		if err := plan.After(r); err != nil {
			return nil, server, err
		}
		return nil, server, r.sendThenRecv()
	}
	if client, err = startProgram(r.Lab.Client, b.ClientCmd, r.byoEnv()); err != nil {
		return nil, server, err
	}
	r.mark("client", "client command started", false)
	deadline := time.Now().Add(b.ClientTimeout)
	if plan.After != nil {
		if err := r.waitEstablished(client, deadline); err != nil {
			return client, server, err
		}
		r.mark("client", "client connection ESTABLISHED", false)
		if err := plan.After(r); err != nil {
			return client, server, err
		}
	}
	// A client still running when --expect-within has passed has failed
	// it: stop it then rather than at its timeout.
	timedOut, why := true, fmt.Sprintf("%v after it started (--client-timeout)", b.ClientTimeout)
	what := fmt.Sprintf("client still running after %v: stopped", b.ClientTimeout)
	if w := b.Expect.ClientWithin; w > 0 {
		r.mu.Lock()
		from := firstFault(r.marks)
		r.mu.Unlock()
		if from.IsZero() {
			from = client.started
		}
		if end := from.Add(w); end.Before(deadline) {
			deadline = end
			timedOut, why = false, fmt.Sprintf("%v after the fault (--expect-within)", w)
			what = "client still running " + why + ": stopped"
		}
	}
	select {
	case <-client.done:
	case <-time.After(time.Until(deadline)):
		r.mark("client", what, false)
		client.stop(why)
		client.timedOut = timedOut
	}
	return client, server, nil
}

// waitListening polls the server node's sockets until one listens on the
// case's port, or the server program exits.
func (r *Run) waitListening(p *program, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		found, err := hasSocket(r.Lab.Server, r.Cfg.Family, netlink.TCP_LISTEN, func(s topology.Socket) bool { return int(s.Local.Port()) == r.Port() })
		if err != nil {
			return fmt.Errorf("watch the server's sockets: %w", err)
		}
		if found {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("the server command exited (%s) without listening on port %d; stderr: %s", p.status, r.Port(), strings.Join(p.stderr.lines(), " | "))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server command did not listen on port %d within %v", r.Port(), timeout)
		}
		time.Sleep(time.Millisecond) // polling the kernel's socket table
	}
}

// waitEstablished polls the client node's sockets until a connection to
// the server's port is ESTABLISHED.
func (r *Run) waitEstablished(p *program, deadline time.Time) error {
	want := netip.AddrPortFrom(netip.MustParseAddr(r.ServerAddr()), uint16(r.Port()))
	for {
		found, err := hasSocket(r.Lab.Client, r.Cfg.Family, netlink.TCP_ESTABLISHED, func(s topology.Socket) bool { return s.Remote == want })
		if err != nil {
			return fmt.Errorf("watch the client's sockets: %w", err)
		}
		if found {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("the client command exited (%s) before its connection to %s was established; stderr: %s", p.status, want, strings.Join(p.stderr.lines(), " | "))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the client command had no ESTABLISHED connection to %s before its timeout", want)
		}
		time.Sleep(time.Millisecond) // polling the kernel's socket table
	}
}
