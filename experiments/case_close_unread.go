package experiments

import (
	"fmt"
	"strconv"

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
	Summary:  "the server closes with a request unread: a RST, not a FIN; the client reads what was sent before it, then ECONNRESET",
	Trigger:  "the client sends a request; the server sees it arrive (poll), never reads it, writes a response and closes; the client reads at once; on a second connection only after the RST has arrived; on a third, likewise, with a response larger than the client's window",
	Textbook: "RFC 1122 4.2.2.13 and RFC 2525 2.17: a close with unread received data sends a RST, not a FIN. The peer's TCP may discard what it was sent just before: a client that reads before the RST arrives gets the response, one that reads after loses it and sees only ECONNRESET (the lost response of HTTP servers).",
	Linux: func(Timing) string {
		return "The close sends a RST right after the response (tcp_close: data_was_unread), counted as TcpExt:TCPAbortOnClose. The client's TCP keeps what it had received: " +
			"read at once or after the RST, recv returns the whole response, the next recv fails with ECONNRESET (and, read at once, the one after returns 0). " +
			"A response larger than the client's window is cut short: the client reads what had been sent when the server closed, the rest is discarded with the server's socket."
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
			// A response larger than the client's window, read after a delay.
			call("client", "connect", "ok"),
			call("server", "accept", "ok"),
			call("client", "send", "ok"),
			call("server", "poll", "POLLIN"),
			call("server", "setsockopt", "ok"),
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
		done, err := r.watchCounters(topology.Server, "the three closes with a request unread", counterWant{"TcpExt:TCPAbortOnClose", 3, 3})
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
		// A response larger than the client's window: the client's receive
		// buffer is small and it does not read until the RST has come, so
		// most of the response is still in the server's send buffer (made
		// large enough to take it all) when the server closes.
		if _, err := r.Call(r.Client, Cmd{Op: "connect", Addr: r.ServerAddr(), Port: r.Port(), Sock: 2, Opts: []Opt{{"SO_RCVBUF", 4096}}}); err != nil {
			return err
		}
		if _, err := r.Call(r.Server, Cmd{Op: "accept", Sock: 2}); err != nil {
			return err
		}
		if err := r.unreadClose(2, false); err != nil {
			return err
		}
		if err := done(); err != nil {
			return err
		}
		// What the client got of the large response: its first read.
		var got int64
		r.mu.Lock()
		for _, ev := range r.events {
			if ev.Node == topology.Client && ev.Syscall == "recv" && ev.Result == "ok" {
				got = int64(ev.N)
			}
		}
		r.mu.Unlock()
		r.countChange(topology.Client, counterWant{fmt.Sprintf("bytes of the %d-byte response the client read", largeResponse), 1, largeResponse - 1},
			"the close with the large response unsent", 0, got)
		return nil
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		rst := and(tcpFromServer(a, t.Port), hasFlag(capture.RST))
		data := and(tcpFromServer(a, t.Port), withData)
		return []PacketCheck{
			{Desc: "the client's requests", Point: PointRouterClient, Match: and(tcpFromClient(a, t.Port), withData), Min: 3, Max: 3},
			// A segment of the client's that crosses the RST finds no
			// socket, and the server's stack answers it with a RST of its
			// own (tcp_v4_send_reset): on a slow machine a second RST on
			// that connection, the same close.
			{Desc: "the server's RSTs, one per close (counted by connection)", Point: PointRouterServer, Match: rst, Min: 3, Max: 3,
				Distinct: func(p Pkt) string { return strconv.Itoa(int(p.DstPort)) }},
			{Desc: "the server's response before the RST, on each connection (the large one in several segments, as far as the client's window allowed)", Point: PointRouterClient, Match: beforeOnConn(rst, data), Min: 4, Max: -1},
			{Desc: "anything but a RST from the server after the RST on its connection", Point: PointRouterClient,
				Match: afterOnConn(rst, and(tcpFromServer(a, t.Port), func(p Pkt) bool { return !p.Flags.Has(capture.RST) })), Max: 0},
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

// largeResponse is close-unread's response larger than the client's window.
const largeResponse = 100000

// unreadClose: on connection sock, the client sends a request, the server
// sees it arrive without reading it, answers and closes. With atOnce the
// client is already waiting in recv; otherwise it reads only once poll has
// seen the RST.
func (r *Run) unreadClose(sock int, atOnce bool) error {
	size := 1000
	if sock == 2 {
		size = largeResponse
	}
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
	if size > 1000 {
		if _, err := r.Call(r.Server, Cmd{Op: "setsockopt", Sock: sock, Opts: []Opt{{"SO_SNDBUF", 4 * largeResponse}}}); err != nil {
			return err
		}
	}
	if _, err := r.Call(r.Server, Cmd{Op: "send", Len: size, Sock: sock}); err != nil {
		return err
	}
	what := "close with the request unread; the client waits in recv"
	switch {
	case size > 1000:
		what = "close with the request unread and most of a large response unsent; the client reads later"
	case !atOnce:
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
