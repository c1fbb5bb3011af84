package experiments

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tcplab/tcplab/impair"
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
}

// DefaultClientTimeout is how long a user's client may run.
const DefaultClientTimeout = 3 * time.Minute

// Observed is the verdict of a run with the user's own programs: there is
// no declared expectation for a foreign program, only what it did.
const Observed = "observed"

// byoPlan is how a case's fault applies to programs tcplab does not drive:
// before the client starts, or once its connection is established.
type byoPlan struct {
	listener bool // a server must listen
	before   func(r *Run) error
	after    func(r *Run) error
}

func killServerHost(r *Run) error {
	return r.Fault("server", "SIGKILL to every process of the server", func() error { return topology.KillProcesses(r.Lab.Server) })
}

var byoPlans = map[string]byoPlan{
	"connect-timeout": {listener: true, before: func(r *Run) error {
		return r.Fault("router", "drop SYNs to the server", func() error {
			return impair.Drop(r.Lab, impair.Match{Dst: r.ip(topology.Server), DstPort: uint16(r.Port()), SYN: true})
		})
	}},
	"connect-refused": {listener: false, before: func(r *Run) error {
		r.mark("server", fmt.Sprintf("nothing listens on port %d", r.Port()), true)
		return nil
	}},
	"connect-unreachable": {listener: true, before: func(r *Run) error {
		return r.Fault("router", "reject SYNs with ICMP host-unreachable", func() error {
			return impair.Reject(r.Lab, impair.Match{Dst: r.ip(topology.Server), DstPort: uint16(r.Port()), SYN: true}, r.unreachableCodes()[0])
		})
	}},
	"server-killed": {listener: true, after: killServerHost},
	"sigpipe":       {listener: true, after: killServerHost},
	"host-crash": {listener: true, after: func(r *Run) error {
		return r.Fault("server", "server link down (crash)", func() error { return impair.Crash(r.Lab) })
	}},
	"host-unreachable": {listener: true, after: func(r *Run) error {
		return r.Fault("router", "reject client segments with ICMP host-unreachable", func() error {
			return impair.Reject(r.Lab, impair.Match{Src: r.ip(topology.Client), Dst: r.ip(topology.Server), DstPort: uint16(r.Port())}, r.unreachableCodes()[0])
		})
	}},
	"host-reboot": {listener: true, after: func(r *Run) error {
		return r.reboot()
	}},
	"host-shutdown": {listener: true, after: func(r *Run) error {
		var st impair.ShutdownTimes
		err := r.Fault("server", "SIGTERM to every process of the server (shutdown)", func() error {
			var err error
			st, err = impair.ShutdownNode(r.Lab.Server, r.Cfg.Grace)
			return err
		})
		if err == nil && !st.Kill.IsZero() {
			r.Note("server", "SIGKILL to what was left after the grace period", st.Kill)
		}
		return err
	}},
}

// CheckBYO tells whether case c can run with the given programs.
func CheckBYO(c *Case, b BYO) error {
	plan, ok := byoPlans[c.ID]
	if !ok {
		return fmt.Errorf("case %s cannot run with your own programs: its fault is the built-in client's own reset", c.ID)
	}
	if !plan.listener && b.ServerCmd != "" {
		return fmt.Errorf("case %s needs no server: nothing may listen on the port", c.ID)
	}
	if b.ClientTimeout < 0 {
		return errors.New("the client timeout must not be negative")
	}
	return nil
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
}

// program is a user's command running in a node.
type program struct {
	script  string
	cmd     *exec.Cmd
	stderr  *tail
	started time.Time
	ended   time.Time
	done    chan struct{}
	status  *os.ProcessState
	killed  bool
}

func startProgram(n *topology.Node, script string, env []string) (*program, error) {
	p := &program{script: script, stderr: &tail{max: 10}, done: make(chan struct{})}
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = &tail{max: 10}
	cmd.Stderr = p.stderr
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

// stop kills the program's process group and waits for it.
func (p *program) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.killed = true
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *program) report(fault time.Time) *Program {
	out := &Program{Cmd: p.script, StderrTail: p.stderr.lines()}
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

// RunBYO runs case c with the user's programs and returns what they did.
func RunBYO(c *Case, cfg Config, b BYO) Result {
	cfg = cfg.withDefaults()
	if b.ClientTimeout == 0 {
		b.ClientTimeout = DefaultClientTimeout
	}
	began := time.Now()
	r := &Run{Case: c, Cfg: cfg, Settings: settingsOf(c, cfg), start: began, byo: true}
	r.limit = 2*r.Settings.Predicted + cfg.Grace + 15*time.Second
	var client, server *program
	err := CheckBYO(c, b)
	if err == nil {
		plan := byoPlans[c.ID]
		err = r.execute(b.ClientCmd == "", b.ServerCmd == "" && plan.listener, func() error {
			var err error
			client, server, err = r.byoSteps(plan, b)
			return err
		}, func() {
			if client != nil {
				client.stop()
			}
			if server != nil {
				server.stop()
			}
		})
	}
	res := r.result(err)
	res.WallMS = ms(time.Since(began))
	res.OverheadMS = res.WallMS - res.FloorMS
	fault := res.faultAt
	if client != nil {
		res.ClientProgram = client.report(fault)
		res.ClientProgram.TimedOut = client.killed
	}
	if server != nil {
		res.ServerProgram = server.report(fault)
	}
	return res
}

func (r *Run) byoEnv() []string {
	return []string{
		"TCPLAB_SERVER_ADDR=" + r.ip(topology.Server).String(),
		"TCPLAB_SERVER_PORT=" + strconv.Itoa(r.Port()),
		"TCPLAB_CLIENT_ADDR=" + r.ip(topology.Client).String(),
	}
}

func (r *Run) byoSteps(plan byoPlan, b BYO) (client, server *program, err error) {
	switch {
	case b.ServerCmd != "":
		if server, err = startProgram(r.Lab.Server, b.ServerCmd, r.byoEnv()); err != nil {
			return nil, nil, err
		}
		r.mark("server", "server command started", false)
		if err := r.waitListening(server, 10*time.Second); err != nil {
			return nil, server, err
		}
		r.mark("server", fmt.Sprintf("server listens on port %d", r.Port()), false)
	case plan.listener:
		if err := r.listen(); err != nil {
			return nil, nil, err
		}
		if err := r.Begin(r.Server, syscallCmd("accept")); err != nil {
			return nil, nil, err
		}
	}
	if plan.before != nil {
		if err := plan.before(r); err != nil {
			return nil, server, err
		}
	}
	if b.ClientCmd == "" {
		ev, err := r.connect()
		if err != nil || plan.after == nil {
			return nil, server, err
		}
		if ev.Result != "ok" {
			return nil, server, fmt.Errorf("client connect: %s", ev.Result)
		}
		if err := plan.after(r); err != nil {
			return nil, server, err
		}
		return nil, server, r.sendThenRecv()
	}
	if client, err = startProgram(r.Lab.Client, b.ClientCmd, r.byoEnv()); err != nil {
		return nil, server, err
	}
	r.mark("client", "client command started", false)
	deadline := time.Now().Add(b.ClientTimeout)
	if plan.after != nil {
		if err := r.waitEstablished(client, deadline); err != nil {
			return client, server, err
		}
		r.mark("client", "client connection ESTABLISHED", false)
		if err := plan.after(r); err != nil {
			return client, server, err
		}
	}
	select {
	case <-client.done:
	case <-time.After(time.Until(deadline)):
		r.mark("client", fmt.Sprintf("client still running after %v: stopped", b.ClientTimeout), false)
		client.stop()
	}
	return client, server, nil
}

// waitListening polls the server node's sockets until one listens on the
// case's port, or the server program exits.
func (r *Run) waitListening(p *program, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		found := false
		err := r.Lab.Server.Do(func() error {
			socks, err := netlink.SocketDiagTCP(r.afInet())
			for _, s := range socks {
				found = found || (s.State == 10 && int(s.ID.SourcePort) == r.Port())
			}
			return err
		})
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
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
	want := netip.AddrPortFrom(netip.MustParseAddr(r.ip(topology.Server).String()), uint16(r.Port()))
	for {
		found := false
		err := r.Lab.Client.Do(func() error {
			socks, err := netlink.SocketDiagTCP(r.afInet())
			for _, s := range socks {
				ip, _ := netip.AddrFromSlice(s.ID.Destination)
				found = found || (s.State == 1 && netip.AddrPortFrom(ip.Unmap(), s.ID.DestinationPort) == want)
			}
			return err
		})
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
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
