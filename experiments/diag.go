package experiments

import (
	"fmt"
	"net/netip"

	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
)

type serverSockets struct {
	conn        string // state of the connection from the client, "" if none
	acceptQueue uint32 // connections waiting for accept on the listener
}

// socketState reads, through the kernel's socket diagnostics in node n, the
// listener on port and the connection from peer ("addr:port").
func socketState(n *topology.Node, family, port int, peer string) (serverSockets, error) {
	var out serverSockets
	want, err := netip.ParseAddrPort(peer)
	if err != nil {
		return out, fmt.Errorf("parse peer %q: %w", peer, err)
	}
	want = netip.AddrPortFrom(want.Addr().Unmap(), want.Port())
	socks, err := n.Sockets(family)
	for _, s := range socks {
		switch {
		case int(s.Local.Port()) != port:
		case s.State == netlink.TCP_LISTEN:
			out.acceptQueue = s.RQueue
		case s.Remote == want:
			out.conn = topology.StateName(s.State)
		}
	}
	return out, err
}

// hasSocket tells whether node n has a TCP socket in state whose local
// (remote false) or remote port and address match.
func hasSocket(n *topology.Node, family int, state uint8, match func(topology.Socket) bool) (bool, error) {
	socks, err := n.Sockets(family)
	for _, s := range socks {
		if s.State == state && match(s) {
			return true, err
		}
	}
	return false, err
}
