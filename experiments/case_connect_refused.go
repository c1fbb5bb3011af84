package experiments

import (
	"fmt"

	"github.com/tcplab/tcplab/capture"
)

// connect-refused verifies that a SYN to a port nobody listens on draws a
// RST and connect fails at once with ECONNREFUSED.
var _ = register(&Case{
	ID: "connect-refused", No: 2,
	Title:    "RST answers SYN",
	Summary:  "nothing listens on the server port; the RST makes connect fail at once with ECONNREFUSED",
	Trigger:  "no listener on the server port",
	Textbook: "Nothing listens on that port, so the server's kernel answers the SYN with a RST; the RST is a hard error and connect fails at once with ECONNREFUSED.",
	Linux: func(Timing) string {
		return "As the textbook: the server's stack answers the SYN with RST,ACK (tcp_v4_send_reset) and connect fails at once with ECONNREFUSED."
	},
	Course: func(Timing) []Step {
		return []Step{call("client", "connect", "ECONNREFUSED").within(AtOnce())}
	},
	Settings: noTimer,
	Steps: func(r *Run) error {
		nothingListens(r)
		_, err := r.connect()
		return err
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		return []PacketCheck{
			{Desc: "the server's RST,ACK answering the SYN", Point: PointRouterServer, Match: and(tcpFromServer(a, t.Port), flagsAre(capture.RST|capture.ACK)), Min: 1, Max: 1},
			{Desc: "that RST forwarded to the client", Point: PointRouterClient, Match: and(tcpFromServer(a, t.Port), flagsAre(capture.RST|capture.ACK)), Min: 1, Max: 1},
		}
	},
	Own: &Own{Listener: false, Before: func(r *Run) error { nothingListens(r); return nil }},
})

// nothingListens marks the case's fault: the port has no listener.
func nothingListens(r *Run) {
	r.mark("server", fmt.Sprintf("nothing listens on port %d", r.Port()), true)
}
