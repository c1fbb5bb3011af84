package experiments

import "github.com/tcplab/tcplab/impair"

// server-killed verifies that a killed server's FIN gives the client EOF
// and that the client's next write draws a RST.
var _ = register(&Case{
	ID: "server-killed", No: 5,
	Title:    "Server process killed",
	Summary:  "the server process is killed; its FIN gives the client EOF, and the client's next write draws a RST",
	Trigger:  "SIGKILL to the server process",
	Textbook: "The killed process's descriptors are closed and a FIN is sent: the client's read returns 0 (EOF); the client's next write is answered by a RST.",
	Linux: func(Timing) string {
		return "As the textbook: read returns 0 at once; the write succeeds (the data is only queued), the server's stack answers it with a RST, and poll reports POLLERR|POLLHUP."
	},
	Course:   func(Timing) []Step { return killedServerCourse("SIGKILL") },
	Settings: noTimer,
	Steps: func(r *Run) error {
		return r.killedServer(false, func() error { return r.Inject(impair.Kill, r.opts()) })
	},
	Packets: func(t Timing) []PacketCheck {
		return closedServerPackets(t, "the server's FIN, sent when the kernel closed the killed process's socket")
	},
	Own: &Own{Listener: true, After: func(r *Run) error { return r.Inject(impair.Kill, r.opts()) }},
})
