package experiments

import "github.com/tcplab/tcplab/impair"

// sigpipe verifies that writing to a connection the peer has reset raises
// SIGPIPE and fails with EPIPE.
var _ = register(&Case{
	ID: "sigpipe", No: 6,
	Title:    "Write after RST",
	Summary:  "after the server is killed, the client writes twice; the second write raises SIGPIPE and fails with EPIPE",
	Trigger:  "SIGKILL to the server process, then two writes from the client",
	Textbook: "Writing to a socket that has received a RST makes the kernel send SIGPIPE (default action: terminate); if it is caught or ignored, write fails with EPIPE. The two come together.",
	Linux: func(Timing) string {
		return "As the textbook: the RST leaves the socket closed with EPIPE pending (tcp_reset in CLOSE_WAIT); the second write fails with EPIPE and SIGPIPE is delivered to the writer (sk_stream_error)."
	},
	Course: func(Timing) []Step {
		return append(killedServerCourse("SIGKILL"), call("client", "send", "EPIPE").sig("SIGPIPE").within(AtOnce()))
	},
	Settings: noTimer,
	Steps: func(r *Run) error {
		return r.killedServer(true, func() error { return r.Inject(impair.Kill, r.opts()) })
	},
	Packets: func(t Timing) []PacketCheck {
		return closedServerPackets(t, "the server's FIN, sent when the kernel closed the killed process's socket")
	},
	Own: &Own{Listener: true, After: func(r *Run) error { return r.Inject(impair.Kill, r.opts()) }},
})
