// Package labtest holds what the privileged tests share: the capability
// check they skip on, a snapshot of the host's network state, and the
// leftover checks run after every lab.
package labtest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Privileged skips the test unless it can build labs: root, which here
// stands for CAP_SYS_ADMIN (namespaces, mounts) and CAP_NET_ADMIN. The
// project's CI fails on any skip.
func Privileged(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("privileged test: needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) to create network namespaces")
	}
}

// HostSnapshot describes the host namespace's network state: links,
// addresses, routes, neighbours aside, the nftables ruleset, and the
// sysctls the lab sets in its own namespaces.
func HostSnapshot(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("open netlink: %v", err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	var ls []string
	for _, l := range links {
		a := l.Attrs()
		ls = append(ls, fmt.Sprintf("link %d %s %s %s mtu=%d flags=%v", a.Index, a.Name, l.Type(), a.HardwareAddr, a.MTU, a.Flags))
	}
	sort.Strings(ls)
	b.WriteString(strings.Join(ls, "\n") + "\n")
	addrs, err := h.AddrList(nil, unix.AF_UNSPEC)
	if err != nil {
		t.Fatalf("list addresses: %v", err)
	}
	var as []string
	for _, a := range addrs {
		as = append(as, fmt.Sprintf("addr %d %s", a.LinkIndex, a.IPNet))
	}
	sort.Strings(as)
	b.WriteString(strings.Join(as, "\n") + "\n")
	routes, err := h.RouteListFiltered(unix.AF_UNSPEC, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatalf("list routes: %v", err)
	}
	var rs []string
	for _, r := range routes {
		rs = append(rs, fmt.Sprintf("route table=%d %s via %s dev %d src %s proto %d", r.Table, r.Dst, r.Gw, r.LinkIndex, r.Src, r.Protocol))
	}
	sort.Strings(rs)
	b.WriteString(strings.Join(rs, "\n") + "\n")
	b.WriteString(nftRuleset(t))
	for _, k := range []string{
		"net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding", "net/ipv4/conf/all/rp_filter",
		"net/ipv4/conf/default/rp_filter", "net/ipv4/conf/all/send_redirects", "net/ipv4/conf/all/accept_redirects",
		"net/ipv4/conf/all/ignore_routes_with_linkdown", "net/ipv4/tcp_syn_retries", "net/ipv4/tcp_retries2",
		"net/ipv4/tcp_no_metrics_save", "net/ipv4/icmp_ratelimit", "net/ipv4/icmp_msgs_per_sec",
		"net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6",
	} {
		v, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			t.Fatalf("read sysctl %s: %v", k, err)
		}
		fmt.Fprintf(&b, "sysctl %s=%s\n", k, strings.TrimSpace(string(v)))
	}
	return b.String()
}

// SnapshotDiff lists the lines only one of two snapshots has, "-" for the
// first and "+" for the second.
func SnapshotDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	am, bm := in(a), in(b)
	var out []string
	for l := range am {
		if !bm[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range bm {
		if !am[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func nftRuleset(t testing.TB) string {
	c, err := nftables.New()
	if err != nil {
		t.Fatalf("open nftables: %v", err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatalf("list nftables tables: %v", err)
	}
	var out []string
	for _, tb := range tables {
		out = append(out, fmt.Sprintf("nft table %d %s", tb.Family, tb.Name))
		chains, err := c.ListChainsOfTableFamily(tb.Family)
		if err != nil {
			t.Fatalf("list nftables chains: %v", err)
		}
		for _, ch := range chains {
			if ch.Table.Name != tb.Name {
				continue
			}
			rules, err := c.GetRules(tb, ch)
			if err != nil {
				t.Fatalf("list nftables rules: %v", err)
			}
			out = append(out, fmt.Sprintf("nft chain %s %s rules=%d", tb.Name, ch.Name, len(rules)))
			for _, r := range rules {
				out = append(out, fmt.Sprintf("nft rule %s %s %d exprs=%d", tb.Name, ch.Name, r.Handle, len(r.Exprs)))
			}
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n") + "\n"
}

// NoLeftovers fails the test if anything of lab id remains: a namespace, a
// state file, or a link named for it in the host.
func NoLeftovers(t testing.TB, id string) {
	t.Helper()
	for _, r := range topology.Roles {
		if topology.NodeExists(id, r) {
			t.Errorf("namespace %s still exists", topology.NSName(id, r))
		}
	}
	if _, err := os.Stat(filepath.Join(topology.StateDir, id+".json")); err == nil {
		t.Errorf("state file of lab %s still exists", id)
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatalf("list host links: %v", err)
	}
	for _, l := range links {
		if strings.Contains(l.Attrs().Name, "-"+id+"-") {
			t.Errorf("link %s of lab %s is in the host namespace", l.Attrs().Name, id)
		}
	}
}

// ThreadsHome fails the test if a thread of this process is in a network
// namespace other than the host's. Call it only while no lab operation of
// the process is under way.
func ThreadsHome(t testing.TB) {
	t.Helper()
	h, err := topology.HostNS()
	if err != nil {
		t.Fatalf("host namespace: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		t.Fatalf("host namespace: %v", err)
	}
	host := fmt.Sprintf("net:[%d]", st.Ino)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatalf("list threads: %v", err)
	}
	for _, task := range tasks {
		ns, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns/net"))
		if err == nil && ns != host {
			t.Errorf("thread %s is still in network namespace %s", task.Name(), ns)
		}
	}
}

var labSeq atomic.Int32

// NewLab builds a lab for a test, its id starting with prefix, and removes
// it when the test ends, checking that nothing of it remains.
func NewLab(t testing.TB, prefix string) *topology.Lab {
	t.Helper()
	Privileged(t)
	id := fmt.Sprintf("%s%x%d", prefix, time.Now().UnixNano()&0xfffff, labSeq.Add(1)%10)
	l, err := topology.New(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("Down: %v", err)
		}
		NoLeftovers(t, id)
	})
	if err := l.Up(topology.KindRun); err != nil {
		t.Fatalf("Up: %v", err)
	}
	return l
}
