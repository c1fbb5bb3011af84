package experiments

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/tcplab/tcplab/topology"
)

// Peer is the parent's side of one agent process.
type Peer struct {
	Role   string
	cmd    *exec.Cmd
	in     io.WriteCloser
	events chan Event
	exited chan struct{}

	mu     sync.Mutex
	stderr bytes.Buffer
	status *os.ProcessState
}

// agentBinary is what an agent runs: this very program.
const agentBinary = "/proc/self/exe"

// StartPeer starts an agent inside node n and waits until it is ready.
func StartPeer(n *topology.Node) (*Peer, error) {
	p := &Peer{Role: n.Role, events: make(chan Event, 16), exited: make(chan struct{})}
	cmd := exec.Command(agentBinary)
	cmd.Env = append(os.Environ(), AgentEnv+"="+n.Role)
	cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s agent: %w", n.Role, err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s agent: %w", n.Role, err)
	}
	p.cmd, p.in = cmd, in
	if err := n.Start(cmd); err != nil {
		return nil, fmt.Errorf("start %s agent in %s: %w", n.Role, n.NSName, err)
	}
	go p.read(out)
	ev, err := p.Next(10 * time.Second)
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("start %s agent: %w", n.Role, err)
	}
	if ev.Syscall != "ready" {
		p.Kill()
		return nil, fmt.Errorf("start %s agent: unexpected first message %+v", n.Role, ev)
	}
	return p, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *Peer) read(out io.Reader) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			ev = Event{Node: p.Role, Err: "bad message from agent: " + err.Error()}
		}
		p.events <- ev
	}
	// Output closed: the process is exiting. Reap it.
	_ = p.cmd.Wait()
	p.mu.Lock()
	p.status = p.cmd.ProcessState
	p.mu.Unlock()
	close(p.exited)
}

// Pid is the agent's process id.
func (p *Peer) Pid() int { return p.cmd.Process.Pid }

// Send asks the agent to make a call, without waiting for its result.
func (p *Peer) Send(c Cmd) error {
	b, _ := json.Marshal(c)
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("send %s to %s agent: %w", c.Op, p.Role, err)
	}
	return nil
}

// ErrExited means the agent process ended before answering.
var ErrExited = errors.New("agent exited")

// Next waits for the agent's next answer.
func (p *Peer) Next(timeout time.Duration) (Event, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ev := <-p.events:
		return ev, nil
	case <-p.exited:
		// Answers written before the exit are still queued.
		select {
		case ev := <-p.events:
			return ev, nil
		default:
		}
		return Event{}, fmt.Errorf("%s agent: %w (%s)", p.Role, ErrExited, p.ExitString())
	case <-t.C:
		return Event{}, fmt.Errorf("%s agent: no answer within %v", p.Role, timeout)
	}
}

// Kill ends the agent and waits for it.
func (p *Peer) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Exited is closed when the agent process has been reaped.
func (p *Peer) Exited() <-chan struct{} { return p.exited }

// Signal returns the signal that ended the agent, or "".
func (p *Peer) Signal() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status == nil {
		return ""
	}
	if ws, ok := p.status.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return SignalName(ws.Signal())
	}
	return ""
}

// ExitString describes how the agent ended.
func (p *Peer) ExitString() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status == nil {
		return "running"
	}
	s := p.status.String()
	if e := bytes.TrimSpace(p.stderr.Bytes()); len(e) > 0 {
		s += ": " + string(e)
	}
	return s
}

// SignalName gives the conventional name of a signal ("SIGPIPE").
func SignalName(s syscall.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", int(s))
}
