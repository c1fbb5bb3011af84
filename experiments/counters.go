package experiments

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/tcplab/tcplab/topology"
)

// Where a case's truth is in a kernel counter (a listener's overflows, a
// close that aborted), the case reads the node's SNMP counters before and
// after and reports the change. /proc/net is /proc/self/net, which follows
// the net namespace of the task that reads it: the files are opened through
// /proc/thread-self on a thread inside the node's namespace (Node.Do), so
// they show that namespace's counters.

// CounterChange is how much a counter of a node's namespace moved while
// part of a case ran, and what the case expects.
type CounterChange struct {
	Node string `json:"node"`
	// Name is the counter as nstat names it ("TcpExt:ListenOverflows"),
	// or a count the case read another way (sockets in a state).
	Name string `json:"name"`
	// During says what the case did between the two readings.
	During string `json:"during"`
	Before int64  `json:"before"`
	After  int64  `json:"after"`
	// Want is the expected change ("1", "at least 1").
	Want string `json:"want"`
	OK   bool   `json:"ok"`
}

// Delta is the counter's change.
func (c CounterChange) Delta() int64 { return c.After - c.Before }

func (c CounterChange) String() string {
	mark := "ok"
	if !c.OK {
		mark = "NO"
	}
	return fmt.Sprintf("%s %s %s %+d (%d → %d) during %s, want %s", mark, c.Node, c.Name, c.Delta(), c.Before, c.After, c.During, c.Want)
}

// counterWant is one counter a case watches and the change it expects;
// Max < 0: no upper bound.
type counterWant struct {
	Name     string
	Min, Max int64
}

func (w counterWant) want() string {
	switch {
	case w.Max < 0:
		return fmt.Sprintf("at least %d", w.Min)
	case w.Min == w.Max:
		return strconv.FormatInt(w.Min, 10)
	}
	return fmt.Sprintf("%d to %d", w.Min, w.Max)
}

// snmpCounters reads every counter of the calling thread's namespace
// from /proc/thread-self/net/netstat and snmp, named as nstat names them:
// "TcpExt:ListenOverflows", "Tcp:AttemptFails". TCP's counters there count
// both families.
func snmpCounters() (map[string]int64, error) {
	out := map[string]int64{}
	for _, f := range []string{"netstat", "snmp"} {
		b, err := os.ReadFile("/proc/thread-self/net/" + f)
		if err != nil {
			return nil, fmt.Errorf("read counters: %w", err)
		}
		// Pairs of lines: "TcpExt: Name1 Name2 ..." then "TcpExt: 1 2 ...".
		var names []string
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 {
				continue
			}
			if names == nil || names[0] != f[0] {
				names = f
				continue
			}
			for i := 1; i < len(f) && i < len(names); i++ {
				if v, err := strconv.ParseInt(f[i], 10, 64); err == nil {
					out[strings.TrimSuffix(f[0], ":")+":"+names[i]] = v
				}
			}
			names = nil
		}
	}
	return out, nil
}

// nodeCounters reads the SNMP counters of node n's namespace.
func nodeCounters(n *topology.Node) (map[string]int64, error) {
	var c map[string]int64
	err := n.Do(func() error {
		var err error
		c, err = snmpCounters()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("counters of %s: %w", n.NSName, err)
	}
	return c, nil
}

// watchCounters reads the node's counters now and returns a function that
// reads them again and records the change of each wanted one, with what
// the case did meanwhile.
func (r *Run) watchCounters(role, during string, wants ...counterWant) (func() error, error) {
	n := r.Lab.Node(role)
	before, err := nodeCounters(n)
	if err != nil {
		return nil, err
	}
	for _, w := range wants {
		if _, ok := before[w.Name]; !ok {
			return nil, fmt.Errorf("no counter %s in %s", w.Name, n.NSName)
		}
	}
	return func() error {
		after, err := nodeCounters(n)
		if err != nil {
			return err
		}
		for _, w := range wants {
			r.countChange(role, w, during, before[w.Name], after[w.Name])
		}
		return nil
	}, nil
}

// countChange records a counter's change against what the case wants.
func (r *Run) countChange(role string, w counterWant, during string, before, after int64) {
	d := after - before
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counters = append(r.counters, CounterChange{Node: role, Name: w.Name, During: during, Before: before, After: after,
		Want: w.want(), OK: d >= w.Min && (w.Max < 0 || d <= w.Max)})
}
