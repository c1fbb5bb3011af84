package capture

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}

	client  = net.IPv4(198, 51, 100, 2).To4()
	router  = net.IPv4(198, 51, 100, 1).To4()
	server  = net.IPv4(203, 0, 113, 2).To4()
	client6 = net.ParseIP("2001:db8:1::2")
	router6 = net.ParseIP("2001:db8:1::1")
	server6 = net.ParseIP("2001:db8:2::2")
)

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func eth(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macB, DstMAC: macA, EthernetType: t}
}

func ip4(src, dst net.IP, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: src, DstIP: dst, Flags: layers.IPv4DontFragment}
}

func ip6(src, dst net.IP, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: src, DstIP: dst}
}

type tcpSpec struct {
	sport, dport uint16
	seq, ack     uint32
	syn, fin     bool
	rst, psh     bool
	ackf         bool
	payload      int
	mss          uint16
}

func (s tcpSpec) layer(nl gopacket.NetworkLayer) *layers.TCP {
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport),
		Seq: s.seq, Ack: s.ack, Window: 64240,
		SYN: s.syn, FIN: s.fin, RST: s.rst, PSH: s.psh, ACK: s.ackf,
	}
	if s.mss != 0 {
		tcp.Options = []layers.TCPOption{
			{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{byte(s.mss >> 8), byte(s.mss)}},
		}
	}
	tcp.SetNetworkLayerForChecksum(nl)
	return tcp
}

// tcp4Packet returns an IPv4 datagram (no Ethernet header) carrying s.
func tcp4Packet(t testing.TB, src, dst net.IP, s tcpSpec) []byte {
	ip := ip4(src, dst, layers.IPProtocolTCP)
	return serialize(t, ip, s.layer(ip), gopacket.Payload(make([]byte, s.payload)))
}

// tcp4Frame returns an Ethernet frame carrying s. gopacket pads it to the
// Ethernet minimum, as a NIC would.
func tcp4Frame(t testing.TB, src, dst net.IP, s tcpSpec) []byte {
	ip := ip4(src, dst, layers.IPProtocolTCP)
	return serialize(t, eth(layers.EthernetTypeIPv4), ip, s.layer(ip), gopacket.Payload(make([]byte, s.payload)))
}

func TestDecodeTCP(t *testing.T) {
	syn := tcpSpec{sport: 40000, dport: 7, seq: 1234, syn: true, mss: 1460}
	tests := []struct {
		name  string
		frame []byte
		flags string
		len   int
		str   string
	}{
		{"SYN", tcp4Frame(t, client, server, syn), "SYN", 0,
			"198.51.100.2:40000 > 203.0.113.2:7 SYN seq=1234 len=0"},
		{"SYN,ACK", tcp4Frame(t, server, client, tcpSpec{sport: 7, dport: 40000, seq: 99, ack: 1235, syn: true, ackf: true}), "SYN,ACK", 0,
			"203.0.113.2:7 > 198.51.100.2:40000 SYN,ACK seq=99 ack=1235 len=0"},
		// 54 bytes padded to 60: padding must not count as payload.
		{"RST,ACK", tcp4Frame(t, server, client, tcpSpec{sport: 7, dport: 40000, ack: 1235, rst: true, ackf: true}), "RST,ACK", 0,
			"203.0.113.2:7 > 198.51.100.2:40000 RST,ACK seq=0 ack=1235 len=0"},
		{"RST", tcp4Frame(t, server, client, tcpSpec{sport: 7, dport: 40000, seq: 5, rst: true}), "RST", 0,
			"203.0.113.2:7 > 198.51.100.2:40000 RST seq=5 len=0"},
		{"PSH,ACK", tcp4Frame(t, client, server, tcpSpec{sport: 40000, dport: 7, seq: 1235, ack: 100, psh: true, ackf: true, payload: 100}), "PSH,ACK", 100,
			"198.51.100.2:40000 > 203.0.113.2:7 PSH,ACK seq=1235 ack=100 len=100"},
		{"FIN,ACK", tcp4Frame(t, client, server, tcpSpec{sport: 40000, dport: 7, seq: 1335, ack: 100, fin: true, ackf: true}), "FIN,ACK", 0,
			"198.51.100.2:40000 > 203.0.113.2:7 FIN,ACK seq=1335 ack=100 len=0"},
		{"no flags", tcp4Frame(t, client, server, tcpSpec{sport: 1, dport: 2}), "", 0,
			"198.51.100.2:1 > 203.0.113.2:2 none seq=0 len=0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decode(tc.frame)
			if d.Proto != "tcp" || d.Flags.String() != tc.flags || d.Len != tc.len {
				t.Errorf("got proto %q flags %q len %d, want tcp %q %d", d.Proto, d.Flags, d.Len, tc.flags, tc.len)
			}
			if got := d.String(); got != tc.str {
				t.Errorf("String()\n got %q\nwant %q", got, tc.str)
			}
			if d.SrcMAC != macB.String() || d.DstMAC != macA.String() || d.EtherType != 0x0800 || d.TTL != 64 {
				t.Errorf("link/IP fields: %+v", d)
			}
		})
	}

	d := Decode(tests[0].frame)
	if d.Src != "198.51.100.2" || d.Dst != "203.0.113.2" || d.SrcPort != 40000 || d.DstPort != 7 ||
		d.Seq != 1234 || d.MSS != 1460 || d.Window != 64240 || d.IPProto != 6 {
		t.Errorf("SYN decoded as %+v", d)
	}
}

func TestTCPFlagOrder(t *testing.T) {
	for bits, want := range map[uint8]string{
		0x02: "SYN", 0x12: "SYN,ACK", 0x11: "FIN,ACK", 0x14: "RST,ACK", 0x18: "PSH,ACK",
		0x19: "FIN,PSH,ACK", 0xc2: "SYN,ECE,CWR", 0xff: "SYN,FIN,RST,PSH,ACK,URG,ECE,CWR", 0: "",
	} {
		if got := TCPFlags(bits).String(); got != want {
			t.Errorf("tcpFlags(%#x) = %q, want %q", bits, got, want)
		}
	}
}

func TestDecodeICMPUnreachableQuotingTCP(t *testing.T) {
	orig := tcp4Packet(t, client, server, tcpSpec{sport: 40000, dport: 7, seq: 1234, syn: true, mss: 1460})
	for _, tc := range []struct {
		name  string
		quote []byte
		flags string
	}{
		{"full quote", orig, "SYN"},                 // what Linux sends
		{"RFC 792 minimum", orig[:20+8], ""},        // IP header + 8 bytes: no flags
		{"cut inside TCP header", orig[:20+13], ""}, // ack but no flags yet
		{"quote with trailing bytes", append(orig, 0, 0, 0), "SYN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip := ip4(router, client, layers.IPProtocolICMPv4)
			icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 1)}
			d := Decode(serialize(t, eth(layers.EthernetTypeIPv4), ip, icmp, gopacket.Payload(tc.quote)))
			if d.Proto != "icmp" || d.ICMPType != 3 || d.ICMPCode != 1 {
				t.Fatalf("decoded as %+v", d)
			}
			in := d.ICMPInner
			if in == nil {
				t.Fatal("no inner datagram")
			}
			if in.Proto != "tcp" || in.Src != "198.51.100.2" || in.Dst != "203.0.113.2" ||
				in.SrcPort != 40000 || in.DstPort != 7 || in.Seq != 1234 || in.Flags.String() != tc.flags {
				t.Errorf("inner decoded as %+v", *in)
			}
			want := "198.51.100.1 > 198.51.100.2 ICMP dest-unreachable host-unreachable (type 3 code 1) for 198.51.100.2:40000 > 203.0.113.2:7"
			if got := d.String(); got != want {
				t.Errorf("String()\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestDecodeICMPv4Variants(t *testing.T) {
	udpOrig := func() []byte {
		ip := ip4(client, server, layers.IPProtocolUDP)
		udp := &layers.UDP{SrcPort: 40001, DstPort: 9}
		udp.SetNetworkLayerForChecksum(ip)
		return serialize(t, ip, udp, gopacket.Payload("hello"))
	}()
	icmpFrame := func(typ, code uint8, id, seq uint16, payload []byte) []byte {
		ip := ip4(router, client, layers.IPProtocolICMPv4)
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code), Id: id, Seq: seq}
		return serialize(t, eth(layers.EthernetTypeIPv4), ip, icmp, gopacket.Payload(payload))
	}
	for _, tc := range []struct {
		frame []byte
		want  string
	}{
		{icmpFrame(3, 3, 0, 0, udpOrig),
			"198.51.100.1 > 198.51.100.2 ICMP dest-unreachable port-unreachable (type 3 code 3) for 198.51.100.2:40001 > 203.0.113.2:9"},
		{icmpFrame(3, 4, 0, 1400, udpOrig),
			"198.51.100.1 > 198.51.100.2 ICMP dest-unreachable frag-needed (type 3 code 4) mtu=1400 for 198.51.100.2:40001 > 203.0.113.2:9"},
		{icmpFrame(3, 9, 0, 0, udpOrig),
			"198.51.100.1 > 198.51.100.2 ICMP dest-unreachable net-prohibited (type 3 code 9) for 198.51.100.2:40001 > 203.0.113.2:9"},
		{icmpFrame(3, 10, 0, 0, udpOrig),
			"198.51.100.1 > 198.51.100.2 ICMP dest-unreachable host-prohibited (type 3 code 10) for 198.51.100.2:40001 > 203.0.113.2:9"},
		{icmpFrame(3, 13, 0, 0, udpOrig),
			"198.51.100.1 > 198.51.100.2 ICMP dest-unreachable admin-prohibited (type 3 code 13) for 198.51.100.2:40001 > 203.0.113.2:9"},
		{icmpFrame(11, 0, 0, 0, udpOrig),
			"198.51.100.1 > 198.51.100.2 ICMP time-exceeded ttl-exceeded (type 11 code 0) for 198.51.100.2:40001 > 203.0.113.2:9"},
		{icmpFrame(8, 0, 77, 3, []byte("ping")),
			"198.51.100.1 > 198.51.100.2 ICMP echo-request (type 8 code 0) id=77 seq=3"},
		{icmpFrame(42, 7, 0, 0, nil),
			"198.51.100.1 > 198.51.100.2 ICMP (type 42 code 7)"},
	} {
		if got := Decode(tc.frame).String(); got != tc.want {
			t.Errorf("String()\n got %q\nwant %q", got, tc.want)
		}
	}

	d := Decode(icmpFrame(3, 3, 0, 0, udpOrig))
	if in := d.ICMPInner; in == nil || in.Proto != "udp" || in.Len != 5 {
		t.Errorf("inner UDP decoded as %+v", in)
	}
	if d := Decode(icmpFrame(3, 4, 0, 1400, udpOrig)); d.MTU != 1400 {
		t.Errorf("MTU = %d, want 1400", d.MTU)
	}
	if d := Decode(icmpFrame(8, 0, 77, 3, nil)); d.EchoID != 77 || d.EchoSeq != 3 || d.ICMPInner != nil {
		t.Errorf("echo decoded as %+v", d)
	}
}

func TestDecodeICMPv6(t *testing.T) {
	origIP := ip6(client6, server6, layers.IPProtocolTCP)
	orig := serialize(t, origIP, tcpSpec{sport: 40000, dport: 443, seq: 7, syn: true}.layer(origIP))

	icmp6Frame := func(typ, code uint8, body []byte) []byte {
		ip := ip6(router6, client6, layers.IPProtocolICMPv6)
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}
		icmp.SetNetworkLayerForChecksum(ip)
		return serialize(t, eth(layers.EthernetTypeIPv6), ip, icmp, gopacket.Payload(body))
	}
	unused := []byte{0, 0, 0, 0}
	for _, tc := range []struct {
		code uint8
		name string
	}{{0, "no-route"}, {1, "admin-prohibited"}, {2, "beyond-scope"}, {3, "address-unreachable"}, {4, "port-unreachable"}} {
		d := Decode(icmp6Frame(1, tc.code, append(unused, orig...)))
		if d.Proto != "icmpv6" || d.ICMPType != 1 || d.ICMPCode != tc.code {
			t.Fatalf("decoded as %+v", d)
		}
		in := d.ICMPInner
		if in == nil || in.Proto != "tcp" || in.Src != "2001:db8:1::2" || in.Dst != "2001:db8:2::2" ||
			in.SrcPort != 40000 || in.DstPort != 443 || in.Seq != 7 || in.Flags != SYN {
			t.Fatalf("inner decoded as %+v", in)
		}
		want := fmt.Sprintf("2001:db8:1::1 > 2001:db8:1::2 ICMP6 dest-unreachable %s (type 1 code %d) for [2001:db8:1::2]:40000 > [2001:db8:2::2]:443", tc.name, tc.code)
		if got := d.String(); got != want {
			t.Errorf("String()\n got %q\nwant %q", got, want)
		}
	}

	d := Decode(icmp6Frame(2, 0, append([]byte{0, 0, 0x05, 0x00}, orig...)))
	if d.MTU != 1280 || d.ICMPInner == nil {
		t.Errorf("packet-too-big decoded as %+v", d)
	}
	if got, want := d.String(), "2001:db8:1::1 > 2001:db8:1::2 ICMP6 packet-too-big (type 2 code 0) mtu=1280 for [2001:db8:1::2]:40000 > [2001:db8:2::2]:443"; got != want {
		t.Errorf("String()\n got %q\nwant %q", got, want)
	}

	// Neighbor solicitation, as sent for address resolution.
	ip := ip6(client6, net.ParseIP("ff02::1:ff00:1"), layers.IPProtocolICMPv6)
	ip.HopLimit = 255
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(135, 0)}
	icmp.SetNetworkLayerForChecksum(ip)
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: router6}
	d = Decode(serialize(t, eth(layers.EthernetTypeIPv6), ip, icmp, ns))
	if d.Proto != "ipv6-nd" || d.Target != "2001:db8:1::1" || d.TTL != 255 {
		t.Errorf("neighbor solicitation decoded as %+v", d)
	}
	if got, want := d.String(), "2001:db8:1::2 > ff02::1:ff00:1 ICMP6 neighbor-solicitation (type 135 code 0) who-has 2001:db8:1::1"; got != want {
		t.Errorf("String()\n got %q\nwant %q", got, want)
	}
}

func TestDecodeIPv6ExtensionHeaders(t *testing.T) {
	tcpBytes := func() []byte {
		buf := gopacket.NewSerializeBuffer()
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 9, SYN: true, DataOffset: 5}
		if err := tcp.SerializeTo(buf, gopacket.SerializeOptions{}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}()
	// Hop-by-hop (PadN) then a first fragment header, then TCP.
	hbh := []byte{44, 0, 1, 4, 0, 0, 0, 0}
	frag := []byte{6, 0, 0x00, 0x01, 0, 0, 0, 1} // offset 0, more fragments
	payload := append(append(append([]byte{}, hbh...), frag...), tcpBytes...)
	frame := serialize(t, eth(layers.EthernetTypeIPv6), ip6(client6, server6, 0), gopacket.Payload(payload))
	d := Decode(frame)
	if d.Proto != "tcp" || d.SrcPort != 40000 || d.DstPort != 80 || d.Seq != 9 || d.Flags != SYN || d.IPProto != 6 {
		t.Errorf("decoded as %+v", d)
	}

	// A later fragment has no transport header.
	frag = []byte{6, 0, 0x05, 0x00, 0, 0, 0, 1}
	frame = serialize(t, eth(layers.EthernetTypeIPv6), ip6(client6, server6, 44), gopacket.Payload(append(frag, tcpBytes...)))
	if d := Decode(frame); d.Proto != "fragment" || d.SrcPort != 0 {
		t.Errorf("later fragment decoded as %+v", d)
	}
}

func TestDecodeIPv4Fragment(t *testing.T) {
	ip := ip4(client, server, layers.IPProtocolUDP)
	ip.FragOffset = 185
	ip.Flags = 0
	d := Decode(serialize(t, eth(layers.EthernetTypeIPv4), ip, gopacket.Payload(make([]byte, 100))))
	if d.Proto != "fragment" || d.IPProto != 17 || d.SrcPort != 0 {
		t.Errorf("decoded as %+v", d)
	}
	if got, want := d.String(), "198.51.100.2 > 203.0.113.2 fragment ip-proto 17"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestDecodeARP(t *testing.T) {
	arp := func(op uint16, sha net.HardwareAddr, spa net.IP, tha net.HardwareAddr, tpa net.IP) []byte {
		e := eth(layers.EthernetTypeARP)
		e.SrcMAC = sha
		e.DstMAC = layers.EthernetBroadcast
		if op == layers.ARPReply {
			e.DstMAC = tha
		}
		a := &layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: op,
			SourceHwAddress: sha, SourceProtAddress: spa, DstHwAddress: tha, DstProtAddress: tpa,
		}
		return serialize(t, e, a)
	}
	d := Decode(arp(layers.ARPRequest, macB, client, make(net.HardwareAddr, 6), router))
	if d.Proto != "arp" || d.ARPOp != "request" || d.Src != "198.51.100.2" || d.Dst != "198.51.100.1" {
		t.Errorf("request decoded as %+v", d)
	}
	if got, want := d.String(), "ARP request who-has 198.51.100.1 tell 198.51.100.2"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	d = Decode(arp(layers.ARPReply, macA, router, macB, client))
	if d.ARPOp != "reply" || d.Src != "198.51.100.1" || d.Dst != "198.51.100.2" {
		t.Errorf("reply decoded as %+v", d)
	}
	if got, want := d.String(), "ARP reply 198.51.100.1 is-at 02:00:00:00:00:0a"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestDecodeUDPAndVLAN(t *testing.T) {
	ip := ip4(client, router, layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: 5353, DstPort: 9}
	udp.SetNetworkLayerForChecksum(ip)
	frame := serialize(t, eth(layers.EthernetTypeIPv4), ip, udp, gopacket.Payload("hello"))
	d := Decode((frame))
	if d.Proto != "udp" || d.Len != 5 || d.SrcPort != 5353 || d.DstPort != 9 {
		t.Errorf("decoded as %+v", d)
	}
	if got, want := d.String(), "198.51.100.2:5353 > 198.51.100.1:9 UDP len=5"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	tagged := serialize(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload("hello"))
	d = Decode(tagged)
	if d.VLAN != 10 || d.Proto != "udp" || d.EtherType != 0x0800 {
		t.Errorf("tagged frame decoded as %+v", d)
	}
	if got, want := d.String(), "vlan 10 198.51.100.2:5353 > 198.51.100.1:9 UDP len=5"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestDecodeOtherAndGarbage(t *testing.T) {
	lldp := serialize(t, eth(layers.EthernetTypeLinkLayerDiscovery))
	d := Decode(lldp)
	if d.Proto != "other" || d.Src != macB.String() || d.Dst != macA.String() {
		t.Errorf("LLDP decoded as %+v", d)
	}
	if got, want := d.String(), "02:00:00:00:00:0b > 02:00:00:00:00:0a ethertype 0x88cc"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	full := tcp4Frame(t, client, server, tcpSpec{sport: 1, dport: 2, syn: true, mss: 1460})
	for i := 0; i <= len(full); i++ {
		d := Decode(full[:i]) // must not panic on any truncation
		if d.String() == "" {
			t.Errorf("empty String() for %d-byte frame", i)
		}
	}
	if got := Decode(nil).String(); got != "truncated frame" {
		t.Errorf("Decode(nil).String() = %q", got)
	}
}

// FuzzDecode checks that Decode never panics and agrees with gopacket on
// the TCP header fields whenever gopacket decodes a frame cleanly.
func FuzzDecode(f *testing.F) {
	f.Add(tcp4Frame(f, client, server, tcpSpec{sport: 40000, dport: 7, seq: 1234, syn: true, mss: 1460}))
	f.Add(tcp4Frame(f, server, client, tcpSpec{sport: 7, dport: 40000, ack: 1235, rst: true, ackf: true}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		d := Decode(frame)
		_ = d.String()
		p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil || p.ErrorLayer() != nil || p.Layer(layers.LayerTypeIPv4) == nil || d.Proto != "tcp" {
			return
		}
		if d.SrcPort != uint16(tcp.SrcPort) || d.DstPort != uint16(tcp.DstPort) || d.Seq != tcp.Seq || d.Ack != tcp.Ack {
			t.Errorf("decoded %+v, gopacket says %+v", d, tcp)
		}
	})
}

func TestPcapRoundTrip(t *testing.T) {
	base := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	pkts := []Packet{
		{Time: base, Data: tcp4Frame(t, client, server, tcpSpec{sport: 40000, dport: 7, seq: 1234, syn: true})},
		{Time: base.Add(1500 * time.Nanosecond), Outgoing: true, Data: tcp4Frame(t, server, client, tcpSpec{sport: 7, dport: 40000, ack: 1235, rst: true, ackf: true})},
		// A frame longer than what was kept.
		{Time: base.Add(time.Millisecond), Data: tcp4Frame(t, client, server, tcpSpec{sport: 40000, dport: 7, psh: true, ackf: true, payload: 1000})[:200], Length: 1054},
	}
	path := filepath.Join(t.TempDir(), "x.pcap")
	if err := WritePcap(path, pkts); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPcap(path)
	if err != nil {
		t.Fatal(err)
	}
	comparePackets(t, pkts, got)
	runTcpdump(t, path, len(pkts), "Flags [S]", "Flags [R.]")

	// Microsecond files, as written by most other tools, read too.
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: base, CaptureLength: len(pkts[0].Data), Length: len(pkts[0].Data)}, pkts[0].Data); err != nil {
		t.Fatal(err)
	}
	usec := filepath.Join(t.TempDir(), "usec.pcap")
	if err := os.WriteFile(usec, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = ReadPcap(usec)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Time.Equal(base.Truncate(time.Microsecond)) || !bytes.Equal(got[0].Data, pkts[0].Data) {
		t.Errorf("microsecond file read back as %+v", got)
	}

	if _, err := ReadPcap(filepath.Join(t.TempDir(), "missing.pcap")); err == nil {
		t.Error("ReadPcap of a missing file succeeded")
	}
}

// comparePackets checks what survives a pcap round trip: time, data, length.
func comparePackets(t *testing.T, want, got []Packet) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read back %d packets, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Time.Equal(want[i].Time) || !bytes.Equal(got[i].Data, want[i].Data) || got[i].WireLen() != want[i].WireLen() {
			t.Errorf("packet %d: read back time %v len %d/%d, want %v len %d/%d", i,
				got[i].Time, len(got[i].Data), got[i].WireLen(), want[i].Time, len(want[i].Data), want[i].WireLen())
		}
	}
}

// runTcpdump has tcpdump, an independent reader, parse the file if it is
// installed; the pcapgo read-back is the check that always runs.
func runTcpdump(t *testing.T, path string, n int, contains ...string) {
	t.Helper()
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Log("tcpdump not on PATH; pcap verified with pcapgo only")
		return
	}
	out, err := exec.Command(tcpdump, "-nn", "-r", path).Output()
	if err != nil {
		t.Fatalf("tcpdump -r %s: %v", path, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != n {
		t.Errorf("tcpdump listed %d packets, want %d:\n%s", len(lines), n, out)
	}
	for _, s := range contains {
		if !strings.Contains(string(out), s) {
			t.Errorf("tcpdump output lacks %q:\n%s", s, out)
		}
	}
}
