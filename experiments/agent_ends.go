package experiments

import (
	"golang.org/x/sys/unix"
)

// Operations of the cases about how connections end and how ports are
// held: binding without listening (to see bind's own error), listening on
// the socket so bound, waiting for a request without reading it.

func init() {
	sockOpts["TCP_DEFER_ACCEPT"] = struct{ level, opt int }{unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT}
	extraOps["bind"] = (*agent).bind
	extraOps["listen-bound"] = (*agent).listenBound
	extraOps["poll-in"] = (*agent).pollIn
}

// bind makes a socket with the command's options and binds it to Addr and
// Port: unlike listen, no SO_REUSEADDR unless asked for. A socket that
// bound is kept as the agent's listening socket, for listen-bound; one that
// did not is closed.
func (a *agent) bind(c Cmd) Event {
	ev := Event{Syscall: "bind", Start: now()}
	fd, sa, _, ok := optSocket(c, &ev)
	if !ok {
		return ev
	}
	ev.Start = now()
	err := unix.Bind(fd, sa)
	ev.End, ev.Result = now(), ErrnoName(err)
	if err != nil {
		unix.Close(fd)
		return ev
	}
	ev.Local = sockName(fd)
	a.listenFD = fd
	return ev
}

// listenBound listens on the socket bind made.
func (a *agent) listenBound(c Cmd) Event {
	backlog := c.Backlog
	if backlog <= 0 {
		backlog = 16
	}
	ev := Event{Syscall: "listen", Start: now()}
	err := unix.Listen(a.listenFD, backlog)
	ev.End, ev.Result = now(), ErrnoName(err)
	return ev
}

// pollIn waits until the connection has something to read, as a server's
// poll or select does, and reads nothing: the result is the events poll
// reported ("POLLIN").
func (a *agent) pollIn(c Cmd) Event {
	ev := Event{Syscall: "poll", Start: now()}
	fds := []unix.PollFd{{Fd: int32(a.conn(c)), Events: unix.POLLIN}}
	timeout := c.TimeoutMS
	if timeout <= 0 {
		timeout = -1
	}
	for {
		n, err := unix.Poll(fds, timeout)
		if err == unix.EINTR {
			continue
		}
		ev.End = now()
		switch {
		case err != nil:
			ev.Result = ErrnoName(err)
		case n == 0:
			ev.Result = "timeout"
		default:
			ev.Result = pollString(fds[0].Revents)
		}
		return ev
	}
}
