package topology

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StateDir holds one state file per lab, readable only by root. The file is
// written before the first namespace exists and removed after the last one
// is gone, so a namespace without a state file is always a leftover.
var StateDir = "/run/tcplab"

// Lab kinds.
const (
	KindRun = "run" // lives as long as the tcplab process that made it
	KindUp  = "up"  // made by `tcplab up`, lives until `tcplab down`
)

// State is what a state file records.
type State struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	PID      int       `json:"pid"`
	PIDStart uint64    `json:"pid_start"`
	Created  time.Time `json:"created"`
	Ready    bool      `json:"ready"`
}

// ErrExists reports a lab name already in use.
var ErrExists = errors.New("lab already exists")

// ErrNoLab reports a lab that does not exist.
var ErrNoLab = errors.New("no such lab")

func statePath(id string) string { return filepath.Join(StateDir, id+".json") }

// ParseState parses and validates a state file's content. It is the only
// reader of state files, which anyone with root can edit.
func ParseState(b []byte) (State, error) {
	var s State
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return State{}, fmt.Errorf("parse state: %w", err)
	}
	if dec.More() {
		return State{}, errors.New("parse state: trailing data after the JSON object")
	}
	if err := ValidateID(s.ID); err != nil {
		return State{}, fmt.Errorf("parse state: %w", err)
	}
	if s.Kind != KindRun && s.Kind != KindUp {
		return State{}, fmt.Errorf("parse state: unknown kind %q", s.Kind)
	}
	if s.PID < 0 || s.PID > 1<<22 {
		return State{}, fmt.Errorf("parse state: pid %d out of range", s.PID)
	}
	return s, nil
}

// ReadState reads the state of lab id.
func ReadState(id string) (State, error) {
	if err := ValidateID(id); err != nil {
		return State{}, err
	}
	b, err := os.ReadFile(statePath(id))
	if errors.Is(err, os.ErrNotExist) {
		return State{}, fmt.Errorf("lab %q: %w", id, ErrNoLab)
	}
	if err != nil {
		return State{}, fmt.Errorf("read state of lab %q: %w", id, err)
	}
	s, err := ParseState(b)
	if err != nil {
		return State{}, fmt.Errorf("lab %q: state file %s: %w", id, statePath(id), err)
	}
	if s.ID != id {
		return State{}, fmt.Errorf("lab %q: state file %s names lab %q", id, statePath(id), s.ID)
	}
	return s, nil
}

// writeState claims lab id: creating the file with O_EXCL is what makes two
// processes asking for the same name fail cleanly.
func writeState(id, kind string) error {
	if err := os.MkdirAll(StateDir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	if err := os.Chmod(StateDir, 0o700); err != nil {
		return fmt.Errorf("restrict state directory: %w", err)
	}
	f, err := os.OpenFile(statePath(id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("lab %q: %w", id, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create state of lab %q: %w", id, err)
	}
	start, _ := procStart(os.Getpid())
	s := State{ID: id, Kind: kind, PID: os.Getpid(), PIDStart: start, Created: time.Now().UTC()}
	b, _ := json.Marshal(s)
	_, werr := f.Write(append(b, '\n'))
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(statePath(id))
		return fmt.Errorf("write state of lab %q: %w", id, errors.Join(werr, cerr))
	}
	return nil
}

func markReady(id string) error {
	s, err := ReadState(id)
	if err != nil {
		return err
	}
	s.Ready = true
	b, _ := json.Marshal(s)
	tmp := statePath(id) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("update state of lab %q: %w", id, err)
	}
	if err := os.Rename(tmp, statePath(id)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("update state of lab %q: %w", id, err)
	}
	return nil
}

func removeState(id string) error {
	os.Remove(statePath(id) + ".tmp")
	if err := os.Remove(statePath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove state of lab %q: %w", id, err)
	}
	return nil
}

// procStart returns a process's start time (clock ticks after boot), which
// with the pid identifies it even after the pid is reused.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may contain spaces and parentheses: fields start
	// after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, errors.New("malformed stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// OwnerAlive reports whether the process that made the lab still runs.
func (s State) OwnerAlive() bool {
	if s.PID <= 0 {
		return false
	}
	start, err := procStart(s.PID)
	return err == nil && start == s.PIDStart
}

// Labs lists the ids that have a state file or a namespace, sorted.
func Labs() ([]string, error) {
	ids := map[string]bool{}
	if ents, err := os.ReadDir(StateDir); err == nil {
		for _, e := range ents {
			if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && ValidateID(id) == nil {
				ids[id] = true
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list labs: %w", err)
	}
	if ents, err := os.ReadDir(NetnsDir); err == nil {
		for _, e := range ents {
			if id, _, ok := ParseNSName(e.Name()); ok {
				ids[id] = true
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list labs: %w", err)
	}
	out := make([]string, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

// Exists reports whether any namespace of lab id exists.
func Exists(id string) bool {
	for _, r := range Roles {
		if _, err := os.Stat(filepath.Join(NetnsDir, NSName(id, r))); err == nil {
			return true
		}
	}
	return false
}

// Open returns a lab that `tcplab up` left running.
func Open(id string) (*Lab, State, error) {
	s, err := ReadState(id)
	if err != nil {
		return nil, State{}, err
	}
	l, err := New(id)
	if err != nil {
		return nil, State{}, err
	}
	for _, n := range l.Nodes() {
		if _, err := n.NS(); err != nil {
			return nil, s, fmt.Errorf("lab %q is incomplete (%v); remove it with `tcplab down %s`", id, err, id)
		}
	}
	return l, s, nil
}

// Clean removes every lab whose owner is gone: labs of dead `run`
// processes, half-made labs, and namespaces without a state file. Labs left
// by `tcplab up` stay unless all is set. A state file that cannot be parsed
// is treated as a leftover: it is removed with whatever it names.
func Clean(all bool) (removed []string, err error) {
	ids, err := Labs()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, id := range ids {
		s, serr := ReadState(id)
		if serr == nil {
			if s.Kind == KindUp && s.Ready && !all {
				continue
			}
			if s.OwnerAlive() && s.Kind == KindRun {
				continue
			}
			if s.OwnerAlive() && !s.Ready && !all {
				continue // still being built
			}
		}
		l, _ := New(id)
		if err := l.Down(); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, id)
	}
	return removed, errors.Join(errs...)
}

// closing guards lab creation against a concurrent Shutdown: Up holds it
// for reading while it creates namespaces, Shutdown takes it for writing.
var (
	closing   sync.RWMutex
	isClosing bool
)

// ErrShuttingDown is returned by Up once Shutdown has begun.
var ErrShuttingDown = errors.New("tcplab is shutting down")

// Shutdown stops new labs from being made and removes every lab this
// process owns. It is what an interrupt runs; it is safe to call twice.
func Shutdown() error {
	closing.Lock()
	isClosing = true
	closing.Unlock()
	ids, err := Labs()
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		s, err := ReadState(id)
		if err != nil || s.PID != os.Getpid() || s.Kind != KindRun {
			continue
		}
		l, _ := New(id)
		errs = append(errs, l.Down())
	}
	return errors.Join(errs...)
}

// NodeExists reports whether the namespace of node role of lab id exists.
func NodeExists(id, role string) bool {
	_, err := os.Stat(filepath.Join(NetnsDir, NSName(id, role)))
	return err == nil
}
