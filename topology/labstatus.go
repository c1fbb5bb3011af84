package topology

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// This file is the one place that decides what a lab is: whether it
// exists, whether its state file can be trusted, whether it is ready, whose
// it is, and so what each verb may do with it. Every verb of the CLI asks
// Inspect and one of LabStatus's methods, never the state file or the
// namespaces directly.

// StateFile is what was found of a lab's state file.
type StateFile int

const (
	StateMissing StateFile = iota // no state file
	StateOK                       // read and valid
	StateCorrupt                  // present, but not to be trusted (see ErrBadState)
)

// NodeState is what was found where a node's namespace is mounted.
type NodeState int

const (
	NodeMissing   NodeState = iota // nothing
	NodeNamespace                  // a mounted network namespace
	NodeStub                       // a file that is not one (see ErrNotNamespace)
)

// Namespaces summarises a lab's nodes.
type Namespaces int

const (
	NamespacesGone     Namespaces = iota // no file of any node
	NamespacesPartial                    // some, or files that are not namespaces
	NamespacesComplete                   // every node's namespace is mounted
)

// Condition is what a lab is, all facts together; the verbs decide on it.
type Condition int

const (
	// LabAbsent: no state file and no namespace file.
	LabAbsent Condition = iota
	// LabLeftover: namespace files without a state file, left by a killed
	// tcplab (the state file is written before the first namespace and
	// removed after the last).
	LabLeftover
	// LabCorrupt: a state file that cannot be trusted: nothing says whose
	// the lab is.
	LabCorrupt
	// LabBuilding: its owner is alive and has not finished building it.
	LabBuilding
	// LabRunning: a live `tcplab run` is running a case on it.
	LabRunning
	// LabReady: made by `tcplab up`, complete.
	LabReady
	// LabIncomplete: made by `tcplab up`, ready once, but a namespace is
	// missing or is not a namespace.
	LabIncomplete
	// LabStale: a state file whose namespaces are all gone.
	LabStale
	// LabAbandoned: its owner is gone before it was ready, or it was a
	// `tcplab run` lab: left by a killed tcplab.
	LabAbandoned
)

var conditionNames = [...]string{"absent", "leftover", "corrupt", "building", "running", "ready", "incomplete", "stale", "abandoned"}

func (c Condition) String() string {
	if int(c) < len(conditionNames) {
		return conditionNames[c]
	}
	return fmt.Sprintf("Condition(%d)", int(c))
}

// LabStatus is everything tcplab knows about one lab, read at one moment.
type LabStatus struct {
	ID        string
	Condition Condition
	File      StateFile
	// State is the state file's content when File is StateOK.
	State State
	// StateErr is why the state file cannot be trusted when File is
	// StateCorrupt (it wraps ErrBadState).
	StateErr error
	// OwnerAlive: the process that made the lab (State.PID, with its
	// start time) still runs.
	OwnerAlive bool
	// Nodes is what was found for each node, in the order of Roles.
	Nodes [3]NodeState
}

// Inspect reads what lab id is: its namespaces, then its state file (in
// that order: Up writes the state file before the first namespace, so a
// namespace seen before the state file is read is never taken for a
// leftover while a live tcplab builds the lab). It fails only on an invalid
// id or an error reading what is there; a lab that does not exist is
// Condition LabAbsent.
func Inspect(id string) (LabStatus, error) {
	if err := ValidateID(id); err != nil {
		return LabStatus{}, err
	}
	st := LabStatus{ID: id}
	for i, r := range Roles {
		ns, err := nodeState(NSName(id, r))
		if err != nil {
			return LabStatus{}, fmt.Errorf("inspect lab %q: %w", id, err)
		}
		st.Nodes[i] = ns
	}
	s, err := ReadState(id)
	switch {
	case err == nil:
		st.File, st.State, st.OwnerAlive = StateOK, s, s.OwnerAlive()
	case errors.Is(err, ErrNoLab):
		st.File = StateMissing
	case errors.Is(err, ErrBadState):
		st.File, st.StateErr = StateCorrupt, err
	default:
		return LabStatus{}, err
	}
	st.Condition = st.condition()
	return st, nil
}

// nodeState tells what is at a node's namespace path, by the same rule
// that opens it (openNamedNS).
func nodeState(name string) (NodeState, error) {
	h, err := openNamedNS(name)
	switch {
	case err == nil:
		h.Close()
		return NodeNamespace, nil
	case errors.Is(err, ErrNotNamespace):
		return NodeStub, nil
	case errors.Is(err, os.ErrNotExist):
		return NodeMissing, nil
	}
	return NodeMissing, err
}

func (s LabStatus) condition() Condition {
	ns := s.Namespaces()
	switch {
	case s.File == StateMissing && ns == NamespacesGone:
		return LabAbsent
	case s.File == StateMissing:
		return LabLeftover
	case s.File == StateCorrupt:
		return LabCorrupt
	case !s.State.Ready && s.OwnerAlive:
		return LabBuilding
	case s.State.Kind == KindRun && s.OwnerAlive:
		return LabRunning
	case ns == NamespacesGone:
		return LabStale
	case s.State.Kind == KindUp && s.State.Ready && ns == NamespacesComplete:
		return LabReady
	case s.State.Kind == KindUp && s.State.Ready:
		return LabIncomplete
	}
	return LabAbandoned
}

// Node returns what was found for node role.
func (s LabStatus) Node(role string) NodeState {
	for i, r := range Roles {
		if r == role {
			return s.Nodes[i]
		}
	}
	return NodeMissing
}

// Namespaces says whether all, some or none of the lab's namespaces exist.
// A file that is not a namespace makes a lab partial, not gone: it is
// something to remove.
func (s LabStatus) Namespaces() Namespaces {
	mounted, files := 0, 0
	for _, n := range s.Nodes {
		if n != NodeMissing {
			files++
		}
		if n == NodeNamespace {
			mounted++
		}
	}
	switch {
	case files == 0:
		return NamespacesGone
	case mounted == len(s.Nodes):
		return NamespacesComplete
	}
	return NamespacesPartial
}

// Exists reports whether anything of the lab is there.
func (s LabStatus) Exists() bool { return s.Condition != LabAbsent }

// LabError is a verb's refusal, or a note, about a lab: one line that says
// what is wrong and names the command that fixes it.
type LabError struct {
	ID        string
	Condition Condition
	msg       string
	err       error
}

func (e *LabError) Error() string { return e.msg }

// Unwrap gives ErrNoLab for a lab that does not exist, and the state
// file's error (wrapping ErrBadState) for a corrupt one.
func (e *LabError) Unwrap() error { return e.err }

func (s LabStatus) errorf(wrapped error, format string, a ...any) *LabError {
	return &LabError{ID: s.ID, Condition: s.Condition, msg: fmt.Sprintf(format, a...), err: wrapped}
}

// missing names what is wrong with the namespaces of a partial lab.
func (s LabStatus) missing() string {
	var out []string
	for i, r := range Roles {
		switch s.Nodes[i] {
		case NodeMissing:
			out = append(out, "no namespace "+NSName(s.ID, r))
		case NodeStub:
			out = append(out, NSName(s.ID, r)+" is not a mounted namespace")
		}
	}
	return strings.Join(out, ", ")
}

// problem is the one line about a lab that cannot be used, with the
// command that fixes it: the same line whichever verb met it.
func (s LabStatus) problem() *LabError {
	id, pid := s.ID, s.State.PID
	switch s.Condition {
	case LabAbsent:
		return s.errorf(fmt.Errorf("lab %q: %w", id, ErrNoLab), "no lab %q; `tcplab status` lists the labs", id)
	case LabLeftover:
		return s.errorf(nil, "lab %q has no state file: its namespaces were left by a killed tcplab; `tcplab clean` removes them", id)
	case LabCorrupt:
		return s.errorf(s.StateErr, "%v; `tcplab down %s` removes the lab", s.StateErr, id)
	case LabBuilding:
		return s.errorf(nil, "lab %q is still being built by tcplab (pid %d)", id, pid)
	case LabRunning:
		if s.Namespaces() == NamespacesComplete {
			return nil
		}
		return s.errorf(nil, "lab %q belongs to `tcplab run` (pid %d) and is incomplete right now (%s)", id, pid, s.missing())
	case LabStale:
		return s.errorf(nil, "lab %q no longer exists (its namespaces are gone); `tcplab down %s` or `tcplab clean` removes its stale state file", id, id)
	case LabIncomplete:
		return s.errorf(nil, "lab %q is incomplete (%s); `tcplab down %s` removes it", id, s.missing(), id)
	case LabAbandoned:
		return s.errorf(nil, "lab %q was left by a killed tcplab %s (pid %d); `tcplab clean` removes it", id, s.State.Kind, pid)
	}
	return nil
}

// Usable says whether commands may be run in the lab and faults applied to
// it (exec, fault): nil for a complete lab made by `tcplab up`, or one a
// live `tcplab run` is running a case on; otherwise the one line saying
// why not and what fixes it.
func (s LabStatus) Usable() error {
	if s.Condition == LabReady {
		return nil
	}
	if p := s.problem(); p != nil {
		return p
	}
	return nil
}

// Summary describes the lab in a few words, for `tcplab status`.
func (s LabStatus) Summary() string {
	st := s.State
	switch s.Condition {
	case LabAbsent:
		return "gone"
	case LabLeftover:
		return "no state file: left by a killed tcplab; `tcplab clean` removes it"
	case LabCorrupt:
		return "state file unreadable"
	case LabBuilding:
		return fmt.Sprintf("being built by tcplab, pid %d", st.PID)
	case LabRunning:
		return fmt.Sprintf("made by tcplab run, pid %d, running", st.PID)
	case LabStale:
		return "namespaces gone"
	case LabReady:
		return "up since " + st.Created.Local().Format("2006-01-02 15:04:05")
	case LabIncomplete:
		return "incomplete, up since " + st.Created.Local().Format("2006-01-02 15:04:05")
	}
	return fmt.Sprintf("made by tcplab %s, pid %d, gone; `tcplab clean` removes it", st.Kind, st.PID)
}

// Problem is what `tcplab status` reports on stderr, with exit status 2:
// what is wrong with a lab that only `tcplab down` (or clean) can fix, a
// corrupt state file, or namespaces gone or incomplete. Labs a live tcplab
// is building or running, and leftovers of killed ones (which Summary
// already points at `tcplab clean`), are not problems.
func (s LabStatus) Problem() error {
	switch s.Condition {
	case LabCorrupt, LabStale, LabIncomplete:
		return s.problem()
	}
	return nil
}

// MayDown says whether `tcplab down` may remove the lab: anything there is
// of it, except a lab that a live tcplab is still building or running a
// case on. The error is the one line saying why not.
func (s LabStatus) MayDown() error {
	pid := s.State.PID
	switch s.Condition {
	case LabAbsent:
		return s.problem()
	case LabBuilding:
		return s.errorf(nil, "lab %q is still being built by tcplab (pid %d); remove it once that is done", s.ID, pid)
	case LabRunning:
		return s.errorf(nil, "lab %q belongs to `tcplab run` (pid %d), which removes it when its case ends; interrupt that process to end it sooner", s.ID, pid)
	}
	return nil
}

// RemovedNote says, once `tcplab down` removed the lab, what was wrong with it
// (exit status 2), or nil.
func (s LabStatus) RemovedNote() error {
	switch s.Condition {
	case LabCorrupt:
		return s.errorf(s.StateErr, "%v; removed the lab and the state file anyway", s.StateErr)
	case LabStale:
		return s.errorf(nil, "lab %q no longer existed (its namespaces were gone); removed its stale state file", s.ID)
	}
	return nil
}

// Cleanable says whether `tcplab clean` removes the lab: the leftovers of
// killed tcplab processes (no state file, a dead owner before the lab was
// ready or of a run, namespaces gone), never a lab a live tcplab is
// building or running a case on; labs made by `tcplab up`, and labs whose
// state file is corrupt (nothing says whose they are), only with all.
func (s LabStatus) Cleanable(all bool) bool {
	switch s.Condition {
	case LabLeftover, LabStale, LabAbandoned:
		return true
	case LabReady, LabIncomplete, LabCorrupt:
		return all
	}
	return false
}

// Taken is the one line `tcplab up` gives when the name is already in use.
func (s LabStatus) Taken() error {
	id := s.ID
	switch s.Condition {
	case LabCorrupt:
		return s.errorf(s.StateErr, "lab %q already exists, with a corrupt state file; pick another --name or remove it with `tcplab down %s`", id, id)
	case LabLeftover:
		return s.errorf(nil, "namespaces of a lab %q were left by a killed tcplab; `tcplab clean` removes them, or pick another --name", id)
	case LabBuilding, LabRunning:
		return s.errorf(nil, "lab %q already exists and belongs to a running tcplab (pid %d); pick another --name", id, s.State.PID)
	case LabAbandoned:
		return s.errorf(nil, "lab %q already exists, left by a killed tcplab; pick another --name or remove it with `tcplab clean`", id)
	}
	return s.errorf(nil, "lab %q already exists; pick another --name or remove it with `tcplab down %s`", id, id)
}
