package experiments

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Operations the dead-peer and middlebox cases add to the agents.

// The result of a bounded recv that nothing ended: the connection is, as
// far as the kernel knows, still there.
const stillWaiting = "still waiting"

func init() {
	extraOps["recv-wait"] = recvWait
	extraOps["recv-all"] = recvAll
	extraOps["idle-since"] = idleSince
}

// bindLocal binds a socket about to connect to a local port (0: none).
func bindLocal(fd, family, port int) error {
	if port == 0 {
		return nil
	}
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: port}
	if family == unix.AF_INET6 {
		sa = &unix.SockaddrInet6{Port: port}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("bind local port %d: %w", port, err)
	}
	return nil
}

// recvWait is a recv bounded by SO_RCVTIMEO = TimeoutMS: when nothing
// arrives and no error ends the connection in that time, the call fails
// with EAGAIN and the result is "still waiting".
func recvWait(a *agent, c Cmd) Event {
	fd := a.conn(c)
	ev := Event{Syscall: "recv", Start: now()}
	tv := unix.NsecToTimeval(int64(c.TimeoutMS) * 1e6)
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		ev.Err = fmt.Sprintf("set SO_RCVTIMEO: %v", err)
		return ev
	}
	defer func() {
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{})
	}()
	buf := make([]byte, 64<<10)
	ev.Start = now()
	n, err := unix.Read(fd, buf)
	for err == unix.EINTR {
		n, err = unix.Read(fd, buf)
	}
	ev.End = now()
	switch {
	case err == unix.EAGAIN:
		ev.Result = stillWaiting
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

// recvAll reads until Len bytes have arrived, or the connection ends:
// "ok" when all came, else what ended it.
func recvAll(a *agent, c Cmd) Event {
	fd := a.conn(c)
	buf := make([]byte, 64<<10)
	ev := Event{Syscall: "recv", Start: now()}
	total := 0
	var err error
	for total < c.Len {
		var n int
		n, err = unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			break
		}
		total += n
	}
	ev.End, ev.N = now(), total
	switch {
	case total >= c.Len:
		ev.Result = "ok"
	case err != nil:
		ev.Result = ErrnoName(err)
	default:
		ev.Result = "eof"
	}
	ev.Signal = a.signalWith(err)
	return ev
}

// idleSince reports, in N, how many milliseconds ago the connection last
// received a segment (TCP_INFO's last_data_recv and last_ack_recv, the
// times keepalive_time_elapsed counts from), as of End.
func idleSince(a *agent, c Cmd) Event {
	ev := Event{Syscall: "idle-since", Start: now()}
	ti, err := unix.GetsockoptTCPInfo(a.conn(c), unix.IPPROTO_TCP, unix.TCP_INFO)
	ev.End, ev.Result = now(), ErrnoName(err)
	if err == nil {
		ev.N = int(min(ti.Last_data_recv, ti.Last_ack_recv))
	}
	return ev
}
