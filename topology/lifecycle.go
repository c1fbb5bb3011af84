package topology

import (
	"fmt"
	"time"
)

// A node's life within a lab: its link going down and up, and a host going
// down and coming back as a new namespace (a reboot). Faults (impair) call
// these; they know nothing of faults.

// SetLink sets the link of node `on` that faces node `to` up or down.
// Setting it up again restores what setting it down flushed: the addresses'
// neighbour entries and routes of the client or server end.
func (l *Lab) SetLink(on, to string, up bool) error {
	n := l.Node(on)
	if n == nil {
		return fmt.Errorf("set link: no node %q", on)
	}
	h, err := n.handle()
	if err != nil {
		return err
	}
	name := LinkName(l.ID, on, to)
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", name, n.NSName, err)
	}
	if up {
		err = h.LinkSetUp(link)
	} else {
		err = h.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("set %s in %s up=%v: %w", name, n.NSName, up, err)
	}
	if !up {
		return nil
	}
	host := on
	if on == Router {
		host = to
	}
	if err := l.Rewire(host); err != nil {
		return err
	}
	// The end that stayed up only regained its carrier: as after Up,
	// wait until both ends carry frames and IPv6 can use the link.
	return waitUsable(n, name, l.Node(to), LinkName(l.ID, to, on))
}

// Reboot flushes node role (the client or the server) and brings it back,
// as a crash and a reboot would: its link goes down (nothing more leaves
// the old host), every process in the namespace is killed, every TCP socket
// left is destroyed (an orphan still trying to send a FIN would hold its
// namespace for minutes), the old link is deleted, the router's end with
// it, and the namespace is unmounted; then a new namespace is made under
// the same name, with the same addresses and MAC, and its link brought up.
// It returns when the host was down (gone, not yet recreated).
//
// The link is deleted rather than left to go with the namespace: the
// kernel frees namespaces from one work queue for the whole machine, which
// with many labs coming and going can take tens of seconds, and the
// router's end of the old link would hold the name the new one needs.
func (l *Lab) Reboot(role string) (down time.Time, err error) {
	n := l.Node(role)
	if n == nil || role == Router {
		return down, fmt.Errorf("reboot %s: only the client or the server can reboot", role)
	}
	if err := l.SetLink(role, Router, false); err != nil {
		return down, err
	}
	if err := KillProcesses(n); err != nil {
		return down, err
	}
	if err := n.DestroySockets(); err != nil {
		return down, err
	}
	if err := l.Router.deleteLink(LinkName(l.ID, Router, role)); err != nil {
		return down, fmt.Errorf("reboot %s: %w", n.NSName, err)
	}
	if err := n.Delete(); err != nil {
		return down, err
	}
	down = time.Now()
	if err := n.Recreate(); err != nil {
		return down, err
	}
	return down, l.Reconnect(role)
}

// deleteLink deletes link name of node n, and with a veth its peer; it
// returns once the kernel has unregistered both.
func (n *Node) deleteLink(name string) error {
	h, err := n.handle()
	if err != nil {
		return err
	}
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", name, n.NSName, err)
	}
	if err := h.LinkDel(link); err != nil {
		return fmt.Errorf("delete %s in %s: %w", name, n.NSName, err)
	}
	return nil
}
