package report

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/experiments"
	"golang.org/x/sys/unix"
)

// TextOptions tune the text report. The caller decides: the renderer never
// looks at the terminal itself, so output to a file or a log stays plain.
type TextOptions struct {
	// Color adds ANSI colours to the ladder.
	Color bool
}

// WantColor tells whether w is a terminal and NO_COLOR is unset (or empty,
// as no-color.org says), which is when a CLI should ask for colour.
func WantColor(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// The ladder's columns.
const (
	colClient = iota
	colRouter
	colServer
)

var colNames = [3]string{"client", "router", "server"}

type stepKind int

const (
	stepArrow stepKind = iota
	stepCall
	stepMark
)

// step is one row of a ladder: a packet as an arrow between columns, a call
// beside its host, or a fault or note on its node. The text ladder and the
// HTML diagram draw the same steps.
type step struct {
	at   float64
	kind stepKind
	// from and to are the arrow's columns; a call or a mark has both set
	// to its node's column.
	from, to int
	// dropped: the router did not forward the packet; the arrow ends there.
	dropped bool
	// through: the router forwarded the packet; the arrow crosses it.
	through bool
	label   string // a packet's essentials, a call and its result, a mark's text
	// resend counts the earlier copies of the same segment from the same
	// sender: 1 for the first retransmission.
	resend int
	bytes  int    // a packet's payload
	class  string // colour class: syn ack data fin rst icmp other; ok err eof; fault note
	detail string // the full decode, for hovering
	key    string // equal for repeats (retransmissions), to fold them
}

// ladderSteps turns a timeline into ladder rows. Each packet is drawn once,
// where it entered the router: the client's packets from the router's
// client side, the server's from its server side, and the router's own
// (ICMP) from the side it left by; the copies the router forwarded are the
// same packets and the client's capture duplicates the router's.
func ladderSteps(r experiments.Result) []step {
	var out []step
	sent := map[string]int{}
	for _, e := range r.Timeline {
		switch e.Kind {
		case "packet":
			s, ok := packetStep(e)
			if !ok {
				continue
			}
			// A segment that takes sequence space and comes again is a
			// retransmission; repeated pure ACKs are not.
			if p := e.Packet; p.Proto == "tcp" && (p.Len > 0 || p.Flags.Has(capture.SYN) || p.Flags.Has(capture.FIN)) {
				k := fmt.Sprintf("%d %s", s.from, e.Text)
				s.resend = sent[k]
				sent[k]++
			}
			out = append(out, s)
		case "call":
			c := nodeColumn(e.Node)
			out = append(out, step{at: e.AtMS, kind: stepCall, from: c, to: c, label: e.Text,
				class: callClass(e.Text), detail: fmt.Sprintf("%.1f ms: %s %s", e.AtMS, e.Node, e.Text),
				key: "call " + e.Node + " " + e.Text})
		default:
			c := nodeColumn(e.Node)
			class := "note"
			if e.Kind == "fault" {
				class = "fault"
			}
			out = append(out, step{at: e.AtMS, kind: stepMark, from: c, to: c, label: e.Text, class: class,
				detail: fmt.Sprintf("%.1f ms: %s at the %s: %s", e.AtMS, class, e.Node, e.Text),
				key:    e.Kind + " " + e.Node + " " + e.Text})
		}
	}
	return out
}

func nodeColumn(node string) int {
	switch node {
	case "router":
		return colRouter
	case "server":
		return colServer
	}
	return colClient
}

// packetStep maps a captured packet to an arrow, or reports that it is a
// copy drawn elsewhere (or link-layer traffic, which a ladder leaves out).
func packetStep(e experiments.Entry) (step, bool) {
	p := e.Packet
	if p == nil || p.Proto == "arp" || p.Proto == "ipv6-nd" {
		return step{}, false
	}
	s := step{at: e.AtMS, kind: stepArrow, label: packetLabel(p), class: packetClass(p), bytes: p.Len}
	src := p.SrcRole
	switch {
	case p.Point == experiments.PointRouterClient && src == "client":
		s.from = colClient
		s.to = colRouter
	case p.Point == experiments.PointRouterServer && src == "server":
		s.from = colServer
		s.to = colRouter
	case p.Point == experiments.PointRouterClient && src == "router":
		s.from, s.to = colRouter, colClient
	case p.Point == experiments.PointRouterServer && src == "router":
		s.from, s.to = colRouter, colServer
	default:
		return step{}, false
	}
	fate := ""
	if s.to == colRouter {
		switch p.Fate {
		case "forwarded":
			s.through = true
			s.to = colServer - s.from // the other end
			fate = "; forwarded by the router"
		case "not forwarded":
			s.dropped = true
			fate = "; not forwarded by the router"
		}
	}
	s.detail = fmt.Sprintf("%.1f ms, seen at %s: %s%s", e.AtMS, p.Point, e.Text, fate)
	s.key = fmt.Sprintf("packet %d %d %v %s", s.from, s.to, s.dropped, e.Text)
	return s, true
}

// packetLabel gives a packet's essentials in words a reader of a ladder
// expects: SYN, SYN-ACK, ACK, FIN, RST, the data length, ICMP type/code.
func packetLabel(p *experiments.PacketOut) string {
	switch p.Proto {
	case "tcp":
		f := p.Flags
		var parts []string
		switch {
		case f.Has(capture.RST):
			parts = append(parts, "RST")
		case f.Has(capture.SYN | capture.ACK):
			parts = append(parts, "SYN-ACK")
		case f.Has(capture.SYN):
			parts = append(parts, "SYN")
		}
		if p.Len > 0 {
			parts = append(parts, fmt.Sprintf("data %d bytes", p.Len))
		}
		if f.Has(capture.FIN) {
			parts = append(parts, "FIN")
		}
		if len(parts) == 0 {
			if f.Has(capture.ACK) {
				return "ACK"
			}
			return "TCP " + p.Flags.String()
		}
		return strings.Join(parts, " + ")
	case "icmp", "icmpv6":
		if p.ICMPType == nil || p.ICMPCode == nil {
			return "ICMP"
		}
		family := 4
		if p.Proto == "icmpv6" {
			family = 6
		}
		if *p.ICMPType == capture.UnreachableType(family) {
			return fmt.Sprintf("%s %d/%d %s", capture.ICMPLabel(family), *p.ICMPType, *p.ICMPCode, capture.UnreachableName(family, *p.ICMPCode))
		}
		return fmt.Sprintf("%s type %d code %d", capture.ICMPLabel(family), *p.ICMPType, *p.ICMPCode)
	}
	if p.Proto == "udp" && p.DstPort != 0 {
		return fmt.Sprintf("UDP to port %d", p.DstPort)
	}
	return strings.ToUpper(p.Proto)
}

func packetClass(p *experiments.PacketOut) string {
	switch p.Proto {
	case "tcp":
		switch {
		case p.Flags.Has(capture.RST):
			return "rst"
		case p.Flags.Has(capture.SYN):
			return "syn"
		case p.Flags.Has(capture.FIN):
			return "fin"
		case p.Len > 0:
			return "data"
		}
		return "ack"
	case "icmp", "icmpv6":
		return "icmp"
	}
	return "other"
}

// callClass tells a successful call from an error, with end of file and
// other non-errors (poll's events) apart.
func callClass(text string) string {
	_, res, ok := strings.Cut(text, "→ ")
	if !ok {
		return "eof"
	}
	switch {
	case res == "ok" || strings.HasPrefix(res, "ok "):
		return "ok"
	case strings.HasPrefix(res, "E") || strings.HasPrefix(res, "killed") || strings.Contains(res, "SIG"):
		return "err"
	}
	return "eof"
}

// Text ladder geometry: times in the first 9 columns, then the client's,
// router's and server's lines, 33 columns apart, within 79 columns.
const ladderWidth = 79

var ladderX = [3]int{10, 44, 78}

// ANSI styles of the colour classes.
var ansi = map[string]string{
	"line": "2", "syn": "36", "ack": "", "data": "1", "fin": "33", "rst": "31", "icmp": "35", "other": "",
	"ok": "32", "err": "31", "eof": "33", "fault": "1;31", "note": "2", "drop": "1;31", "time": "2",
}

type cell struct {
	r     rune
	style string
}

// canvas is one text row of the ladder.
type canvas []cell

func newCanvas(at string) canvas {
	c := make(canvas, ladderWidth)
	for i := range c {
		c[i] = cell{' ', ""}
	}
	c.put(9-len([]rune(at)), at, "time")
	for _, x := range ladderX {
		c[x] = cell{'│', "line"}
	}
	return c
}

func (c canvas) put(x int, s, style string) {
	for _, r := range s {
		if x >= 0 && x < len(c) {
			c[x] = cell{r, style}
		}
		x++
	}
}

func (c canvas) render(color bool) string {
	var b strings.Builder
	cur := ""
	for _, k := range c {
		if color && k.style != cur {
			if cur != "" {
				b.WriteString("\x1b[0m")
			}
			if a := ansi[k.style]; a != "" && k.r != ' ' {
				b.WriteString("\x1b[" + a + "m")
				cur = k.style
			} else {
				cur = ""
			}
		}
		b.WriteRune(k.r)
	}
	if color && cur != "" {
		b.WriteString("\x1b[0m")
	}
	return strings.TrimRight(b.String(), " ")
}

// Ladder writes a case's timeline as a ladder diagram: time flows down,
// each packet is an arrow from the host that sent it, runs of the same
// packet (retransmissions) are folded into one row with a count and every
// time. It fits 79 columns.
func Ladder(w io.Writer, r experiments.Result, o TextOptions) {
	for _, l := range ladderLines(r, o.Color) {
		fmt.Fprintln(w, l)
	}
}

func ladderLines(r experiments.Result, color bool) []string {
	steps := ladderSteps(r)
	head := newCanvas("")
	head.put(5, "ms", "time")
	for i, n := range colNames {
		x := ladderX[i] - len(n)/2
		if i == colClient {
			x = ladderX[i] - 2
		}
		if i == colServer {
			x = ladderX[i] - len(n) + 1
		}
		head.put(x, n, "")
	}
	out := []string{head.render(color)}
	for _, g := range foldSteps(steps) {
		out = append(out, g.lines(color)...)
	}
	return out
}

// folded is a step and the times of its repeats.
type folded struct {
	step
	times []float64
	// flow: different segments of one stream folded together (a bulk
	// transfer), with their bytes; only their first and last times are
	// listed.
	flow  bool
	bytes int
}

// foldSteps folds runs of a step, or of a pair of steps (a segment and the
// ICMP error it draws), repeated three or more times, using the report's
// condensing rule.
func foldSteps(steps []step) []folded {
	rows := make([]row, len(steps))
	flows := make([]row, len(steps))
	for i, s := range steps {
		rows[i] = row{s.at, s.key}
		flows[i] = row{s.at, s.key}
		if s.kind == stepArrow && s.resend == 0 {
			flows[i].key = fmt.Sprintf("flow %d %d %v %s", s.from, s.to, s.dropped, s.class)
		}
	}
	var out []folded
	for i := 0; i < len(steps); {
		done := false
		// Repeats of the very same packets first; then, so that a bulk
		// transfer does not fill the screen, runs of new segments of a
		// stream (data one way, ACKs the other), which retransmissions
		// interrupt.
		for _, try := range []struct {
			rows   []row
			period int
			min    int
			flow   bool
		}{{rows, 1, 3, false}, {rows, 2, 3, false}, {flows, 1, 6, true}, {flows, 2, 6, true}, {flows, 3, 6, true}} {
			n := repeats(try.rows[i:], try.period)
			if n < try.min {
				continue
			}
			for k := range try.period {
				f := folded{step: steps[i+k], flow: try.flow}
				for j := range n {
					s := steps[i+j*try.period+k]
					f.times = append(f.times, s.at)
					f.bytes += s.bytes
				}
				out = append(out, f)
			}
			i += n * try.period
			done = true
			break
		}
		if !done {
			out = append(out, folded{step: steps[i], times: []float64{steps[i].at}})
			i++
		}
	}
	return out
}

// lane returns the free columns between two lines.
func lane(a, b int) (lo, hi int) {
	return min(ladderX[a], ladderX[b]) + 1, max(ladderX[a], ladderX[b]) - 1
}

// sideLane is the lane a node's calls and marks are written in: the
// client's right of its line, the router's and the server's between them,
// so no text runs off the 79 columns.
func sideLane(col int) (lo, hi int) {
	if col == colClient {
		return lane(colClient, colRouter)
	}
	return lane(colRouter, colServer)
}

func (f folded) lines(color bool) []string {
	at := fmt.Sprintf("%.1f", f.at)
	n := len(f.times)
	label := f.label
	if f.flow && f.class == "data" {
		label = fmt.Sprintf("data ×%d, %d bytes", n, f.bytes)
	} else if f.flow {
		label = fmt.Sprintf("%s ×%d", f.label, n)
	} else if n > 1 {
		label += fmt.Sprintf(" ×%d", n)
	} else if f.resend > 0 {
		label += fmt.Sprintf(" (resend %d)", f.resend)
	}
	var rows []canvas
	var textLo, textHi int
	switch f.kind {
	case stepArrow:
		c := newCanvas(at)
		a, b := ladderX[f.from], ladderX[f.to]
		lo, hi := min(a, b), max(a, b)
		for x := lo + 1; x < hi; x++ {
			c[x] = cell{'─', f.class}
		}
		if f.through {
			c[ladderX[colRouter]] = cell{'┼', f.class}
		}
		if f.dropped {
			c[ladderX[colRouter]] = cell{'X', "drop"}
			if f.from == colClient {
				c.put(ladderX[colRouter]+2, "not forwarded", "drop")
			} else {
				c.put(ladderX[colRouter]-2-len("not forwarded")+1, "not forwarded", "drop")
			}
		} else if b > a {
			c[b-1] = cell{'>', f.class}
		} else {
			c[b+1] = cell{'<', f.class}
		}
		// The label sits in the lane next to the sender, clear of the head.
		llo, lhi := lane(f.from, colRouter)
		if f.from == colRouter {
			llo, lhi = lane(colRouter, f.to)
		}
		llo, lhi = llo+1, lhi-1
		text := " " + label + " "
		w := lhi - llo + 1
		if len([]rune(text)) > w {
			text = strings.Replace(text, "-unreachable", "-unreach", 1)
		}
		if len([]rune(text)) > w {
			text = string([]rune(text)[:w])
		}
		c.put(llo+(lhi-llo+1-len([]rune(text)))/2, text, f.class)
		rows = append(rows, c)
		textLo, textHi = llo+1, lhi-1
	case stepCall, stepMark:
		lo, hi := sideLane(f.from)
		lo, hi = lo+1, hi-1
		tick := '├'
		style := f.class
		if f.kind == stepMark {
			tick = '*'
			if f.class == "note" {
				tick = '·'
			}
		} else if f.from == colServer {
			tick = '┤'
		} else if f.from == colRouter {
			tick = '┼'
		}
		for i, l := range wrap(label, hi-lo+1) {
			c := newCanvas("")
			if i == 0 {
				c = newCanvas(at)
				c[ladderX[f.from]] = cell{tick, style}
			}
			if f.from == colServer {
				c.put(hi-len([]rune(l))+1, l, style)
			} else {
				c.put(lo, l, style)
			}
			rows = append(rows, c)
		}
		textLo, textHi = lo, hi
	}
	if n > 1 {
		// Words are wrapped whole; the unit stays with the last time.
		words := []string{"at"}
		if f.kind == stepArrow && f.resend > 0 {
			words = []string{"resent", "at"}
		}
		for i, t := range f.times {
			w := fmt.Sprintf("%.1f,", t)
			if i == n-1 {
				w = fmt.Sprintf("%.1f\u00a0ms", t)
			}
			words = append(words, w)
		}
		if f.flow {
			words = []string{"from", fmt.Sprintf("%.1f", f.times[0]), "to", fmt.Sprintf("%.1f\u00a0ms", f.times[n-1])}
		}
		for _, l := range wrapWords(words, textHi-textLo+1) {
			c := newCanvas("")
			c.put(textLo, strings.ReplaceAll(l, "\u00a0", " "), "time")
			rows = append(rows, c)
		}
	}
	out := make([]string, len(rows))
	for i, c := range rows {
		out[i] = c.render(color)
	}
	return out
}

// wrapWords fills lines of at most width runes with whole words.
func wrapWords(words []string, width int) []string {
	var lines []string
	cur := ""
	for _, w := range words {
		if cur != "" && len([]rune(cur))+1+len([]rune(w)) > width {
			lines = append(lines, cur)
			cur = ""
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}
