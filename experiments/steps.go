package experiments

import (
	"fmt"
	"time"

	"github.com/tcplab/tcplab/impair"
)

// Helpers the cases' steps share.

func (r *Run) listen() error {
	any := "0.0.0.0"
	if r.Cfg.Family == 6 {
		any = "::"
	}
	ev, err := r.Call(r.Server, Cmd{Op: "listen", Addr: any, Port: r.Port()})
	if err == nil && ev.Result != "ok" {
		err = fmt.Errorf("server listen: %s", ev.Result)
	}
	return err
}

func (r *Run) connect() (Event, error) {
	return r.Call(r.Client, Cmd{Op: "connect", Addr: r.ServerAddr(), Port: r.Port()})
}

// listenConnect has the server listen and the client connect, which must
// succeed; the connection waits in the accept queue.
func (r *Run) listenConnect() (Event, error) {
	if err := r.listen(); err != nil {
		return Event{}, err
	}
	ev, err := r.connect()
	if err == nil && ev.Result != "ok" {
		err = fmt.Errorf("client connect: %s", ev.Result)
	}
	return ev, err
}

// establish opens a connection and has the server accept it. Each step
// returns only once its syscall has: after accept returns, both ends are
// ESTABLISHED.
func (r *Run) establish() error {
	if _, err := r.listenConnect(); err != nil {
		return err
	}
	ev, err := r.Call(r.Server, Cmd{Op: "accept"})
	if err != nil {
		return err
	}
	if ev.Result != "ok" {
		return fmt.Errorf("server accept: %s", ev.Result)
	}
	return nil
}

// established is the course of establish, in both accounts.
func established() []Step {
	return []Step{call("server", "listen", "ok"), call("client", "connect", "ok"), call("server", "accept", "ok")}
}

// Inject applies a fault of the catalogue, marked at the moment it took
// effect, with what it noted on the way; captures of a recreated link
// start again.
func (r *Run) Inject(f impair.Fault, o impair.Options) error {
	at := time.Now()
	e, err := f.Apply(r.Lab, o)
	if err != nil {
		return fmt.Errorf("inject %w", err)
	}
	if !e.At.IsZero() {
		at = e.At
	}
	r.mu.Lock()
	r.marks = append(r.marks, Mark{T: at, Node: f.Node, What: f.Describe(o), Fault: true})
	r.mu.Unlock()
	for _, n := range e.Notes {
		r.Note(f.Node, n.What, n.T)
	}
	if e.Recreated != "" {
		return r.Recapture(e.Recreated)
	}
	return nil
}

// opts are a fault's options for this run: its family and server port.
func (r *Run) opts() impair.Options {
	return impair.Options{Family: r.Cfg.Family, Port: uint16(r.Cfg.Port), Grace: r.Cfg.Grace}
}

// synOpts match only the client's connection attempts.
func (r *Run) synOpts() impair.Options {
	o := r.opts()
	o.SYN = true
	return o
}

// waitServerConnGone waits until the server's stack no longer has the
// connection from the client (a RST tore it down) while the listener still
// holds it in its accept queue. It polls the kernel's socket diagnostics.
func (r *Run) waitServerConnGone(clientLocal string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := socketState(r.Lab.Server, r.Cfg.Family, r.Port(), clientLocal)
		if err != nil {
			return err
		}
		if st.conn == "" && st.acceptQueue > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server still has the connection (%s, accept queue %d) after %v", st.conn, st.acceptQueue, timeout)
		}
		time.Sleep(time.Millisecond) // polling the kernel's state, not waiting out a guess
	}
}

// sendThenRecv has the client write a segment of data and wait for the
// answer, or the error that ends the connection.
func (r *Run) sendThenRecv() error {
	if _, err := r.Call(r.Client, Cmd{Op: "send", Len: 100}); err != nil {
		return err
	}
	_, err := r.Call(r.Client, syscallCmd("recv"))
	return err
}

// killedServer is the shared course of the cases where the server process
// dies: the server waits in recv, the fault ends it, and the client reads
// EOF, writes (drawing a RST), waits for the RST, and with secondWrite
// writes again.
func (r *Run) killedServer(secondWrite bool, fault func() error) error {
	if err := r.establish(); err != nil {
		return err
	}
	if err := r.Begin(r.Server, syscallCmd("recv")); err != nil {
		return err
	}
	if err := fault(); err != nil {
		return err
	}
	if err := r.Killed(r.Server, "recv"); err != nil {
		return err
	}
	if _, err := r.Call(r.Client, syscallCmd("recv")); err != nil {
		return err
	}
	if _, err := r.Call(r.Client, Cmd{Op: "send", Len: 100}); err != nil {
		return err
	}
	if _, err := r.Call(r.Client, Cmd{Op: "poll", TimeoutMS: 5000}); err != nil {
		return err
	}
	if secondWrite {
		_, err := r.Call(r.Client, Cmd{Op: "send", Len: 100})
		return err
	}
	return nil
}

// killedServerCourse is killedServer's course: the server dies of signal
// in recv, the client reads EOF, writes, and poll reports the RST.
func killedServerCourse(signal string) []Step {
	return append(established(),
		call("server", "recv", "killed").sig(signal),
		call("client", "recv", "eof").within(AtOnce()),
		call("client", "send", "ok").within(AtOnce()),
		call("client", "poll", "POLLERR|POLLHUP").within(AtOnce()),
	)
}

// syscallCmd is shorthand for a call with no arguments.
func syscallCmd(op string) Cmd { return Cmd{Op: op} }

// measureIdle measures how long connection sock had been idle (nothing
// received, as its kernel reports with TCP_INFO) when the last fault came:
// its keepalive timer counts from there, so its predictions move that much
// earlier (Measured.IdleBeforeFault).
func (r *Run) measureIdle(sock int) error {
	if err := r.Begin(r.Client, Cmd{Op: "idle-since", Sock: sock}); err != nil {
		return err
	}
	ev, err := r.Client.Next(r.limit) // a measurement, not one of the case's calls
	if err != nil || ev.Err != "" || ev.Result != "ok" {
		return fmt.Errorf("read connection %d's idle time: %v %s %s", sock, err, ev.Err, ev.Result)
	}
	idle := time.Unix(0, ev.End).Add(-time.Duration(ev.N) * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.marks) - 1; i >= 0; i-- {
		if r.marks[i].Fault {
			r.measured.IdleBeforeFault = max(r.marks[i].T.Sub(idle), 0)
			break
		}
	}
	return nil
}
