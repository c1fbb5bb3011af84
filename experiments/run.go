package experiments

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/topology"
)

// Run is one execution of a case on its own lab.
type Run struct {
	Case *Case
	// Cfg is the run's configuration, completed where the run started.
	Cfg Config
	// Settings are the case's knobs and timer model, computed once;
	// Timing is their prediction, made anew once the connection's RTO is
	// measured.
	Settings Settings
	Timing   Timing
	Lab      *topology.Lab
	Client   *Peer
	Server   *Peer

	start time.Time
	// measured is what the run measured that predictions depend on,
	// beside the connection's RTO.
	measured Measured
	limit    time.Duration // longest any call may block
	mu       sync.Mutex
	events   []Event
	marks    []Mark

	byo    bool // the user's programs: observed, not judged
	caps   *captures
	raw    map[string][]capture.Packet
	capErr error

	counters []CounterChange // kernel counters the case watched (counters.go)
}

// Mark is something the lab did: a fault injected, a signal sent.
type Mark struct {
	T     time.Time
	Node  string
	What  string
	Fault bool // a fault: later calls are timed from it
}

// NewLabID returns a fresh random lab id.
func NewLabID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Fault injects a fault, marked at the moment its injection began: a
// signal's effects (a FIN) can come before the call that sends it returns.
func (r *Run) Fault(node, what string, fn func() error) error {
	at := time.Now()
	if err := fn(); err != nil {
		return fmt.Errorf("inject %s: %w", what, err)
	}
	r.mu.Lock()
	r.marks = append(r.marks, Mark{T: at, Node: node, What: what, Fault: true})
	r.mu.Unlock()
	return nil
}

// Note records something the lab did that is not itself the fault.
func (r *Run) Note(node, what string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.marks = append(r.marks, Mark{T: at, Node: node, What: what})
}

func (r *Run) mark(node, what string, fault bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.marks = append(r.marks, Mark{T: time.Now(), Node: node, What: what, Fault: fault})
}

func (r *Run) record(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

// Call makes p do c and waits for the result, which it records.
func (r *Run) Call(p *Peer, c Cmd) (Event, error) {
	if err := r.Begin(p, c); err != nil {
		return Event{}, err
	}
	return r.Finish(p, c.Op)
}

// Begin asks p to make c without waiting; Finish collects the result.
func (r *Run) Begin(p *Peer, c Cmd) error { return p.Send(c) }

// Finish waits for the result of the call p is making.
func (r *Run) Finish(p *Peer, op string) (Event, error) {
	ev, err := p.Next(r.limit)
	if err != nil {
		return Event{}, fmt.Errorf("%s %s: %w", p.Role, op, err)
	}
	if ev.Err != "" {
		return ev, fmt.Errorf("%s %s: %s", p.Role, op, ev.Err)
	}
	r.record(ev)
	return ev, nil
}

// Killed records a call p never returned from because a signal ended the
// process, once the process is gone.
func (r *Run) Killed(p *Peer, syscall string) error {
	select {
	case <-p.Exited():
	case <-time.After(r.limit):
		return fmt.Errorf("%s agent still alive", p.Role)
	}
	// The agent may have answered before it died.
	if ev, err := p.Next(0); err == nil {
		r.record(ev)
		return nil
	}
	t := time.Now().UnixNano()
	r.record(Event{Node: p.Role, Syscall: syscall, Result: "killed", Signal: p.Signal(), Start: t, End: t})
	return nil
}

// RunCase builds a fresh lab, runs the case on it (with the user's own
// programs when cfg.BYO is set), tears the lab down and returns the result.
// It never prints. The configuration is completed here, once.
func RunCase(c *Case, cfg Config) Result {
	cfg = cfg.Complete()
	began := time.Now()
	s := c.SettingsFor(cfg)
	r := &Run{Case: c, Cfg: cfg, Settings: s, Timing: s.Predict(Measured{}), start: began, byo: cfg.BYO != nil}
	r.limit = 2*r.Timing.Predicted + cfg.Grace + 15*time.Second
	var err error
	var client, server *program
	switch b := cfg.BYO; {
	case b == nil:
		err = r.execute(true, true, func() error { return c.Steps(r) }, nil)
	default:
		if err = CheckBYO(c, *b); err != nil {
			break
		}
		err = r.execute(b.ClientCmd == "", b.ServerCmd == "" && c.Own.Listener, func() error {
			var err error
			client, server, err = r.runOwn(*b)
			return err
		}, func() {
			for _, p := range []*program{client, server} {
				if p != nil {
					p.stop(stoppedEnd)
				}
			}
		})
	}
	res := r.result(err)
	reportOwn(&res, cfg.BYO, client, server)
	res.WallMS = ms(time.Since(began))
	res.OverheadMS = res.WallMS - res.FloorMS
	return res
}

// execute builds the lab, sets the knobs, starts the captures and the
// built-in agents wanted, and runs body; stop, if set, ends what body
// started before the lab is torn down.
func (r *Run) execute(withClient, withServer bool, body func() error, stop func()) (err error) {
	var lab *topology.Lab
	for range 5 {
		lab, err = topology.New(NewLabID())
		if err != nil {
			return err
		}
		if err = lab.Up(topology.KindRun); !errors.Is(err, topology.ErrExists) {
			break
		}
	}
	if err != nil {
		return err
	}
	r.Lab = lab
	defer func() {
		if stop != nil {
			stop()
		}
		// Packet sockets hold their namespaces: stop before Down.
		r.raw, r.capErr = r.stopCaptures()
		// Signal both agents, then wait for both: each wait is the kernel
		// tearing a process down, and the two can overlap.
		for _, p := range []*Peer{r.Client, r.Server} {
			if p != nil {
				_ = p.cmd.Process.Kill()
			}
		}
		for _, p := range []*Peer{r.Client, r.Server} {
			if p != nil {
				<-p.exited
			}
		}
		if derr := lab.Down(); derr != nil && err == nil {
			err = derr
		}
	}()
	for _, k := range r.Settings.Knobs {
		n := lab.Node(k.Node)
		if n == nil {
			return fmt.Errorf("knob %s: no node %q", k.Key, k.Node)
		}
		if err := n.Sysctl(k.Key, k.Value); err != nil {
			return err
		}
	}
	if err := r.startCaptures(); err != nil {
		return err
	}
	var cerr, serr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if withClient {
			r.Client, cerr = StartPeer(lab.Client)
		}
	}()
	go func() {
		defer wg.Done()
		if withServer {
			r.Server, serr = StartPeer(lab.Server)
		}
	}()
	wg.Wait()
	if err := errors.Join(cerr, serr); err != nil {
		return err
	}
	endProgress := r.progress()
	defer endProgress()
	r.start = time.Now()
	return body()
}

// progress calls Config.Progress periodically until stopped.
func (r *Run) progress() func() {
	if r.Cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.Cfg.Progress(r.Case.ID, time.Since(r.start), max(r.Timing.Floor, r.Timing.Predicted))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// ServerAddr is the server's address as agents take it.
func (r *Run) ServerAddr() string { return topology.Addr(topology.Server, r.Cfg.Family).String() }

// Port is the server port in use.
func (r *Run) Port() int { return r.Cfg.Port }
