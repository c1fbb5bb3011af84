package topology

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Socket is a TCP socket of a node, as the kernel's socket diagnostics
// report it.
type Socket struct {
	// State is the kernel's TCP state (netlink.TCP_ESTABLISHED, ...).
	State         uint8
	Local, Remote netip.AddrPort
	// RQueue is, for a listener, the connections waiting for accept; for
	// a connection, the bytes received and not yet read.
	RQueue uint32
}

var stateNames = map[uint8]string{
	netlink.TCP_ESTABLISHED: "ESTABLISHED", netlink.TCP_SYN_SENT: "SYN_SENT", netlink.TCP_SYN_RECV: "SYN_RECV",
	netlink.TCP_FIN_WAIT1: "FIN_WAIT1", netlink.TCP_FIN_WAIT2: "FIN_WAIT2", netlink.TCP_TIME_WAIT: "TIME_WAIT",
	netlink.TCP_CLOSE: "CLOSE", netlink.TCP_CLOSE_WAIT: "CLOSE_WAIT", netlink.TCP_LAST_ACK: "LAST_ACK",
	netlink.TCP_LISTEN: "LISTEN", netlink.TCP_CLOSING: "CLOSING", netlink.TCP_NEW_SYN_REC: "NEW_SYN_RECV",
}

// StateName names a TCP state as the kernel's headers do.
func StateName(state uint8) string {
	if n, ok := stateNames[state]; ok {
		return n
	}
	return fmt.Sprintf("state-%d", state)
}

// Sockets lists the node's TCP sockets of a family (4 or 6).
func (n *Node) Sockets(family int) ([]Socket, error) {
	af := uint8(unix.AF_INET)
	if family == 6 {
		af = unix.AF_INET6
	}
	var out []Socket
	err := n.Do(func() error {
		for {
			socks, err := netlink.SocketDiagTCP(af)
			if errors.Is(err, netlink.ErrDumpInterrupted) {
				continue // the table changed during the dump: read it again
			}
			if err != nil {
				return fmt.Errorf("socket diagnostics in %s: %w", n.NSName, err)
			}
			for _, s := range socks {
				src, _ := netip.AddrFromSlice(s.ID.Source)
				dst, _ := netip.AddrFromSlice(s.ID.Destination)
				out = append(out, Socket{
					State:  s.State,
					Local:  netip.AddrPortFrom(src.Unmap(), s.ID.SourcePort),
					Remote: netip.AddrPortFrom(dst.Unmap(), s.ID.DestinationPort),
					RQueue: s.RQueue,
				})
			}
			return nil
		}
	})
	return out, err
}
