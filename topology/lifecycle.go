package topology

import (
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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
	// Up is up once IPv6 can use the link at both ends too (each
	// link-local address is configured from the kernel's work queue, after
	// the link, or its peer's carrier, comes up).
	if err := n.waitLinkLocal(name, 5*time.Second); err != nil {
		return err
	}
	peer := l.Node(to)
	return peer.waitLinkLocal(LinkName(l.ID, to, on), 5*time.Second)
}

// Reboot flushes node role (the client or the server) and brings it back,
// as a crash and a reboot would: its link goes down (nothing more leaves
// the old host), every process in the namespace is killed, every TCP socket
// left (orphans still trying to send a FIN hold a reference on their
// namespace) is destroyed, the namespace is deleted, and only once the
// kernel has really freed it (the router's end of the old veth disappears
// with it) is a new namespace made under the same name, with the same
// addresses and MAC, and its link brought up. It returns when the host was
// down (gone, not yet recreated).
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
	gone, err := l.Router.watchLinkGone(LinkName(l.ID, Router, role))
	if err != nil {
		return down, err
	}
	if err := n.Delete(); err != nil {
		return down, err
	}
	// The kernel frees namespaces from one work queue for the whole
	// machine: with many labs coming and going that can take seconds.
	if err := gone(30 * time.Second); err != nil {
		return down, fmt.Errorf("reboot %s: the old namespace was not freed (%w); something still refers to it", n.NSName, err)
	}
	down = time.Now()
	if err := n.Recreate(); err != nil {
		return down, err
	}
	return down, l.Reconnect(role)
}

// watchLinkGone subscribes to link notifications in node n and returns a
// function that waits until link `name` is deleted.
func (n *Node) watchLinkGone(name string) (func(time.Duration) error, error) {
	ns, err := n.NS()
	if err != nil {
		return nil, err
	}
	h, err := n.handle()
	if err != nil {
		return nil, err
	}
	ch := make(chan netlink.LinkUpdate, 32)
	done := make(chan struct{})
	if err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{Namespace: &ns}); err != nil {
		return nil, fmt.Errorf("watch links in %s: %w", n.NSName, err)
	}
	link, err := h.LinkByName(name)
	if err != nil {
		close(done)
		return func(time.Duration) error { return nil }, nil // already gone
	}
	idx := link.Attrs().Index
	return func(timeout time.Duration) error {
		defer close(done)
		t := time.After(timeout)
		for {
			select {
			case u, ok := <-ch:
				if !ok {
					return fmt.Errorf("link notifications in %s closed", n.NSName)
				}
				if u.Header.Type == unix.RTM_DELLINK && int(u.Index) == idx {
					return nil
				}
			case <-t:
				return fmt.Errorf("%s still exists after %v", name, timeout)
			}
		}
	}, nil
}
