package topology

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// destroyReq is an inet_diag_req_v2 for SOCK_DESTROY naming one socket by
// its addresses, ports, interface and cookie, as the dump reported it. The
// netlink library's SocketDestroy takes IPv4 only.
type destroyReq struct {
	family uint8
	s      *netlink.Socket
}

func (r *destroyReq) Len() int { return 56 }

func (r *destroyReq) Serialize() []byte {
	b := make([]byte, 56)
	b[0], b[1] = r.family, unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(b[4:], 0xffffffff)
	id := b[8:]
	binary.BigEndian.PutUint16(id[0:], r.s.ID.SourcePort)
	binary.BigEndian.PutUint16(id[2:], r.s.ID.DestinationPort)
	put := func(dst []byte, ip net.IP) {
		if r.family == unix.AF_INET {
			copy(dst, ip.To4())
		} else {
			copy(dst, ip.To16())
		}
	}
	put(id[4:20], r.s.ID.Source)
	put(id[20:36], r.s.ID.Destination)
	binary.NativeEndian.PutUint32(id[36:], r.s.ID.Interface)
	binary.NativeEndian.PutUint32(id[40:], r.s.ID.Cookie[0])
	binary.NativeEndian.PutUint32(id[44:], r.s.ID.Cookie[1])
	return b
}

// destroyAll aborts every TCP socket of the family in the calling thread's
// namespace.
func destroyAll(family uint8) error {
	socks, err := netlink.SocketDiagTCP(family)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("list sockets: %w", err)
	}
	for _, s := range socks {
		req := nl.NewNetlinkRequest(nl.SOCK_DESTROY, unix.NLM_F_ACK)
		req.AddData(&destroyReq{family: family, s: s})
		_, err := req.Execute(unix.NETLINK_INET_DIAG, 0)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			if errors.Is(err, unix.EOPNOTSUPP) {
				return fmt.Errorf("destroy socket %v:%d: the kernel lacks CONFIG_INET_DIAG_DESTROY: %w", s.ID.Source, s.ID.SourcePort, err)
			}
			return fmt.Errorf("destroy socket %v:%d->%v:%d: %w", s.ID.Source, s.ID.SourcePort, s.ID.Destination, s.ID.DestinationPort, err)
		}
	}
	return nil
}

// hasTCP reads a sockstat file of the calling thread's namespace: whether
// it counts TCP sockets in use or in TIME_WAIT on the line with prefix.
func hasTCP(file, prefix string) (bool, error) {
	// Plain system calls: the os package would register the file with its
	// poller, stat it and read twice: six more calls for each of six files.
	fd, err := ignoringEINTR(func() (int, error) { return unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0) })
	if err != nil {
		return true, err
	}
	var buf [1024]byte // the whole file, a few short lines
	n, err := ignoringEINTR(func() (int, error) { return unix.Read(fd, buf[:]) })
	unix.Close(fd)
	if err != nil {
		return true, err
	}
	for _, line := range strings.Split(string(buf[:n]), "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		// "inuse N orphan N tw N alloc N mem N": orphan, alloc and mem
		// count every namespace; inuse and tw only this one.
		f := strings.Fields(rest)
		for i := 0; i+1 < len(f); i += 2 {
			if (f[i] == "inuse" || f[i] == "tw") && f[i+1] != "0" {
				return true, nil
			}
		}
		return false, nil
	}
	return true, fmt.Errorf("no %q line in %s", prefix, file)
}
