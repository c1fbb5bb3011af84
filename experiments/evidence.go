package experiments

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/topology"
)

// Capture points: the router's two interfaces, where every packet between
// the hosts passes, and the client's own interface.
const (
	PointRouterClient = "router-client"
	PointRouterServer = "router-server"
	PointClient       = "client"
)

// captures are the running captures of a case, and what earlier captures
// of the same point (before a reboot recreated its link) returned.
type captures struct {
	live map[string]*capture.Capture
	done map[string][]capture.Packet
}

type pointSpec struct{ point, node, to string }

var pointSpecs = []pointSpec{
	{PointRouterClient, topology.Router, topology.Client},
	{PointRouterServer, topology.Router, topology.Server},
	{PointClient, topology.Client, topology.Router},
}

// startCaptures opens packet sockets on every capture point.
func (r *Run) startCaptures() error {
	r.caps = &captures{live: map[string]*capture.Capture{}, done: map[string][]capture.Packet{}}
	if r.Cfg.NoCapture {
		return nil
	}
	for _, p := range pointSpecs {
		if err := r.startCapture(p); err != nil {
			return err
		}
	}
	return nil
}

func (r *Run) startCapture(p pointSpec) error {
	n := r.Lab.Node(p.node)
	c, err := capture.Start(n.Do, topology.LinkName(r.Lab.ID, p.node, p.to), p.point)
	if err != nil {
		return fmt.Errorf("capture on %s: %w", p.point, err)
	}
	r.caps.live[p.point] = c
	return nil
}

// Recapture restarts the captures on the link of a node whose namespace
// was recreated (after a reboot): what the old captures saw is kept.
func (r *Run) Recapture(role string) error {
	if r.Cfg.NoCapture {
		return nil
	}
	for _, p := range pointSpecs {
		c := r.caps.live[p.point]
		if c == nil || (p.node != role && p.to != role) {
			continue
		}
		pk, err := c.Stop()
		if err != nil {
			return err
		}
		r.caps.done[p.point] = append(r.caps.done[p.point], pk...)
		if err := r.startCapture(p); err != nil {
			return err
		}
	}
	return nil
}

// stopCaptures ends every capture and returns the frames per point.
func (r *Run) stopCaptures() (map[string][]capture.Packet, error) {
	if r.caps == nil || r.Cfg.NoCapture {
		return nil, nil
	}
	out := map[string][]capture.Packet{}
	var errs []string
	for _, p := range pointSpecs {
		pk := r.caps.done[p.point]
		if c := r.caps.live[p.point]; c != nil {
			more, err := c.Stop()
			if err != nil {
				errs = append(errs, err.Error())
			}
			if d := c.Drops(); d > 0 {
				errs = append(errs, fmt.Sprintf("capture on %s dropped %d frames", p.point, d))
			}
			pk = append(pk, more...)
		}
		out[p.point] = pk
	}
	r.caps.live = map[string]*capture.Capture{}
	if len(errs) > 0 {
		return out, fmt.Errorf("capture: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

// Pkt is a captured frame, decoded, as the checks and the timeline see it.
type Pkt struct {
	capture.Decoded
	Point string
	T     time.Time
}

// PacketOut is a captured packet in the JSON timeline.
type PacketOut struct {
	Point    string           `json:"point"`
	Outgoing bool             `json:"outgoing"`
	Proto    string           `json:"proto"`
	Src      string           `json:"src"`
	Dst      string           `json:"dst"`
	SrcPort  uint16           `json:"sport,omitempty"`
	DstPort  uint16           `json:"dport,omitempty"`
	Flags    capture.TCPFlags `json:"flags,omitempty"`
	Seq      uint32           `json:"seq,omitempty"`
	Ack      uint32           `json:"ack,omitempty"`
	Len      int              `json:"len"`
	ICMPType *uint8           `json:"icmp_type,omitempty"`
	ICMPCode *uint8           `json:"icmp_code,omitempty"`
	ARPOp    string           `json:"arp_op,omitempty"`
	// SrcRole and DstRole name the lab nodes that own the addresses
	// (client, router, server), empty for none.
	SrcRole string `json:"src_role,omitempty"`
	DstRole string `json:"dst_role,omitempty"`
	// Fate tells, for a packet entering the router, whether it left by
	// the other interface: "forwarded" or "not forwarded".
	Fate string `json:"fate,omitempty"`
}

// Entry is one line of a case's timeline: a packet, a call, a fault or
// another thing the lab did, on one clock.
type Entry struct {
	AtMS   float64    `json:"at_ms"` // ms since the case started
	Kind   string     `json:"kind"`  // packet, call, fault, note
	Node   string     `json:"node,omitempty"`
	Text   string     `json:"text"`
	Packet *PacketOut `json:"packet,omitempty"`
}

// PacketCheck is a packet a case must see, or must not see.
type PacketCheck struct {
	// Desc says what is looked for, as a sentence.
	Desc string
	// Point is the capture point looked at.
	Point string
	// AfterFault counts only packets after the fault (the first one).
	AfterFault bool
	// Match selects the packets.
	Match func(p Pkt) bool
	// Distinct, if set, counts the matching packets by key rather than
	// one by one: a write and its retransmissions are one write.
	Distinct func(p Pkt) string
	// Select, if set, keeps some of the matching packets, chosen among
	// them all: what one packet alone cannot tell (a keepalive probe from
	// a bare ACK, by their sequence numbers).
	Select func([]Pkt) []Pkt
	// Min and Max bound the count; Max < 0 means no upper bound.
	Min, Max int
	// Judge, if set, checks when the matching packets came (their times
	// and the fault's) and describes it.
	Judge func(times []time.Time, fault time.Time) (ok bool, detail string)
}

// PacketCheckResult is a check's outcome, as reported.
type PacketCheckResult struct {
	Desc   string `json:"desc"`
	Point  string `json:"point"`
	Want   string `json:"want"`
	Got    int    `json:"got"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

func (c PacketCheck) want() string {
	switch {
	case c.Max == 0:
		return "none"
	case c.Max < 0:
		return fmt.Sprintf("at least %d", c.Min)
	case c.Min == c.Max:
		return fmt.Sprintf("exactly %d", c.Min)
	}
	return fmt.Sprintf("%d to %d", c.Min, c.Max)
}

// checkPackets evaluates the checks on the decoded packets.
func checkPackets(checks []PacketCheck, pkts map[string][]Pkt, fault time.Time) []PacketCheckResult {
	var out []PacketCheckResult
	for _, c := range checks {
		var matched []Pkt
		for _, p := range pkts[c.Point] {
			if c.AfterFault && !fault.IsZero() && p.T.Before(fault) {
				continue
			}
			if c.Match(p) {
				matched = append(matched, p)
			}
		}
		if c.Select != nil {
			matched = c.Select(matched)
		}
		var times []time.Time
		keys := map[string]bool{}
		for _, p := range matched {
			times = append(times, p.T)
			if c.Distinct != nil {
				keys[c.Distinct(p)] = true
			}
		}
		n := len(times)
		if c.Distinct != nil {
			n = len(keys)
		}
		res := PacketCheckResult{Desc: c.Desc, Point: c.Point, Want: c.want(), Got: n}
		res.OK = n >= c.Min && (c.Max < 0 || n <= c.Max)
		if res.OK && c.Judge != nil {
			res.OK, res.Detail = c.Judge(times, fault)
		}
		if n != len(times) {
			copies := fmt.Sprintf("%d frames, %d distinct", len(times), n)
			if res.Detail != "" {
				copies += "; " + res.Detail
			}
			res.Detail = copies
		}
		out = append(out, res)
	}
	return out
}

// gaps describes the spacing of packets ("gaps 1.00 s, 2.00 s").
func gaps(ts []time.Time) string {
	if len(ts) < 2 {
		return ""
	}
	var g []string
	for i := 1; i < len(ts); i++ {
		g = append(g, fmtDur(ts[i].Sub(ts[i-1])))
	}
	return "gaps " + strings.Join(g, ", ")
}

// decodeAll decodes the frames of every point, in time order.
func decodeAll(raw map[string][]capture.Packet) map[string][]Pkt {
	out := map[string][]Pkt{}
	for point, frames := range raw {
		for _, f := range frames {
			out[point] = append(out[point], Pkt{Decoded: capture.Decode(f.Data), Point: point, T: f.Time})
		}
		sort.SliceStable(out[point], func(i, j int) bool { return out[point][i].T.Before(out[point][j].T) })
	}
	return out
}

// fates marks each packet that entered the router on one interface with
// whether it left on the other: the same datagram, seen within 50 ms.
func fates(pkts map[string][]Pkt) map[*Pkt]string {
	out := map[*Pkt]string{}
	pair := map[string]string{PointRouterClient: PointRouterServer, PointRouterServer: PointRouterClient}
	for in, other := range pair {
		list := pkts[in]
		for i := range list {
			p := &list[i]
			if !entering(in, p) {
				continue
			}
			fate := "not forwarded"
			for _, q := range pkts[other] {
				if q.T.Sub(p.T) >= -time.Millisecond && q.T.Sub(p.T) < 50*time.Millisecond && sameDatagram(p.Decoded, q.Decoded) {
					fate = "forwarded"
					break
				}
			}
			out[p] = fate
		}
	}
	return out
}

// entering tells whether a packet seen at a router point came into the
// router from that side and is addressed beyond it.
func entering(point string, p *Pkt) bool {
	if p.Proto != "tcp" {
		return false
	}
	src, dst := roleOf(p.Src), roleOf(p.Dst)
	return (point == PointRouterClient && src == topology.Client && dst == topology.Server) ||
		(point == PointRouterServer && src == topology.Server && dst == topology.Client)
}

// roleOf is the lab role owning a decoded address, "" for none.
func roleOf(addr string) string { return topology.RoleOf(net.ParseIP(addr)) }

func sameDatagram(a, b capture.Decoded) bool {
	return a.Proto == b.Proto && a.Src == b.Src && a.Dst == b.Dst && a.SrcPort == b.SrcPort &&
		a.DstPort == b.DstPort && a.Flags == b.Flags && a.Seq == b.Seq && a.Ack == b.Ack && a.Len == b.Len
}

// timelineOf merges packets, calls and marks on the case's clock.
func (r *Run) timelineOf(pkts map[string][]Pkt, events []Event, marks []Mark) []Entry {
	var out []Entry
	at := func(t time.Time) float64 { return ms(t.Sub(r.start)) }
	fate := fates(pkts)
	for _, p := range pointSpecs {
		list := pkts[p.point]
		for i := range list {
			pk := &list[i]
			po := &PacketOut{
				Point: pk.Point, Proto: pk.Proto, Src: pk.Src, Dst: pk.Dst, SrcPort: pk.SrcPort, DstPort: pk.DstPort,
				Flags: pk.Flags, Seq: pk.Seq, Ack: pk.Ack, Len: pk.Len, ARPOp: pk.ARPOp, Fate: fate[pk],
				SrcRole: roleOf(pk.Src), DstRole: roleOf(pk.Dst),
			}
			if pk.Proto == "icmp" || pk.Proto == "icmpv6" {
				t, c := pk.ICMPType, pk.ICMPCode
				po.ICMPType, po.ICMPCode = &t, &c
			}
			out = append(out, Entry{AtMS: at(pk.T), Kind: "packet", Node: pk.Point, Text: pk.Decoded.String(), Packet: po})
		}
	}
	for _, e := range events {
		res := e.Result
		if e.Signal != "" {
			res += " + " + e.Signal
		}
		out = append(out, Entry{AtMS: at(time.Unix(0, e.End)), Kind: "call", Node: e.Node, Text: e.Syscall + " → " + res})
	}
	for _, m := range marks {
		kind := "note"
		if m.Fault {
			kind = "fault"
		}
		out = append(out, Entry{AtMS: at(m.T), Kind: kind, Node: m.Node, Text: m.What})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].AtMS < out[j].AtMS })
	return out
}
