package capture

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Decoded is a flat summary of a frame's interesting header fields.
//
// Decoding never fails: it goes as far as the frame allows, which matters
// for the truncated datagrams quoted inside ICMP errors.
type Decoded struct {
	// Proto is "tcp", "udp", "icmp", "icmpv6", "ipv6-nd" (ICMPv6 router and
	// neighbor discovery), "arp", "fragment" (a non-first IP fragment, no
	// transport header) or "other".
	Proto string
	// Src and Dst are IP addresses; ARP sender and target protocol
	// addresses for ARP; Ethernet addresses for frames that are neither.
	Src, Dst         string
	SrcPort, DstPort uint16
	// Flags are the TCP flags.
	Flags    TCPFlags
	Seq, Ack uint32
	// Len is the TCP or UDP payload length, taken from the IP and transport
	// headers (so Ethernet padding and truncation do not affect it).
	Len                int
	ICMPType, ICMPCode uint8
	// ICMPInner is the datagram quoted by an ICMP or ICMPv6 error, decoded
	// as far as the quote goes.
	ICMPInner *Decoded
	ARPOp     string // "request" or "reply"

	SrcMAC, DstMAC string // Ethernet addresses; empty for a quoted datagram
	EtherType      uint16 // after any VLAN tags
	VLAN           uint16 // VLAN ID of the outermost 802.1Q/802.1ad tag, 0 if none
	IPProto        uint8  // IPv4 protocol or IPv6 next header after extension headers
	TTL            uint8  // IPv4 TTL or IPv6 hop limit
	Window         uint16 // TCP window (unscaled)
	MSS            uint16 // TCP MSS option, 0 if absent
	MTU            uint32 // next-hop MTU of ICMP frag-needed or ICMPv6 packet-too-big
	EchoID         uint16 // ICMP/ICMPv6 echo identifier
	EchoSeq        uint16 // ICMP/ICMPv6 echo sequence number
	// Target is the target address of an ICMPv6 neighbor solicitation,
	// advertisement or redirect, or the gateway of an ICMP redirect.
	Target string
}

const (
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeVLAN = 0x8100
	etherTypeQinQ = 0x88a8
	etherTypeIPv6 = 0x86dd

	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// Decode summarizes an Ethernet frame.
func Decode(frame []byte) Decoded {
	d := Decoded{Proto: "other"}
	if len(frame) < 14 {
		return d
	}
	d.DstMAC = net.HardwareAddr(frame[0:6]).String()
	d.SrcMAC = net.HardwareAddr(frame[6:12]).String()
	et := binary.BigEndian.Uint16(frame[12:14])
	p := frame[14:]
	tagged := false
	for (et == etherTypeVLAN || et == etherTypeQinQ) && len(p) >= 4 {
		if !tagged {
			d.VLAN = binary.BigEndian.Uint16(p[0:2]) & 0x0fff
			tagged = true
		}
		et = binary.BigEndian.Uint16(p[2:4])
		p = p[4:]
	}
	d.EtherType = et
	switch et {
	case etherTypeIPv4:
		decodeIPv4(p, &d, true)
	case etherTypeIPv6:
		decodeIPv6(p, &d, true)
	case etherTypeARP:
		decodeARP(p, &d)
	default:
		d.Src, d.Dst = d.SrcMAC, d.DstMAC
	}
	return d
}

func ipString(b []byte) string {
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return ""
	}
	return a.String()
}

// decodeIPv4 decodes an IPv4 packet; outer is false for a datagram quoted in
// an ICMP error, whose own ICMP payload is not decoded any further.
func decodeIPv4(p []byte, d *Decoded, outer bool) {
	if len(p) < 20 || p[0]>>4 != 4 {
		return
	}
	ihl := int(p[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(p[2:4]))
	fragOff := binary.BigEndian.Uint16(p[6:8]) & 0x1fff
	d.TTL = p[8]
	d.IPProto = p[9]
	d.Src = ipString(p[12:16])
	d.Dst = ipString(p[16:20])
	if ihl < 20 || ihl > len(p) {
		return
	}
	if total == 0 {
		// Oversized GSO frames (BIG TCP) carry no IPv4 length.
		total = len(p)
	}
	l4 := p[ihl:]
	if total >= ihl && total-ihl < len(l4) {
		l4 = l4[:total-ihl] // drop Ethernet padding
	}
	if fragOff != 0 {
		d.Proto = "fragment"
		return
	}
	decodeTransport(d.IPProto, l4, total-ihl, d, outer, false)
}

func decodeIPv6(p []byte, d *Decoded, outer bool) {
	if len(p) < 40 || p[0]>>4 != 6 {
		return
	}
	payload := int(binary.BigEndian.Uint16(p[4:6]))
	next := p[6]
	d.TTL = p[7]
	d.Src = ipString(p[8:24])
	d.Dst = ipString(p[24:40])
	rest := p[40:]
	if payload == 0 {
		// Jumbograms and BIG TCP frames carry no payload length.
		payload = len(rest)
	}
	if payload < len(rest) {
		rest = rest[:payload] // drop Ethernet padding
	}
	skip := func(n int) {
		payload -= n
		rest = rest[min(n, len(rest)):]
	}
ext:
	for {
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(rest) < 2 {
				break ext
			}
			next = rest[0]
			skip((int(rest[1]) + 1) * 8)
		case 51: // authentication header
			if len(rest) < 2 {
				break ext
			}
			next = rest[0]
			skip((int(rest[1]) + 2) * 4)
		case 44: // fragment
			if len(rest) < 8 {
				break ext
			}
			next = rest[0]
			off := binary.BigEndian.Uint16(rest[2:4]) >> 3
			skip(8)
			if off != 0 {
				d.IPProto = next
				d.Proto = "fragment"
				return
			}
		default:
			break ext
		}
	}
	d.IPProto = next
	decodeTransport(next, rest, payload, d, outer, true)
}

// decodeTransport decodes the transport header in b; length is the
// transport segment's length according to the IP header, which may exceed
// len(b) for quoted or truncated datagrams.
func decodeTransport(proto uint8, b []byte, length int, d *Decoded, outer, v6 bool) {
	switch {
	case proto == protoTCP:
		d.Proto = "tcp"
		decodeTCP(b, length, d)
	case proto == protoUDP:
		d.Proto = "udp"
		decodeUDP(b, length, d)
	case proto == protoICMP && !v6:
		d.Proto = "icmp"
		decodeICMPv4(b, d, outer)
	case proto == protoICMPv6 && v6:
		d.Proto = "icmpv6"
		decodeICMPv6(b, d, outer)
	}
}

func decodeTCP(b []byte, length int, d *Decoded) {
	if len(b) >= 4 {
		d.SrcPort = binary.BigEndian.Uint16(b[0:2])
		d.DstPort = binary.BigEndian.Uint16(b[2:4])
	}
	if len(b) >= 8 {
		d.Seq = binary.BigEndian.Uint32(b[4:8])
	}
	if len(b) >= 12 {
		d.Ack = binary.BigEndian.Uint32(b[8:12])
	}
	if len(b) < 14 {
		return
	}
	d.Flags = TCPFlags(b[13])
	off := int(b[12]>>4) * 4
	if off >= 20 {
		d.Len = max(length-off, 0)
	}
	if len(b) >= 16 {
		d.Window = binary.BigEndian.Uint16(b[14:16])
	}
	if off > 20 && off <= len(b) {
		d.MSS = tcpMSS(b[20:off])
	}
}

func tcpMSS(opts []byte) uint16 {
	for len(opts) > 0 {
		switch kind := opts[0]; kind {
		case 0: // end of options
			return 0
		case 1: // no-op
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return 0
		}
		if opts[0] == 2 && opts[1] == 4 {
			return binary.BigEndian.Uint16(opts[2:4])
		}
		opts = opts[opts[1]:]
	}
	return 0
}

func decodeUDP(b []byte, length int, d *Decoded) {
	if len(b) >= 4 {
		d.SrcPort = binary.BigEndian.Uint16(b[0:2])
		d.DstPort = binary.BigEndian.Uint16(b[2:4])
	}
	if len(b) >= 6 {
		if ul := int(binary.BigEndian.Uint16(b[4:6])); ul >= 8 {
			d.Len = ul - 8
			return
		}
	}
	// Length 0 (jumbograms) or header cut off: trust the IP header.
	d.Len = max(length-8, 0)
}

func decodeInner(b []byte, d *Decoded) {
	if len(b) == 0 {
		return
	}
	in := &Decoded{Proto: "other"}
	switch b[0] >> 4 {
	case 4:
		decodeIPv4(b, in, false)
	case 6:
		decodeIPv6(b, in, false)
	default:
		return
	}
	if in.Src != "" {
		d.ICMPInner = in
	}
}

func decodeICMPv4(b []byte, d *Decoded, outer bool) {
	if len(b) < 2 {
		return
	}
	d.ICMPType, d.ICMPCode = b[0], b[1]
	if len(b) < 8 {
		return
	}
	switch d.ICMPType {
	case 0, 8: // echo reply, echo request
		d.EchoID = binary.BigEndian.Uint16(b[4:6])
		d.EchoSeq = binary.BigEndian.Uint16(b[6:8])
	case 3, 4, 5, 11, 12: // errors quoting the offending datagram
		if d.ICMPType == 3 && d.ICMPCode == 4 {
			d.MTU = uint32(binary.BigEndian.Uint16(b[6:8]))
		}
		if d.ICMPType == 5 {
			d.Target = ipString(b[4:8])
		}
		if outer {
			decodeInner(b[8:], d)
		}
	}
}

func decodeICMPv6(b []byte, d *Decoded, outer bool) {
	if len(b) < 2 {
		return
	}
	d.ICMPType, d.ICMPCode = b[0], b[1]
	switch d.ICMPType {
	case 133, 134, 135, 136, 137:
		d.Proto = "ipv6-nd"
	}
	if len(b) < 8 {
		return
	}
	switch d.ICMPType {
	case 1, 2, 3, 4: // errors quoting the offending datagram
		if d.ICMPType == 2 {
			d.MTU = binary.BigEndian.Uint32(b[4:8])
		}
		if outer {
			decodeInner(b[8:], d)
		}
	case 128, 129:
		d.EchoID = binary.BigEndian.Uint16(b[4:6])
		d.EchoSeq = binary.BigEndian.Uint16(b[6:8])
	case 135, 136, 137:
		if len(b) >= 24 {
			d.Target = ipString(b[8:24])
		}
	}
}

func decodeARP(p []byte, d *Decoded) {
	if len(p) < 8 {
		return
	}
	d.Proto = "arp"
	switch op := binary.BigEndian.Uint16(p[6:8]); op {
	case 1:
		d.ARPOp = "request"
	case 2:
		d.ARPOp = "reply"
	default:
		d.ARPOp = "op-" + strconv.Itoa(int(op))
	}
	hlen, plen := int(p[4]), int(p[5])
	if len(p) < 8+2*hlen+2*plen {
		return
	}
	spa := p[8+hlen : 8+hlen+plen]
	tpa := p[8+2*hlen+plen : 8+2*hlen+2*plen]
	d.Src, d.Dst = ipString(spa), ipString(tpa)
}

func hostPort(addr string, port uint16) string {
	return net.JoinHostPort(addr, strconv.Itoa(int(port)))
}

// String returns a one-line, tcpdump-like summary, for example
//
//	198.51.100.2:40000 > 203.0.113.2:7 SYN seq=1234 len=0
//	198.51.100.1 > 198.51.100.2 ICMP dest-unreachable host-unreachable (type 3 code 1) for 198.51.100.2:40000 > 203.0.113.2:7
//	ARP request who-has 198.51.100.1 tell 198.51.100.2
func (d Decoded) String() string {
	var b strings.Builder
	if d.VLAN != 0 {
		fmt.Fprintf(&b, "vlan %d ", d.VLAN)
	}
	switch d.Proto {
	case "tcp":
		flags := d.Flags.String()
		if flags == "" {
			flags = "none"
		}
		fmt.Fprintf(&b, "%s > %s %s seq=%d", hostPort(d.Src, d.SrcPort), hostPort(d.Dst, d.DstPort), flags, d.Seq)
		if d.Flags.Has(ACK) {
			fmt.Fprintf(&b, " ack=%d", d.Ack)
		}
		fmt.Fprintf(&b, " len=%d", d.Len)
	case "udp":
		fmt.Fprintf(&b, "%s > %s UDP len=%d", hostPort(d.Src, d.SrcPort), hostPort(d.Dst, d.DstPort), d.Len)
	case "icmp", "icmpv6", "ipv6-nd":
		d.writeICMP(&b)
	case "arp":
		switch d.ARPOp {
		case "request":
			fmt.Fprintf(&b, "ARP request who-has %s tell %s", d.Dst, d.Src)
		case "reply":
			fmt.Fprintf(&b, "ARP reply %s is-at %s", d.Src, d.SrcMAC)
		default:
			fmt.Fprintf(&b, "ARP %s %s > %s", d.ARPOp, d.Src, d.Dst)
		}
	case "fragment":
		fmt.Fprintf(&b, "%s > %s fragment ip-proto %d", d.Src, d.Dst, d.IPProto)
	default:
		switch {
		case d.Src == "":
			b.WriteString("truncated frame")
		case d.EtherType == etherTypeIPv4 || d.EtherType == etherTypeIPv6:
			fmt.Fprintf(&b, "%s > %s ip-proto %d", d.Src, d.Dst, d.IPProto)
		default:
			fmt.Fprintf(&b, "%s > %s ethertype 0x%04x", d.Src, d.Dst, d.EtherType)
		}
	}
	return b.String()
}

func (d Decoded) writeICMP(b *strings.Builder) {
	v6 := d.Proto != "icmp"
	types, codes, label := icmpv4Types, icmpv4Codes, "ICMP"
	if v6 {
		types, codes, label = icmpv6Types, icmpv6Codes, "ICMP6"
	}
	fmt.Fprintf(b, "%s > %s %s", d.Src, d.Dst, label)
	if name, ok := types[d.ICMPType]; ok {
		b.WriteString(" " + name)
	}
	if name, ok := codes[d.ICMPType][d.ICMPCode]; ok {
		b.WriteString(" " + name)
	}
	fmt.Fprintf(b, " (type %d code %d)", d.ICMPType, d.ICMPCode)
	switch {
	case !v6 && d.ICMPType == 3 && d.ICMPCode == 4, v6 && d.ICMPType == 2:
		fmt.Fprintf(b, " mtu=%d", d.MTU)
	case !v6 && (d.ICMPType == 0 || d.ICMPType == 8), v6 && (d.ICMPType == 128 || d.ICMPType == 129):
		fmt.Fprintf(b, " id=%d seq=%d", d.EchoID, d.EchoSeq)
	case !v6 && d.ICMPType == 5 && d.Target != "":
		fmt.Fprintf(b, " to %s", d.Target)
	case v6 && d.ICMPType == 135 && d.Target != "":
		fmt.Fprintf(b, " who-has %s", d.Target)
	case v6 && (d.ICMPType == 136 || d.ICMPType == 137) && d.Target != "":
		fmt.Fprintf(b, " tgt %s", d.Target)
	}
	if in := d.ICMPInner; in != nil {
		b.WriteString(" for ")
		switch in.Proto {
		case "tcp", "udp":
			fmt.Fprintf(b, "%s > %s", hostPort(in.Src, in.SrcPort), hostPort(in.Dst, in.DstPort))
		default:
			b.WriteString(in.String())
		}
	}
}
