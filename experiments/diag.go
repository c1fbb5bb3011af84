package experiments

import (
	"fmt"
	"net/netip"

	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
)

// TCP states as the kernel numbers them (include/net/tcp_states.h).
var tcpStates = map[uint8]string{
	1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
	6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
}

type serverSockets struct {
	conn        string // state of the connection from the client, "" if none
	acceptQueue uint32 // connections waiting for accept on the listener
}

// socketState reads, through the kernel's socket diagnostics in node n, the
// listener on port and the connection from peer ("addr:port").
func socketState(n *topology.Node, af uint8, port int, peer string) (serverSockets, error) {
	var out serverSockets
	want, err := netip.ParseAddrPort(peer)
	if err != nil {
		return out, fmt.Errorf("parse peer %q: %w", peer, err)
	}
	err = n.Do(func() error {
		socks, err := netlink.SocketDiagTCP(af)
		if err != nil {
			return fmt.Errorf("socket diagnostics in %s: %w", n.NSName, err)
		}
		for _, s := range socks {
			if int(s.ID.SourcePort) != port {
				continue
			}
			if s.State == 10 {
				out.acceptQueue = s.RQueue
				continue
			}
			ip, _ := netip.AddrFromSlice(s.ID.Destination)
			if ip.Unmap() == want.Addr().Unmap() && s.ID.DestinationPort == want.Port() {
				out.conn = tcpStates[s.State]
			}
		}
		return nil
	})
	return out, err
}
