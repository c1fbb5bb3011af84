package experiments

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The client and the server of a case are separate processes: tcplab
// re-executes itself with AgentEnv set to the node's role, inside that
// node's namespace. Each agent makes the socket calls it is told to, one at
// a time, on the kernel's sockets directly, and answers each with what the
// call returned. A signal an agent receives is its own.
const AgentEnv = "TCPLAB_AGENT"

// Cmd is one socket call an agent is asked to make.
type Cmd struct {
	Op        string `json:"op"` // listen, accept, connect, send, recv, poll, close, close-rst, setsockopt, or one of extraOps
	Addr      string `json:"addr,omitempty"`
	Port      int    `json:"port,omitempty"`
	Len       int    `json:"len,omitempty"`
	TimeoutMS int    `json:"timeout_ms,omitempty"`
	// Sock selects which of the agent's connections the call is on (0,
	// the default, is the first): a case may hold several.
	Sock int `json:"sock,omitempty"`
	// Opts are socket options set on the socket before listen or connect
	// (for listen, SO_REUSEADDR defaults to 1 unless given), or on the
	// connection by setsockopt.
	Opts []Opt `json:"opts,omitempty"`
	// Backlog is listen's backlog (default 16).
	Backlog int `json:"backlog,omitempty"`
	// LocalPort, if set, is the port connect binds to first, so the
	// packets of each of several connections can be told apart.
	LocalPort int `json:"local_port,omitempty"`
}

// Opt is one socket option: a name from sockOpts and its value (for
// SO_LINGER, the linger time in seconds, turned on).
type Opt struct {
	Name  string `json:"name"`
	Value int    `json:"value"`
}

// sockOpts are the socket options an agent can set, by name.
var sockOpts = map[string]struct{ level, opt int }{
	"SO_REUSEADDR":     {unix.SOL_SOCKET, unix.SO_REUSEADDR},
	"SO_KEEPALIVE":     {unix.SOL_SOCKET, unix.SO_KEEPALIVE},
	"SO_LINGER":        {unix.SOL_SOCKET, unix.SO_LINGER},
	"SO_RCVBUF":        {unix.SOL_SOCKET, unix.SO_RCVBUF},
	"SO_SNDBUF":        {unix.SOL_SOCKET, unix.SO_SNDBUF},
	"TCP_KEEPIDLE":     {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
	"TCP_KEEPINTVL":    {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL},
	"TCP_KEEPCNT":      {unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
	"TCP_USER_TIMEOUT": {unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT},
	"TCP_NODELAY":      {unix.IPPROTO_TCP, unix.TCP_NODELAY},
	"TCP_MAXSEG":       {unix.IPPROTO_TCP, unix.TCP_MAXSEG},
}

// setOpts sets opts on fd.
func setOpts(fd int, opts []Opt) error {
	for _, o := range opts {
		so, ok := sockOpts[o.Name]
		if !ok {
			return fmt.Errorf("unknown socket option %s", o.Name)
		}
		var err error
		if o.Name == "SO_LINGER" {
			err = unix.SetsockoptLinger(fd, so.level, so.opt, &unix.Linger{Onoff: 1, Linger: int32(o.Value)})
		} else {
			err = unix.SetsockoptInt(fd, so.level, so.opt, o.Value)
		}
		if err != nil {
			return fmt.Errorf("set %s=%d: %w", o.Name, o.Value, err)
		}
	}
	return nil
}

// extraOps are operations beyond the basic calls, added by the files of
// the cases that need them.
var extraOps = map[string]func(a *agent, c Cmd) Event{}

// Event is what one call returned, as the agent saw it.
type Event struct {
	Node    string `json:"node"`
	Syscall string `json:"syscall"`
	// Result is "ok", "eof", an errno name such as "ECONNREFUSED", or for
	// poll the events that were reported ("POLLERR|POLLHUP"); "killed" for
	// a call the process never returned from because a signal ended it.
	Result string `json:"result"`
	Signal string `json:"signal"`
	// N is the byte count for send and recv.
	N int `json:"n,omitempty"`
	// Start and End are wall-clock nanoseconds around the call.
	Start int64 `json:"start_ns"`
	End   int64 `json:"end_ns"`
	// Local is the socket's local address after connect or accept.
	Local string `json:"local,omitempty"`
	// RTOus is the retransmission timeout the kernel set for the new
	// connection (TCP_INFO), in microseconds, after connect.
	RTOus uint32 `json:"rto_us,omitempty"`
	// Err is set when the agent could not make the call at all.
	Err string `json:"err,omitempty"`
}

// IsAgent reports whether this process was started as an agent.
func IsAgent() bool { return os.Getenv(AgentEnv) != "" }

// AgentMain runs the agent loop on stdin and stdout and returns the exit
// status. The CLI and test binaries call it first thing when IsAgent.
func AgentMain() int {
	a := &agent{node: os.Getenv(AgentEnv), listenFD: -1, conns: map[int]int{}}
	// SIGPIPE is caught, not ignored: the kernel still delivers it with
	// EPIPE, and the agent reports it as a delivered signal.
	a.sigpipe = make(chan os.Signal, 8)
	signal.Notify(a.sigpipe, syscall.SIGPIPE)
	if err := a.loop(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		return 1
	}
	return 0
}

type agent struct {
	node     string
	listenFD int
	// conns are the connections by slot (Cmd.Sock).
	conns   map[int]int
	sigpipe chan os.Signal
}

// conn is the connection of slot c.Sock, -1 if none.
func (a *agent) conn(c Cmd) int {
	if fd, ok := a.conns[c.Sock]; ok {
		return fd
	}
	return -1
}

func (a *agent) loop(in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	enc := json.NewEncoder(out)
	// Tell the parent the agent is ready, so the first call's timing does
	// not include process start-up.
	if err := enc.Encode(Event{Node: a.node, Syscall: "ready", Result: "ok"}); err != nil {
		return err
	}
	for sc.Scan() {
		var c Cmd
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			return fmt.Errorf("parse command: %w", err)
		}
		ev := a.do(c)
		ev.Node = a.node
		if err := enc.Encode(ev); err != nil {
			return err
		}
	}
	return sc.Err()
}

func (a *agent) do(c Cmd) Event {
	switch c.Op {
	case "listen":
		return a.listen(c)
	case "accept":
		return a.accept(c)
	case "connect":
		return a.connect(c)
	case "send":
		return a.send(c)
	case "recv":
		return a.recv(c)
	case "poll":
		return a.poll(c)
	case "close":
		return a.close(c, false)
	case "close-rst":
		return a.close(c, true)
	case "setsockopt":
		ev := Event{Syscall: "setsockopt", Start: now()}
		err := setOpts(a.conn(c), c.Opts)
		ev.End, ev.Result = now(), ErrnoName(err)
		return ev
	}
	if op, ok := extraOps[c.Op]; ok {
		return op(a, c)
	}
	return Event{Syscall: c.Op, Err: "unknown operation " + c.Op}
}

func now() int64 { return time.Now().UnixNano() }

// ErrnoName returns the symbolic name of an errno ("ECONNREFUSED").
func ErrnoName(err error) string {
	if err == nil {
		return "ok"
	}
	var en unix.Errno
	if errors.As(err, &en) {
		if n := unix.ErrnoName(en); n != "" {
			return n
		}
		return fmt.Sprintf("errno %d", int(en))
	}
	return err.Error()
}

func sockaddr(addr string, port int) (unix.Sockaddr, int, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, 0, fmt.Errorf("parse address %q: %w", addr, err)
	}
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: port, Addr: ip.As4()}, unix.AF_INET, nil
	}
	return &unix.SockaddrInet6{Port: port, Addr: ip.As16()}, unix.AF_INET6, nil
}

func sockName(fd int) string {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return ""
	}
	switch s := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(s.Addr), uint16(s.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(s.Addr), uint16(s.Port)).String()
	}
	return ""
}

func (a *agent) listen(c Cmd) Event {
	ev := Event{Syscall: "listen", Start: now()}
	sa, fam, err := sockaddr(c.Addr, c.Port)
	if err != nil {
		ev.Err = err.Error()
		return ev
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	opts := c.Opts
	if !slices.ContainsFunc(opts, func(o Opt) bool { return o.Name == "SO_REUSEADDR" }) {
		opts = append([]Opt{{"SO_REUSEADDR", 1}}, opts...)
	}
	if err == nil {
		err = setOpts(fd, opts)
	}
	if err == nil {
		err = unix.Bind(fd, sa)
	}
	backlog := c.Backlog
	if backlog <= 0 {
		backlog = 16
	}
	if err == nil {
		err = unix.Listen(fd, backlog)
	}
	ev.End, ev.Result = now(), ErrnoName(err)
	if err == nil {
		a.listenFD = fd
	}
	return ev
}

func (a *agent) accept(c Cmd) Event {
	ev := Event{Syscall: "accept", Start: now()}
	nfd, _, err := unix.Accept4(a.listenFD, unix.SOCK_CLOEXEC)
	for err == unix.EINTR {
		nfd, _, err = unix.Accept4(a.listenFD, unix.SOCK_CLOEXEC)
	}
	ev.End, ev.Result = now(), ErrnoName(err)
	if err == nil {
		a.conns[c.Sock] = nfd
		ev.Local = sockName(nfd)
	}
	return ev
}

// optSocket makes the TCP socket for c's address with c's options; when it
// cannot, it says so in ev (an error, or the failed call's errno) and
// returns false.
func optSocket(c Cmd, ev *Event) (fd int, sa unix.Sockaddr, fam int, ok bool) {
	sa, fam, err := sockaddr(c.Addr, c.Port)
	if err != nil {
		ev.Err = err.Error()
		return -1, nil, 0, false
	}
	fd, err = unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		ev.End, ev.Result = now(), ErrnoName(err)
		return -1, nil, 0, false
	}
	if err := setOpts(fd, c.Opts); err != nil {
		ev.Err = err.Error()
		unix.Close(fd)
		return -1, nil, 0, false
	}
	return fd, sa, fam, true
}

func (a *agent) connect(c Cmd) Event {
	ev := Event{Syscall: "connect", Start: now()}
	fd, sa, fam, ok := optSocket(c, &ev)
	if !ok {
		return ev
	}
	if err := bindLocal(fd, fam, c.LocalPort); err != nil {
		ev.Err = err.Error()
		unix.Close(fd)
		return ev
	}
	ev.Start = now()
	err := unix.Connect(fd, sa)
	ev.End, ev.Result = now(), ErrnoName(err)
	if err != nil {
		unix.Close(fd)
		return ev
	}
	a.conns[c.Sock] = fd
	ev.Local = sockName(fd)
	if ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
		ev.RTOus = ti.Rto
	}
	return ev
}

// send writes with plain write(2): no MSG_NOSIGNAL, so the kernel raises
// SIGPIPE as the textbook says.
func (a *agent) send(c Cmd) Event {
	n := c.Len
	if n <= 0 {
		n = 64
	}
	buf := []byte(strings.Repeat("x", n))
	ev := Event{Syscall: "send", Start: now()}
	w, err := unix.Write(a.conn(c), buf)
	ev.End, ev.Result = now(), ErrnoName(err)
	if w > 0 {
		ev.N = w
	}
	ev.Signal = a.signalWith(err)
	return ev
}

// signalWith reports whether SIGPIPE was delivered with the call's result.
// The kernel raises it before the write returns; the runtime then hands it
// to the channel asynchronously, so with EPIPE wait for it (bounded).
func (a *agent) signalWith(err error) string {
	if err == unix.EPIPE {
		select {
		case <-a.sigpipe:
			return "SIGPIPE"
		case <-time.After(2 * time.Second):
			return ""
		}
	}
	select {
	case <-a.sigpipe:
		return "SIGPIPE"
	default:
		return ""
	}
}

func (a *agent) recv(c Cmd) Event {
	buf := make([]byte, 64<<10)
	ev := Event{Syscall: "recv", Start: now()}
	n, err := unix.Read(a.conn(c), buf)
	for err == unix.EINTR {
		n, err = unix.Read(a.conn(c), buf)
	}
	ev.End = now()
	switch {
	case err != nil:
		ev.Result = ErrnoName(err)
	case n == 0:
		ev.Result = "eof"
	default:
		ev.Result, ev.N = "ok", n
	}
	ev.Signal = a.signalWith(err)
	return ev
}

// poll waits until the connection reports an error or hang-up (the arrival
// of a RST), or the timeout passes.
func (a *agent) poll(c Cmd) Event {
	ev := Event{Syscall: "poll", Start: now()}
	fds := []unix.PollFd{{Fd: int32(a.conn(c)), Events: 0}}
	timeout := c.TimeoutMS
	if timeout <= 0 {
		timeout = -1
	}
	deadline := time.Now().Add(time.Duration(timeout) * time.Millisecond)
	for {
		n, err := unix.Poll(fds, timeout)
		if err == unix.EINTR {
			if timeout > 0 {
				timeout = max(int(time.Until(deadline).Milliseconds()), 0)
			}
			continue
		}
		ev.End = now()
		if err != nil {
			ev.Result = ErrnoName(err)
			return ev
		}
		if n == 0 {
			ev.Result = "timeout"
			return ev
		}
		ev.Result = pollString(fds[0].Revents)
		return ev
	}
}

func pollString(r int16) string {
	var s []string
	for _, f := range []struct {
		bit  int16
		name string
	}{{unix.POLLIN, "POLLIN"}, {unix.POLLOUT, "POLLOUT"}, {unix.POLLERR, "POLLERR"}, {unix.POLLHUP, "POLLHUP"}, {unix.POLLRDHUP, "POLLRDHUP"}} {
		if r&f.bit != 0 {
			s = append(s, f.name)
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "|")
}

// close closes the connection; with rst, SO_LINGER {on, 0} first, which
// makes close send a RST instead of a FIN.
func (a *agent) close(c Cmd, rst bool) Event {
	name := "close"
	if rst {
		name = "close(linger=0)"
	}
	ev := Event{Syscall: name, Start: now()}
	var err error
	if rst {
		err = unix.SetsockoptLinger(a.conn(c), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	if cerr := unix.Close(a.conn(c)); err == nil {
		err = cerr
	}
	delete(a.conns, c.Sock)
	ev.End, ev.Result = now(), ErrnoName(err)
	return ev
}
