package topology_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "x1", "lab-2", "123456789"} {
		if err := topology.ValidateID(ok); err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a/b", "..", "a b", "A", "1234567890", "a_b", "a.b", "é"} {
		if err := topology.ValidateID(bad); err == nil {
			t.Errorf("ValidateID(%q) = nil, want an error", bad)
		}
	}
	// Every name built from a valid id fits the kernel's limit.
	if n := topology.LinkName("123456789", topology.Router, topology.Server); len(n) > 15 {
		t.Errorf("link name %q is %d bytes", n, len(n))
	}
}

func TestParseNSName(t *testing.T) {
	for _, c := range []struct {
		in       string
		id, role string
		ok       bool
	}{
		{"tcplab-abc-client", "abc", "client", true},
		{"tcplab-a-b-server", "a-b", "server", true},
		{"tcplab-abc-switch", "", "", false},
		{"other-abc-client", "", "", false},
		{"tcplab--client", "", "", false},
	} {
		id, role, ok := topology.ParseNSName(c.in)
		if id != c.id || role != c.role || ok != c.ok {
			t.Errorf("ParseNSName(%q) = %q, %q, %v; want %q, %q, %v", c.in, id, role, ok, c.id, c.role, c.ok)
		}
	}
}

func TestParseState(t *testing.T) {
	good := `{"id":"abc","kind":"up","pid":1,"pid_start":2,"created":"2026-01-01T00:00:00Z","ready":true}`
	if s, err := topology.ParseState([]byte(good)); err != nil || s.ID != "abc" || !s.Ready {
		t.Fatalf("ParseState(good) = %+v, %v", s, err)
	}
	for _, bad := range []string{
		``, `{`, `[]`, `{"id":"../x","kind":"up"}`, `{"id":"abc","kind":"weird"}`,
		`{"id":"abc","kind":"up","pid":-1}`, `{"id":"abc","kind":"up","extra":1}`,
		good + `{}`, strings.Replace(good, `"abc"`, `"a b"`, 1),
	} {
		if _, err := topology.ParseState([]byte(bad)); err == nil {
			t.Errorf("ParseState(%q) = nil error", bad)
		}
	}
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"id":"abc","kind":"up","pid":1,"pid_start":2,"created":"2026-01-01T00:00:00Z","ready":true}`))
	f.Add([]byte(`{"id":"abc","kind":"run","pid":0}`))
	f.Add([]byte(`{"id":"..","kind":"up"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := topology.ParseState(b)
		if err != nil {
			return
		}
		// Whatever parses names a lab whose names are safe to build.
		if topology.ValidateID(s.ID) != nil || (s.Kind != topology.KindRun && s.Kind != topology.KindUp) || s.PID < 0 {
			t.Fatalf("ParseState accepted %+v", s)
		}
	})
}

func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"abc", "a/b", "..", "a b", "123456789", "x-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if topology.ValidateID(id) != nil {
			return
		}
		for _, r := range topology.Roles {
			ns := topology.NSName(id, r)
			if strings.ContainsAny(ns, "/ \x00") || strings.Contains(ns, "..") {
				t.Fatalf("namespace name %q from id %q", ns, id)
			}
			if got, role, ok := topology.ParseNSName(ns); !ok || got != id || role != r {
				t.Fatalf("ParseNSName(%q) = %q, %q, %v", ns, got, role, ok)
			}
			for _, to := range topology.Roles {
				if to != r && len(topology.LinkName(id, r, to)) > 15 {
					t.Fatalf("link name too long for id %q", id)
				}
			}
		}
	})
}

// newLab builds a lab with a fresh id and removes it when the test ends,
// checking that nothing of it remains and that no thread was left in a lab
// namespace (these tests do not run in parallel).
func newLab(t *testing.T) *topology.Lab {
	t.Cleanup(func() { labtest.ThreadsHome(t) })
	return labtest.NewLab(t, "t")
}

// TestClientReachesServer: a TCP connection from the client namespace
// reaches a listener in the server namespace, through the router, over
// IPv4 and over IPv6.
func TestClientReachesServer(t *testing.T) {
	l := newLab(t)
	t.Run("ipv6", func(t *testing.T) {
		reach(t, l, "tcp6", "["+topology.ServerIP6.String()+"]:7001", topology.ClientIP6.String())
	})
	reach(t, l, "tcp4", topology.ServerIP.String()+":7000", topology.ClientIP.String())
}

// TestLinkSettings: every lab link ends up with the settings the lab
// depends on, whichever of conf/all, conf/default or the device's own value
// the kernel reads for each (Up writes each setting only where it counts).
func TestLinkSettings(t *testing.T) {
	l := newLab(t)
	links := map[*topology.Node][]string{
		l.Client: {topology.LinkName(l.ID, topology.Client, topology.Router)},
		l.Router: {topology.LinkName(l.ID, topology.Router, topology.Client), topology.LinkName(l.ID, topology.Router, topology.Server)},
		l.Server: {topology.LinkName(l.ID, topology.Server, topology.Router)},
	}
	for n, devs := range links {
		fwd := "0"
		if n == l.Router {
			fwd = "1"
		}
		want := map[string]string{"net.ipv6.conf.all.keep_addr_on_down": "1", "net.ipv4.ip_forward": fwd}
		for _, dev := range devs {
			for k, v := range map[string]string{
				"forwarding": fwd, "disable_ipv6": "0", "accept_dad": "0", "accept_ra": "0",
				"router_solicitations": "0", "router_solicitation_delay": "0", "ignore_routes_with_linkdown": "0",
			} {
				want["net.ipv6.conf."+dev+"."+k] = v
			}
			for _, scope := range []string{dev, "all"} {
				for _, k := range []string{"rp_filter", "accept_redirects", "send_redirects", "accept_local", "ignore_routes_with_linkdown"} {
					want["net.ipv4.conf."+scope+"."+k] = "0"
				}
				want["net.ipv4.conf."+scope+".forwarding"] = fwd
			}
		}
		for k, v := range want {
			if got, err := n.ReadSysctl(k); err != nil || got != v {
				t.Errorf("%s: %s = %q, %v; want %s", n.Role, k, got, err, v)
			}
		}
	}
}

func reach(t *testing.T, l *topology.Lab, network, addr, from string) {
	var ln net.Listener
	if err := l.Server.Do(func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- c.RemoteAddr().(*net.TCPAddr).IP.String() + " " + string(b)
	}()
	var c net.Conn
	if err := l.Client.Do(func() (err error) {
		c, err = net.DialTimeout(network, addr, 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if s := <-got; s != from+" hello" {
		t.Fatalf("server got %q", s)
	}
	// Only the router forwards; the client and server do not.
	for _, c := range []struct {
		n    *topology.Node
		want string
	}{{l.Client, "0"}, {l.Router, "1"}, {l.Server, "0"}} {
		if v, err := c.n.ReadSysctl("net.ipv4.ip_forward"); err != nil || v != c.want {
			t.Errorf("%s ip_forward = %q, %v; want %s", c.n.Role, v, err, c.want)
		}
	}
	// The host has no route into the lab: no host route points at a lab
	// link (labtest.HostSnapshot compares the host's routes as a whole).
}

// TestHostUntouched: building and removing a lab leaves the host's links,
// addresses, routes, nftables ruleset and sysctls as they were.
func TestHostUntouched(t *testing.T) {
	labtest.Privileged(t)
	before := labtest.HostSnapshot(t)
	t.Run("lab", func(t *testing.T) {
		l := newLab(t)
		if err := l.Server.Sysctl("net.ipv4.tcp_retries2", "3"); err != nil {
			t.Fatal(err)
		}
		if mid := labtest.HostSnapshot(t); mid != before {
			t.Errorf("host changed while the lab was up:\n%s", labtest.SnapshotDiff(before, mid))
		}
	})
	if after := labtest.HostSnapshot(t); after != before {
		t.Errorf("host changed:\n%s", labtest.SnapshotDiff(before, after))
	}
}

// TestDownKillsProcesses: a process started in a node, and one it forked,
// are gone after Down, as are the namespaces and the state file.
func TestDownKillsProcesses(t *testing.T) {
	l := newLab(t)
	cmd := exec.Command("/bin/sh", "-c", "sleep 1000 & exec sleep 1000")
	if err := l.Server.Start(cmd); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("process still running after Down")
	}
	if err := l.Down(); err != nil {
		t.Fatalf("second Down: %v", err)
	}
}

// TestDownAfterPartialUp: Down removes a lab that was only half built, and a
// second Up with the same id is refused while the first exists.
func TestDownAfterPartialUp(t *testing.T) {
	l := newLab(t)
	l2, _ := topology.New(l.ID)
	if err := l2.Up(topology.KindRun); !errors.Is(err, topology.ErrExists) {
		t.Fatalf("second Up = %v, want ErrExists", err)
	}
	if !topology.Exists(l.ID) {
		t.Fatal("the refused Up removed the existing lab")
	}
	// Remove one namespace behind the lab's back: Down still cleans up.
	if err := l.Server.Delete(); err != nil {
		t.Fatal(err)
	}
	l3, _ := topology.New(l.ID)
	if err := l3.Down(); err != nil {
		t.Fatalf("Down of a partial lab: %v", err)
	}
	labtest.NoLeftovers(t, l.ID)
}

// TestCleanRemovesDeadOwners: a lab whose owner process is gone is removed
// by Clean; a lab made by up is kept unless all.
func TestCleanRemovesDeadOwners(t *testing.T) {
	labtest.Privileged(t)
	// A run lab owned by a process that has exited.
	child := exec.Command(os.Args[0], "-test.run=^$")
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	dead := newLab(t)
	if err := os.WriteFile(topology.StateDir+"/"+dead.ID+".json",
		[]byte(fmt.Sprintf(`{"id":%q,"kind":"run","pid":%d,"pid_start":1,"created":"2026-01-01T00:00:00Z","ready":true}`, dead.ID, child.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	kept := newLab(t)
	up := newLab(t)
	if err := os.WriteFile(topology.StateDir+"/"+up.ID+".json",
		[]byte(fmt.Sprintf(`{"id":%q,"kind":"up","pid":1,"pid_start":1,"created":"2026-01-01T00:00:00Z","ready":true}`, up.ID)), 0o600); err != nil {
		t.Fatal(err)
	}
	removed, err := topology.Clean(false)
	if err != nil {
		t.Fatal(err)
	}
	// Another test's `tcplab clean` (the kill tests run beside this one)
	// may have removed the dead lab first: what counts is that it is gone
	// and the others are not.
	if (!contains(removed, dead.ID) && topology.Exists(dead.ID)) || contains(removed, kept.ID) || contains(removed, up.ID) {
		t.Fatalf("Clean(false) removed %v; want %s only (kept %s, up %s)", removed, dead.ID, kept.ID, up.ID)
	}
	labtest.NoLeftovers(t, dead.ID)
	// Clean(true) removes every lab made by `tcplab up` on the machine:
	// check it only where the test's own is the only one.
	ids, err := topology.Labs()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if st, err := topology.ReadState(id); err == nil && st.Kind == topology.KindUp && id != up.ID {
			t.Logf("not checking Clean(true): lab %s, made by tcplab up, is not this test's", id)
			return
		}
	}
	removed, err = topology.Clean(true)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(removed, up.ID) || contains(removed, kept.ID) {
		t.Fatalf("Clean(true) removed %v; want %s, not %s", removed, up.ID, kept.ID)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func BenchmarkUpDown(b *testing.B) {
	labtest.Privileged(b)
	for i := 0; b.Loop(); i++ {
		l, err := topology.New(fmt.Sprintf("b%d", i%100000))
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Up(topology.KindRun); err != nil {
			b.Fatal(err)
		}
		if err := l.Down(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSetLinkUp: once SetLink has set the server's link up again, both
// ends are operationally up, so the next frame is carried. The router's
// end only lost its carrier; its queueing discipline comes back when the
// kernel's link-watch work runs, and until then the router drops what it
// forwards to the server. Each round starts once that work has seen the
// carrier go. Where a pair's two ends have the same interface index in
// their namespaces, Linux 6.1 runs that work at most once a second (the
// event is not "urgent"): there a round takes up to 2 s, and without the
// wait SetLink returns with an end still down (seen on 6.1 in a VM).
func TestSetLinkUp(t *testing.T) {
	l := newLab(t)
	rName := topology.LinkName(l.ID, topology.Router, topology.Server)
	sName := topology.LinkName(l.ID, topology.Server, topology.Router)
	ns, err := l.Router.NS()
	if err != nil {
		t.Fatal(err)
	}
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{Namespace: &ns}); err != nil {
		t.Fatal(err)
	}
	operState := func(n *topology.Node, name string) netlink.LinkOperState {
		t.Helper()
		h, err := n.Handle()
		if err != nil {
			t.Fatal(err)
		}
		link, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		return link.Attrs().OperState
	}
	for round := range 5 {
		for len(updates) > 0 {
			<-updates // from the round before
		}
		if err := l.SetLink(topology.Server, topology.Router, false); err != nil {
			t.Fatal(err)
		}
		timeout := time.After(5 * time.Second)
		for operState(l.Router, rName) == netlink.OperUp {
			select {
			case <-updates:
			case <-timeout:
				t.Fatalf("round %d: %s still operationally up 5s after the server's end went down", round, rName)
			}
		}
		if err := l.SetLink(topology.Server, topology.Router, true); err != nil {
			t.Fatal(err)
		}
		for _, end := range []struct {
			n    *topology.Node
			name string
		}{{l.Router, rName}, {l.Server, sName}} {
			if s := operState(end.n, end.name); s != netlink.OperUp {
				t.Fatalf("round %d: SetLink returned with %s %v, not up", round, end.name, s)
			}
		}
	}
}

// TestRebootDeliversAtOnce: when Reboot returns, every address on the
// rebuilt link delivers locally at both ends, so the next packet to the
// server is answered. The kernel's DAD work clears an address's tentative
// flag before it inserts the address's host route; a reboot that returned
// in between let the client's first IPv6 SYN be dropped (one reboot in a
// few hundred on a loaded machine). Several labs reboot at once to load
// the kernel's work queues.
func TestRebootDeliversAtOnce(t *testing.T) {
	const labs, rounds = 4, 40
	var ls []*topology.Lab
	for range labs {
		ls = append(ls, newLab(t))
	}
	errs := make(chan error, labs)
	for _, l := range ls {
		go func() { errs <- rebootAndCheck(l, rounds) }()
	}
	for range labs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// rebootAndCheck reboots l's server rounds times; after each, every
// address other than link-local on the server's link, at the server and
// at the router, must route to the node itself (a local route).
func rebootAndCheck(l *topology.Lab, rounds int) error {
	for round := range rounds {
		if _, err := l.Reboot(topology.Server); err != nil {
			return err
		}
		for _, end := range []struct {
			n    *topology.Node
			link string
		}{
			{l.Server, topology.LinkName(l.ID, topology.Server, topology.Router)},
			{l.Router, topology.LinkName(l.ID, topology.Router, topology.Server)},
		} {
			h, err := end.n.Handle()
			if err != nil {
				return err
			}
			link, err := h.LinkByName(end.link)
			if err != nil {
				return err
			}
			addrs, err := h.AddrList(link, netlink.FAMILY_ALL)
			if err != nil {
				return err
			}
			for _, a := range addrs {
				if a.IP.IsLinkLocalUnicast() {
					continue
				}
				rs, err := h.RouteGet(a.IP)
				if err != nil {
					return fmt.Errorf("round %d: route to %s in %s: %w", round, a.IP, end.n.NSName, err)
				}
				if len(rs) != 1 || rs[0].Type != unix.RTN_LOCAL {
					return fmt.Errorf("round %d: Reboot returned with %s in %s not yet local: %+v", round, a.IP, end.n.NSName, rs)
				}
			}
		}
	}
	return nil
}
