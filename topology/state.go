package topology

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
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

// ErrBadState reports a state file that exists but cannot be trusted:
// truncated, not JSON, naming another lab, not a regular file.
var ErrBadState = errors.New("corrupt state file")

// maxStateSize bounds what is read of a state file: a real one is about 150
// bytes.
const maxStateSize = 4096

// ReadState reads the state of lab id. A missing file gives ErrNoLab, one
// that cannot be parsed ErrBadState.
func ReadState(id string) (State, error) {
	if err := ValidateID(id); err != nil {
		return State{}, err
	}
	b, err := readStateFile(statePath(id))
	if errors.Is(err, os.ErrNotExist) {
		return State{}, fmt.Errorf("lab %q: %w", id, ErrNoLab)
	}
	if err != nil {
		return State{}, fmt.Errorf("lab %q: %w: %w", id, ErrBadState, err)
	}
	s, err := ParseState(b)
	if err != nil {
		return State{}, fmt.Errorf("lab %q: %w: %s: %w", id, ErrBadState, statePath(id), err)
	}
	if s.ID != id {
		return State{}, fmt.Errorf("lab %q: %w: %s names lab %q", id, ErrBadState, statePath(id), s.ID)
	}
	return s, nil
}

// readStateFile reads a state file without following a symbolic link,
// blocking on a FIFO or reading a device: only a small regular file is a
// state file.
func readStateFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == unix.ELOOP {
		return nil, fmt.Errorf("%s is a symbolic link", path)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		kind := "not a regular file"
		switch t := st.Mode().Type(); {
		case t&os.ModeDir != 0:
			kind = "a directory"
		case t&os.ModeNamedPipe != 0:
			kind = "a FIFO"
		case t&os.ModeSocket != 0:
			kind = "a socket"
		case t&os.ModeDevice != 0:
			kind = "a device"
		}
		return nil, fmt.Errorf("%s is %s, not a state file", path, kind)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxStateSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxStateSize)
	}
	return b, nil
}

// owned is the labs this process has claimed and not yet removed: what
// Shutdown removes. Guarded by ownedMu; entries are added under closing.
var (
	ownedMu sync.Mutex
	owned   = map[string]bool{}
)

// tmpSeq makes the names of temporary state files unique in the process.
var tmpSeq atomic.Uint64

// tmpStatePath is a name for a state file being written: hidden, so that
// Labs does not see it, and carrying the writer's pid, so that Clean can
// tell one left by a killed process.
func tmpStatePath(id string) string {
	return filepath.Join(StateDir, fmt.Sprintf(".%s.%d.%d.tmp", id, os.Getpid(), tmpSeq.Add(1)))
}

// writeTemp writes s to a fresh temporary file and returns its name.
func writeTemp(s State) (string, error) {
	b, _ := json.Marshal(s)
	tmp := tmpStatePath(s.ID)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, werr := f.Write(append(b, '\n'))
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// writeState claims lab id. The state is written to a temporary file and
// linked into place: link(2) fails if the name exists, which is what makes
// two processes asking for the same name fail cleanly, and a reader never
// sees a half-written file. Once Shutdown has begun, no lab is claimed.
func writeState(id, kind string) error {
	closing.RLock()
	defer closing.RUnlock()
	if isClosing {
		return ErrShuttingDown
	}
	if err := os.MkdirAll(StateDir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	if err := os.Chmod(StateDir, 0o700); err != nil {
		return fmt.Errorf("restrict state directory: %w", err)
	}
	start, _ := procStart(os.Getpid())
	tmp, err := writeTemp(State{ID: id, Kind: kind, PID: os.Getpid(), PIDStart: start, Created: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("write state of lab %q: %w", id, err)
	}
	err = os.Link(tmp, statePath(id))
	os.Remove(tmp)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("lab %q: %w", id, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create state of lab %q: %w", id, err)
	}
	// The state file is written before the first namespace and removed
	// after the last, so namespaces without one were left by a killed
	// tcplab: they are not this lab's to take over or remove.
	if Exists(id) {
		os.Remove(statePath(id))
		return fmt.Errorf("lab %q: %w: its namespaces were left by a killed tcplab (`tcplab clean` removes them)", id, ErrExists)
	}
	ownedMu.Lock()
	owned[id] = true
	ownedMu.Unlock()
	return nil
}

// markReady records that the lab is complete. Like writeState it does
// nothing once Shutdown has begun, so it cannot bring back a state file
// Shutdown removed.
func markReady(id string) error {
	closing.RLock()
	defer closing.RUnlock()
	if isClosing {
		return ErrShuttingDown
	}
	s, err := ReadState(id)
	if err != nil {
		return err
	}
	s.Ready = true
	tmp, err := writeTemp(s)
	if err != nil {
		return fmt.Errorf("update state of lab %q: %w", id, err)
	}
	if err := os.Rename(tmp, statePath(id)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("update state of lab %q: %w", id, err)
	}
	return nil
}

func removeState(id string) error {
	if err := os.Remove(statePath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove state of lab %q: %w", id, err)
	}
	ownedMu.Lock()
	delete(owned, id)
	ownedMu.Unlock()
	return nil
}

// removeStaleTemps removes temporary state files whose writer is gone (it
// was killed between writing and linking or renaming one): those of lab
// id, or of every lab if id is "".
func removeStaleTemps(id string) error {
	ents, err := os.ReadDir(StateDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("list state files: %w", err)
	}
	var errs []error
	for _, e := range ents {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, ".")
		if !ok || !strings.HasSuffix(rest, ".tmp") {
			continue
		}
		f := strings.Split(strings.TrimSuffix(rest, ".tmp"), ".")
		if len(f) != 3 || ValidateID(f[0]) != nil || (id != "" && f[0] != id) {
			continue
		}
		pid, err := strconv.Atoi(f[1])
		if err != nil || pid <= 0 {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			continue // its writer may still be at work
		}
		if err := os.Remove(filepath.Join(StateDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// procStart returns a process's start time (clock ticks after boot), which
// with the pid identifies it even after the pid is reused.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return ParseStatStart(b)
}

// ParseStatStart returns the start time, field 22, of a /proc/PID/stat
// line. The command name, field 2, is whatever the process chose, spaces
// and parentheses included: fields are counted after the last ')'.
func ParseStatStart(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, errors.New("malformed stat: too few fields")
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed stat: start time: %w", err)
	}
	return v, nil
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

// Open returns a lab that commands may be run in and faults applied to
// (LabStatus.Usable): one `tcplab up` left running, or one a live
// `tcplab run` is running a case on. The error is Usable's one line.
func Open(id string) (*Lab, LabStatus, error) {
	st, err := Inspect(id)
	if err != nil {
		return nil, st, err
	}
	if err := st.Usable(); err != nil {
		return nil, st, err
	}
	l, err := New(id)
	if err != nil {
		return nil, st, err
	}
	for _, n := range l.Nodes() {
		if _, err := n.NS(); err != nil {
			// Removed since Inspect looked.
			for _, n := range l.Nodes() {
				n.release()
			}
			return nil, st, fmt.Errorf("lab %q is incomplete (%v); `tcplab down %s` removes it", id, err, id)
		}
	}
	return l, st, nil
}

// Removed is a lab Clean removed (or, with a corrupt state file, kept).
type Removed struct {
	ID string
	// BadState is why the lab's state file could not be read, if it
	// could not: the lab was removed with whatever it named.
	BadState error
}

// Clean removes every lab whose owner is gone: labs of dead `run`
// processes, half-made labs, namespaces without a state file, state files
// whose namespaces are all gone, and temporary state files of killed
// processes. Labs left by `tcplab up` stay unless all is set; a lab that a
// live process is still building or running stays in any case. So does a
// lab whose state file is corrupt, unless all is set: nothing says whose it
// is.
func Clean(all bool) (removed []string, err error) {
	rs, _, err := CleanLabs(all)
	for _, r := range rs {
		removed = append(removed, r.ID)
	}
	return removed, err
}

// CleanLabs is Clean, saying for each lab removed whether its state file
// was corrupt, and returning the labs with a corrupt state file it kept.
func CleanLabs(all bool) (removed, kept []Removed, err error) {
	ids, err := Labs()
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, id := range ids {
		st, err := Inspect(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st.Condition == LabCorrupt && !all {
			kept = append(kept, Removed{ID: id, BadState: st.StateErr})
			continue
		}
		if !st.Cleanable(all) {
			continue
		}
		l, _ := New(id)
		if err := l.Down(); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, Removed{ID: id, BadState: st.StateErr})
	}
	if err := removeStaleTemps(""); err != nil {
		errs = append(errs, err)
	}
	return removed, kept, errors.Join(errs...)
}

// closing guards lab creation against a concurrent Shutdown: claiming a
// lab, making a namespace, marking a lab ready and starting a process in it
// hold it for reading, Shutdown takes it for writing. Once Shutdown has it,
// nothing new is made, so what it removes stays removed.
var (
	closing   sync.RWMutex
	isClosing bool
)

// ErrShuttingDown is returned by Up once Shutdown has begun.
var ErrShuttingDown = errors.New("tcplab is shutting down")

// Shutdown stops new labs from being made and removes every lab this
// process claimed and has not removed yet, whether made for a run or by
// `tcplab up`, complete or half-built. It is what an interrupt runs; it is
// safe to call twice, and while other goroutines are building or removing
// labs.
func Shutdown() error {
	closing.Lock()
	isClosing = true
	closing.Unlock()
	ownedMu.Lock()
	ids := make([]string, 0, len(owned))
	for id := range owned {
		ids = append(ids, id)
	}
	ownedMu.Unlock()
	sort.Strings(ids)
	var errs []error
	for _, id := range ids {
		l, _ := New(id)
		if err := l.Down(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ShuttingDown reports whether Shutdown has begun.
func ShuttingDown() bool {
	closing.RLock()
	defer closing.RUnlock()
	return isClosing
}

// NodeExists reports whether the namespace of node role of lab id exists.
func NodeExists(id, role string) bool {
	_, err := os.Stat(filepath.Join(NetnsDir, NSName(id, role)))
	return err == nil
}
