package report

import (
	"fmt"
	"strings"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/topology"
)

// row is one line of the text timeline before condensing: key is the line
// without its time, so repeats (retransmissions) can be folded.
type row struct {
	at  float64
	key string
}

// textTimeline renders the timeline for a reader: every packet on the
// client's side of the router (with whether the router forwarded it),
// packets from the server that the router did not forward, the calls, and
// the faults, with runs of repeats folded into one line.
func textTimeline(r experiments.Result) []string {
	var rows []row
	for _, e := range r.Timeline {
		switch e.Kind {
		case "packet":
			p := e.Packet
			if p.Point == experiments.PointClient || (p.Point == experiments.PointRouterServer && p.Fate != "not forwarded") {
				continue
			}
			side := "c-side"
			if p.Point == experiments.PointRouterServer {
				side = "s-side"
			}
			rows = append(rows, row{e.AtMS, fmt.Sprintf("%-7s %s", side, compactPacket(p))})
		case "call":
			rows = append(rows, row{e.AtMS, fmt.Sprintf("%-7s %s", e.Node, e.Text)})
		default:
			rows = append(rows, row{e.AtMS, fmt.Sprintf("%-7s * %s", e.Node, e.Text)})
		}
	}
	return condense(rows)
}

// condense folds runs of a line, or of a pair of lines, repeated three or
// more times into one entry listing the times.
func condense(rows []row) []string {
	var out []string
	for i := 0; i < len(rows); {
		folded := false
		for _, period := range []int{1, 2} {
			n := repeats(rows[i:], period)
			if n < 3 {
				continue
			}
			for k := 0; k < period; k++ {
				var ts []string
				for j := 0; j < n; j++ {
					ts = append(ts, fmt.Sprintf("%.1f", rows[i+j*period+k].at))
				}
				out = append(out, fmt.Sprintf("%9.1f  %s  ×%d", rows[i+k].at, rows[i+k].key, n))
				out = append(out, wrapTimes(ts)...)
			}
			i += n * period
			folded = true
			break
		}
		if !folded {
			out = append(out, fmt.Sprintf("%9.1f  %s", rows[i].at, rows[i].key))
			i++
		}
	}
	return out
}

// repeats counts how many times the first period rows repeat in a row.
func repeats(rows []row, period int) int {
	if len(rows) < period {
		return 0
	}
	n := 1
	for j := period; j+period <= len(rows); j += period {
		for k := 0; k < period; k++ {
			if rows[j+k].key != rows[k].key {
				return n
			}
		}
		n++
	}
	return n
}

func wrapTimes(ts []string) []string {
	var out []string
	for _, l := range wrap("at "+strings.Join(ts, ", ")+" ms", 64) {
		out = append(out, strings.Repeat(" ", 13)+l)
	}
	return out
}

// compactPacket names the lab's hosts instead of their addresses and
// leaves out sequence numbers, which a reader of a ladder does not need.
func compactPacket(p *experiments.PacketOut) string {
	ep := func(ip string, port uint16) string {
		n := hostName(ip)
		if port != 0 {
			n += fmt.Sprintf(":%d", port)
		}
		return n
	}
	var s string
	switch p.Proto {
	case "tcp":
		s = fmt.Sprintf("%s > %s %s", ep(p.Src, p.SrcPort), ep(p.Dst, p.DstPort), p.Flags)
		if p.Len > 0 {
			s += fmt.Sprintf(" len=%d", p.Len)
		}
	case "icmp", "icmpv6":
		s = fmt.Sprintf("%s > %s ICMP type %d code %d", hostName(p.Src), hostName(p.Dst), *p.ICMPType, *p.ICMPCode)
		if *p.ICMPType == 3 {
			s = fmt.Sprintf("%s > %s ICMP %s", hostName(p.Src), hostName(p.Dst), unreachName(*p.ICMPCode))
		}
	case "arp":
		s = fmt.Sprintf("ARP %s %s > %s", p.ARPOp, hostName(p.Src), hostName(p.Dst))
	default:
		s = fmt.Sprintf("%s > %s %s", hostName(p.Src), hostName(p.Dst), p.Proto)
	}
	switch p.Fate {
	case "forwarded":
		s += " (forwarded)"
	case "not forwarded":
		s += " (not forwarded)"
	}
	return s
}

func hostName(ip string) string {
	switch ip {
	case topology.ClientIP.String(), topology.ClientIP6.String():
		return "client"
	case topology.ServerIP.String(), topology.ServerIP6.String():
		return "server"
	case topology.RouterClientIP.String(), topology.RouterServerIP.String(), topology.RouterClientIP6.String(), topology.RouterServerIP6.String():
		return "router"
	}
	return ip
}

func unreachName(code uint8) string {
	names := map[uint8]string{0: "net-unreachable", 1: "host-unreachable", 2: "prot-unreachable", 3: "port-unreachable",
		4: "frag-needed", 9: "net-prohibited", 10: "host-prohibited", 13: "admin-prohibited"}
	if n, ok := names[code]; ok {
		return n
	}
	return fmt.Sprintf("unreachable code %d", code)
}
