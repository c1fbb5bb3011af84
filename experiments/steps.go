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

// establish opens a connection and has the server accept it. Each step
// returns only once its syscall has: after accept returns, both ends are
// ESTABLISHED.
func (r *Run) establish() error {
	if err := r.listen(); err != nil {
		return err
	}
	ev, err := r.connect()
	if err != nil {
		return err
	}
	if ev.Result != "ok" {
		return fmt.Errorf("client connect: %s", ev.Result)
	}
	ev, err = r.Call(r.Server, Cmd{Op: "accept"})
	if err != nil {
		return err
	}
	if ev.Result != "ok" {
		return fmt.Errorf("server accept: %s", ev.Result)
	}
	return nil
}

// established is the expected prologue of establish.
func established() []Call {
	return []Call{
		{Node: "server", Syscall: "listen", Result: "ok"},
		{Node: "client", Syscall: "connect", Result: "ok"},
		{Node: "server", Syscall: "accept", Result: "ok"},
	}
}

// waitServerConnGone waits until the server's stack no longer has the
// connection from the client (a RST tore it down) while the listener still
// holds it in its accept queue. It polls the kernel's socket diagnostics.
func (r *Run) waitServerConnGone(clientLocal string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := socketState(r.Lab.Server, r.afInet(), r.Port(), clientLocal)
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

// reboot is the host-reboot fault, with the host's going down and coming
// back marked, and the capture of the recreated link restarted.
func (r *Run) reboot() error {
	if err := r.Fault("server", "server host crashes (reboot begins)", func() error {
		return impair.Reboot(r.Lab, func() {
			r.mark("server", "server host down: processes killed, sockets destroyed, namespace freed", false)
		})
	}); err != nil {
		return err
	}
	r.mark("server", "server host back up: same addresses and MAC, no TCP state", false)
	// The router's link to the server was recreated: capture it anew.
	return r.Recapture(PointRouterServer)
}

// syscallCmd is shorthand for a call with no arguments.
func syscallCmd(op string) Cmd { return Cmd{Op: op} }
