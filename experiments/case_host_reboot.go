package experiments

import (
	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/impair"
)

// host-reboot verifies that a peer host that lost all TCP state answers
// the client's next segment with a RST: ECONNRESET.
var _ = register(&Case{
	ID: "host-reboot", No: 9,
	Title:    "Server host crashes and reboots",
	Summary:  "the server host loses all TCP state and comes back; the client's next segment draws a RST: ECONNRESET",
	Trigger:  "server namespace flushed (link down, processes killed, sockets destroyed, namespace recreated with the same addresses and MAC, link up)",
	Textbook: "All TCP state on the server is lost; the client's next segment reaches a host that knows nothing of the connection and draws a RST; read fails with ECONNRESET.",
	Linux: func(Timing) string {
		return "As the textbook: the rebooted stack finds no socket for the segment and answers with a RST (tcp_v4_send_reset); recv fails with ECONNRESET."
	},
	Course: func(Timing) []Step {
		return append(established(),
			call("server", "recv", "killed").sig("SIGKILL"),
			call("client", "send", "ok").within(AtOnce()),
			call("client", "recv", "ECONNRESET").within(AtOnce()),
		)
	},
	Settings: noTimer,
	Steps: func(r *Run) error {
		if err := r.establish(); err != nil {
			return err
		}
		if err := r.Begin(r.Server, syscallCmd("recv")); err != nil {
			return err
		}
		if err := r.Inject(impair.Reboot, r.opts()); err != nil {
			return err
		}
		if err := r.Killed(r.Server, "recv"); err != nil {
			return err
		}
		return r.sendThenRecv()
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		return []PacketCheck{
			{Desc: "a FIN from the server (a crash sends none)", Point: PointRouterServer, Match: and(tcpFromServer(a, t.Port), hasFlag(capture.FIN)), Max: 0},
			{Desc: "the client's write after the reboot (its copies count once)", Point: PointRouterServer, AfterFault: true, Match: and(tcpFromClient(a, t.Port), withData), Distinct: bySeq, Min: 1, Max: 1},
			{Desc: "the rebooted server's RST answering it", Point: PointRouterServer, AfterFault: true, Match: and(tcpFromServer(a, t.Port), flagsAre(capture.RST)), Distinct: bySeq, Min: 1, Max: 1},
			{Desc: "that RST forwarded to the client", Point: PointRouterClient, AfterFault: true, Match: and(tcpFromServer(a, t.Port), flagsAre(capture.RST)), Distinct: bySeq, Min: 1, Max: 1},
		}
	},
	Own: &Own{Listener: true, After: func(r *Run) error { return r.Inject(impair.Reboot, r.opts()) }},
})
