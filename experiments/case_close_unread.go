package experiments

import (
	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/topology"
)

// close-unread verifies that a close with received data left unread sends
// a RST instead of a FIN (RFC 2525 2.17), and what the peer then reads:
// on Linux the response sent before the RST, then ECONNRESET, whether it
// reads at once or only after the RST has arrived.
var _ = register(&Case{
	ID: "close-unread", No: 14,
	Title:    "Server closes with unread data",
	Summary:  "the server answers a request it never read and closes: a RST instead of a FIN; the client still reads the response, then ECONNRESET",
	Trigger:  "the client sends a request; the server sees it arrive (poll), never reads it, writes a response and closes; the client reads at once, and on a second connection only after the RST has arrived",
	Textbook: "RFC 1122 4.2.2.13 and RFC 2525 2.17: a close with unread received data sends a RST, not a FIN. The peer's TCP may discard what it was sent just before: a client that reads before the RST arrives gets the response, one that reads after loses it and sees only ECONNRESET (the lost response of HTTP servers).",
	Linux: func(Timing) string {
		return "The close sends a RST right after the response (tcp_close: data_was_unread), counted as TcpExt:TCPAbortOnClose. The client's TCP keeps what it had received: " +
			"read at once or after the RST, recv returns the whole response, the next recv fails with ECONNRESET, and the one after returns 0."
	},
	Course: func(Timing) []Step {
		return append(established(),
			call("client", "send", "ok"),
			call("server", "poll", "POLLIN"),
			call("server", "send", "ok"),
			call("server", "close", "ok"),
			// Waiting since before the response: not timed from the close.
			call("client", "recv", "ok"),
			call("client", "recv", "ECONNRESET").within(AtOnce()),
			linuxOnly("client", "recv", "eof").within(AtOnce()),
			// Read after a delay: once poll has seen the RST.
			call("client", "connect", "ok"),
			call("server", "accept", "ok"),
			call("client", "send", "ok"),
			call("server", "poll", "POLLIN"),
			call("server", "send", "ok"),
			call("server", "close", "ok"),
			call("client", "poll", "POLLERR|POLLHUP").within(AtOnce()),
			call("client", "recv", "ECONNRESET").onLinux("ok").within(AtOnce()),
			linuxOnly("client", "recv", "ECONNRESET").within(AtOnce()),
		)
	},
	Why: "RFC 2525 describes stacks whose RST flushes the receive queue. Linux's does not: tcp_reset records the error and closes the socket (tcp_done) " +
		"but leaves sk_receive_queue alone, and tcp_recvmsg copies queued data before it looks at sk_err, so the error is reported only once the response " +
		"has been read. The RST cannot overtake the response either: the response was sent when written, and the RST carries the sequence number after it " +
		"(tcp_send_active_reset). What a Linux client loses is only what the server had not yet sent at close (inet_csk_destroy_sock frees the write queue), or " +
		"what it is sent after the RST.",
	Settings: noTimer,
	Steps: func(r *Run) error {
		if err := r.establish(); err != nil {
			return err
		}
		done, err := r.watchCounters(topology.Server, "the two closes with a request unread", counterWant{"TcpExt:TCPAbortOnClose", 2, 2})
		if err != nil {
			return err
		}
		if err := r.unreadClose(0, true); err != nil {
			return err
		}
		if _, err := r.Call(r.Client, Cmd{Op: "connect", Addr: r.ServerAddr(), Port: r.Port(), Sock: 1}); err != nil {
			return err
		}
		if _, err := r.Call(r.Server, Cmd{Op: "accept", Sock: 1}); err != nil {
			return err
		}
		if err := r.unreadClose(1, false); err != nil {
			return err
		}
		return done()
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		rst := and(tcpFromServer(a, t.Port), hasFlag(capture.RST))
		data := and(tcpFromServer(a, t.Port), withData)
		return []PacketCheck{
			{Desc: "the client's requests", Point: PointRouterClient, Match: and(tcpFromClient(a, t.Port), withData), Min: 2, Max: 2},
			{Desc: "the server's RSTs, one per close", Point: PointRouterServer, Match: rst, Min: 2, Max: 2},
			{Desc: "the server's response before the RST, on each connection", Point: PointRouterClient, Match: beforeOnConn(rst, data), Min: 2, Max: 2},
			{Desc: "anything from the server after the RST on its connection", Point: PointRouterClient, Match: afterOnConn(rst, tcpFromServer(a, t.Port)), Max: 0},
			{Desc: "a FIN from the server", Point: PointRouterServer, Match: and(tcpFromServer(a, t.Port), hasFlag(capture.FIN)), Max: 0},
		}
	},
	// Own: the user's server answers and closes as it does; the built-in
	// server, against the user's client, waits for the request and closes
	// as above.
	Own: &Own{Listener: true, Before: func(r *Run) error {
		return r.serverPlays(syscallCmd("poll-in"), Cmd{Op: "send", Len: 1000}, syscallCmd("close"))
	}},
})

// unreadClose: on connection sock, the client sends a request, the server
// sees it arrive without reading it, answers and closes. With atOnce the
// client is already waiting in recv; otherwise it reads only once poll has
// seen the RST.
func (r *Run) unreadClose(sock int, atOnce bool) error {
	if _, err := r.Call(r.Client, Cmd{Op: "send", Len: 100, Sock: sock}); err != nil {
		return err
	}
	if _, err := r.Call(r.Server, Cmd{Op: "poll-in", Sock: sock}); err != nil {
		return err
	}
	if atOnce {
		if err := r.Begin(r.Client, Cmd{Op: "recv", Sock: sock}); err != nil {
			return err
		}
	}
	if _, err := r.Call(r.Server, Cmd{Op: "send", Len: 1000, Sock: sock}); err != nil {
		return err
	}
	what := "close with the request unread; the client waits in recv"
	if !atOnce {
		what = "close with the request unread; the client reads later"
	}
	r.mark("server", what, true)
	if _, err := r.Call(r.Server, Cmd{Op: "close", Sock: sock}); err != nil {
		return err
	}
	if atOnce {
		if _, err := r.Finish(r.Client, "recv"); err != nil {
			return err
		}
	} else if _, err := r.Call(r.Client, Cmd{Op: "poll", TimeoutMS: 5000, Sock: sock}); err != nil {
		return err
	}
	for range 2 {
		if _, err := r.Call(r.Client, Cmd{Op: "recv", Sock: sock}); err != nil {
			return err
		}
	}
	return nil
}
