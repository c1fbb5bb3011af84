// Package topology builds and removes the three-namespace lab:
//
//	client ── veth ── router ── veth ── server
//
// It is the one home of the lab's vocabulary and state: which address a
// role has in a family and which role owns an address (Addr, RoleOf),
// whether a lab exists, is ready and whose it is (Inspect), a node's
// sockets (Node.Sockets) and its life in the lab (SetLink, Reboot). It
// knows nothing of TCP cases or faults. Every namespace and link it creates
// carries the lab id, so labs never collide and leftovers can be found.
package topology

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Node roles.
const (
	Client = "client"
	Router = "router"
	Server = "server"
)

// Roles lists the nodes of a lab in creation order.
var Roles = []string{Client, Router, Server}

// Addresses come from the documentation ranges (RFC 5737): no lab packet
// can be mistaken for, or routed to, a real host.
var (
	ClientIP       = net.IPv4(198, 51, 100, 2).To4()
	RouterClientIP = net.IPv4(198, 51, 100, 1).To4()
	RouterServerIP = net.IPv4(203, 0, 113, 1).To4()
	ServerIP       = net.IPv4(203, 0, 113, 2).To4()
)

// IPv6 addresses come from the documentation prefix 2001:db8::/32 (RFC
// 3849): the client side and the server side are distinct /64s.
var (
	ClientIP6       = net.ParseIP("2001:db8:c::2")
	RouterClientIP6 = net.ParseIP("2001:db8:c::1")
	RouterServerIP6 = net.ParseIP("2001:db8:5::1")
	ServerIP6       = net.ParseIP("2001:db8:5::2")
)

// link addresses: a node's and the router's address on their shared link.
type linkAddr struct {
	node, router net.IP
	bits         int
}

// addressing gives the addresses on the link between the router and node
// role, IPv4 then IPv6.
func addressing(role string) []linkAddr {
	if role == Client {
		return []linkAddr{{ClientIP, RouterClientIP, 24}, {ClientIP6, RouterClientIP6, 64}}
	}
	return []linkAddr{{ServerIP, RouterServerIP, 24}, {ServerIP6, RouterServerIP6, 64}}
}

// Addr is the address of role in family (4 or 6): the one place that maps
// roles to addresses. The router's is its address on the client's side.
func Addr(role string, family int) net.IP {
	v6 := family == 6
	switch {
	case role == Client && v6:
		return ClientIP6
	case role == Client:
		return ClientIP
	case role == Server && v6:
		return ServerIP6
	case role == Server:
		return ServerIP
	case v6:
		return RouterClientIP6
	}
	return RouterClientIP
}

// Addrs is every address of role, IPv4 then IPv6, with prefix lengths.
func Addrs(role string) []string {
	switch role {
	case Client, Server:
		var out []string
		for _, a := range addressing(role) {
			out = append(out, fmt.Sprintf("%s/%d", a.node, a.bits))
		}
		return out
	}
	return []string{
		RouterClientIP.String() + "/24", RouterServerIP.String() + "/24",
		RouterClientIP6.String() + "/64", RouterServerIP6.String() + "/64",
	}
}

// Shown is how a role's addresses in family are shown beside its name:
// the router has one on each side, "198.51.100.1 | 203.0.113.1".
func Shown(role string, family int) string {
	if role != Router {
		return Addr(role, family).String()
	}
	i := 0
	if family == 6 {
		i = 1
	}
	return addressing(Client)[i].router.String() + " | " + addressing(Server)[i].router.String()
}

// RoleOf is the role that owns an address of the lab, "" for none.
func RoleOf(ip net.IP) string {
	for _, r := range Roles {
		if r == Router {
			for _, a := range []net.IP{RouterClientIP, RouterServerIP, RouterClientIP6, RouterServerIP6} {
				if a.Equal(ip) {
					return r
				}
			}
			continue
		}
		for _, a := range addressing(r) {
			if a.node.Equal(ip) {
				return r
			}
		}
	}
	return ""
}

// Addr is the node's address in family (4 or 6).
func (n *Node) Addr(family int) net.IP { return Addr(n.Role, family) }

// MaxIDLen keeps the longest link name, "tl-" + id + "-rs", within the
// kernel's 15-byte interface name limit.
const MaxIDLen = 9

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// ValidateID checks that id can be part of every namespace and link name.
func ValidateID(id string) error {
	switch {
	case id == "":
		return errors.New("lab name is empty")
	case len(id) > MaxIDLen:
		return fmt.Errorf("lab name %s is %d characters; at most %d fit in an interface name", quoteShort(id), len(id), MaxIDLen)
	case !idRE.MatchString(id):
		return fmt.Errorf("lab name %s: use lower-case letters, digits and '-', starting with a letter or digit", quoteShort(id))
	}
	return nil
}

// quoteShort quotes a name for an error message, cut short if it is long:
// the message stays one readable line whatever the name.
func quoteShort(s string) string {
	const max = 24
	if len(s) <= max {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:max]) + "..."
}

// NSName is the namespace name of a node of lab id.
func NSName(id, role string) string { return "tcplab-" + id + "-" + role }

// ParseNSName returns the lab id and role of a lab namespace name.
func ParseNSName(name string) (id, role string, ok bool) {
	rest, found := strings.CutPrefix(name, "tcplab-")
	if !found {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return "", "", false
	}
	id, role = rest[:i], rest[i+1:]
	if ValidateID(id) != nil || (role != Client && role != Router && role != Server) {
		return "", "", false
	}
	return id, role, true
}

// LinkName is the name of the veth end in node `on` that faces node `to`.
func LinkName(id, on, to string) string { return "tl-" + id + "-" + on[:1] + to[:1] }

// MAC gives every veth end a fixed, locally administered address derived
// from the lab id, so a rebooted server comes back with the same MAC.
func MAC(id, on, to string) net.HardwareAddr {
	sum := sha256.Sum256([]byte(id + "/" + on + "/" + to))
	return net.HardwareAddr{0x02, sum[0], sum[1], sum[2], sum[3], sum[4]}
}

// Node is one network namespace of a lab.
type Node struct {
	Role   string
	NSName string
	lab    *Lab

	mu sync.Mutex
	ns netns.NsHandle
	h  *netlink.Handle
}

// Lab is one client/router/server lab.
type Lab struct {
	ID     string
	Client *Node
	Router *Node
	Server *Node

	downOnce sync.Once
	downErr  error
}

// New describes lab id without creating anything.
func New(id string) (*Lab, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	l := &Lab{ID: id}
	mk := func(role string) *Node { return &Node{Role: role, NSName: NSName(id, role), lab: l, ns: netns.None()} }
	l.Client, l.Router, l.Server = mk(Client), mk(Router), mk(Server)
	return l, nil
}

// Nodes returns the nodes in creation order.
func (l *Lab) Nodes() []*Node { return []*Node{l.Client, l.Router, l.Server} }

// Node returns the node with the given role, or nil.
func (l *Lab) Node(role string) *Node {
	for _, n := range l.Nodes() {
		if n.Role == role {
			return n
		}
	}
	return nil
}

// Lab returns the lab the node belongs to.
func (n *Node) Lab() *Lab { return n.lab }

// IP is the node's address on its lab-facing side (the router's is the
// client-side one).
func (n *Node) IP() net.IP { return Addr(n.Role, 4) }

// handle returns the node's netlink handle, opened once and reused.
func (n *Node) handle() (*netlink.Handle, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.h != nil {
		return n.h, nil
	}
	if !n.ns.IsOpen() {
		h, err := openNamedNS(n.NSName)
		if err != nil {
			return nil, err
		}
		n.ns = h
	}
	h, err := netlink.NewHandleAt(n.ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink in %s: %w", n.NSName, err)
	}
	n.h = h
	return h, nil
}

// Handle returns the node's netlink handle (route family), for impairments.
func (n *Node) Handle() (*netlink.Handle, error) { return n.handle() }

// NS returns the node's namespace handle, opening it if needed. The handle
// belongs to the node: do not close it.
func (n *Node) NS() (netns.NsHandle, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.ns.IsOpen() {
		h, err := openNamedNS(n.NSName)
		if err != nil {
			return netns.None(), err
		}
		n.ns = h
	}
	return n.ns, nil
}

// Do runs fn on an OS thread inside the node's namespace (DESIGN.md, point
// 2). Sockets opened in fn stay in the namespace after Do returns.
func (n *Node) Do(fn func() error) error {
	ns, err := n.NS()
	if err != nil {
		return err
	}
	return inNS(ns, fn)
}

// release closes what tcplab holds in the namespace: an open netlink socket
// or namespace fd keeps a namespace alive after it is unmounted.
func (n *Node) release() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.h != nil {
		n.h.Close()
		n.h = nil
	}
	if n.ns.IsOpen() {
		n.ns.Close()
	}
	n.ns = netns.None()
}

// Sysctl writes a /proc/sys/net key (dotted form) inside the node.
func (n *Node) Sysctl(key, value string) error {
	return n.Do(func() error { return writeSysctl(key, value) })
}

// ReadSysctl reads a /proc/sys/net key inside the node.
func (n *Node) ReadSysctl(key string) (string, error) {
	var v string
	err := n.Do(func() error {
		b, err := os.ReadFile(sysctlPath(key))
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

// writeSysctl must run on a thread inside the target namespace:
// /proc/sys/net resolves to the namespace of the thread that opens it. Plain
// system calls: the os package's bookkeeping doubles the cost of a write,
// and a lab writes dozens.
func writeSysctl(key, value string) error {
	fd, err := ignoringEINTR(func() (int, error) {
		return unix.Open(sysctlPath(key), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return fmt.Errorf("set %s=%s: %w", key, value, err)
	}
	_, err = ignoringEINTR(func() (int, error) { return unix.Write(fd, []byte(value)) })
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("set %s=%s: %w", key, value, err)
	}
	return nil
}

func ignoringEINTR(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if err != unix.EINTR {
			return n, err
		}
	}
}
