package experiments

import (
	"fmt"

	"github.com/tcplab/tcplab/impair"
)

// host-shutdown verifies that a host shut down by init closes its
// connections as a killed process does: a FIN, then a RST for more data.
var _ = register(&Case{
	ID: "host-shutdown", No: 10,
	Title:    "Server host shut down",
	Summary:  "init sends SIGTERM, waits, then SIGKILL; the server closes, a FIN is sent, as when it is killed",
	Trigger:  "SIGTERM to the server process, a grace period (--grace), then SIGKILL if it still runs",
	Textbook: "init sends SIGTERM to every process, waits, then SIGKILLs the rest; the server's descriptors are closed and a FIN is sent: the client's read returns 0, its next write draws a RST.",
	Linux: func(Timing) string {
		return "As the textbook: the server, which does not catch SIGTERM, dies of it at once; the FIN follows at once, long before the SIGKILL would have been due."
	},
	Course: func(Timing) []Step { return killedServerCourse("SIGTERM") },
	Settings: func(cfg Config) Settings {
		return Settings{Basis: fmt.Sprintf("grace period %s between SIGTERM and SIGKILL; the server exits on SIGTERM", fmtDur(cfg.Grace))}
	},
	Steps: func(r *Run) error {
		return r.killedServer(false, func() error { return r.Inject(impair.Shutdown, r.opts()) })
	},
	Packets: func(t Timing) []PacketCheck {
		return closedServerPackets(t, "the server's FIN after SIGTERM (before any SIGKILL)")
	},
	Own: &Own{Listener: true, After: func(r *Run) error { return r.Inject(impair.Shutdown, r.opts()) }},
})
