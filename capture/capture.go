// Package capture records the frames seen on a network interface inside a
// network namespace, decodes them into short summaries and writes them as
// classic pcap files. It is also the one home of the packet vocabulary the
// rest imports: ICMP and ICMPv6 type and code names (icmp.go) and TCP flags
// as a typed value (TCPFlags).
//
// Capturing uses a plain AF_PACKET socket (no libpcap, no cgo, no external
// tools): the socket is created inside the namespace and bound to a single
// interface; a background goroutine reads frames together with their kernel
// receive timestamps until Stop, which drains whatever is still queued.
//
// Frames are recorded as the kernel hands them to packet sockets, as tcpdump
// would show them: with TSO/GSO enabled on veth, one TCP frame (in either
// direction, as veth passes such frames on unsplit) can carry many MSS-sized
// segments, up to 64 KiB. Turn the offloads off to see wire-sized segments.
package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Enter runs fn on an OS thread that is inside the wanted network namespace
// (typically: lock the thread, setns, run fn, switch back). Sockets created
// inside fn stay in that namespace after fn returns.
type Enter func(fn func() error) error

// Packet is one captured frame.
type Packet struct {
	Point string // capture point label, e.g. "router-client"
	// Time is the kernel's timestamp for the frame crossing the interface
	// (wall clock), not the time it was read. One exception: if nothing on
	// the host had timestamping enabled before, the kernel turns it on
	// asynchronously shortly after the first Start, and frames in between
	// are stamped when read (which the reader does immediately).
	Time     time.Time
	Outgoing bool   // sent by this interface (PACKET_OUTGOING) rather than received
	Data     []byte // the frame as seen on the interface, starting with the Ethernet header
	// Length is the frame's full length. It is larger than len(Data) only if
	// the frame did not fit the read buffer; 0 means len(Data).
	Length int
}

// WireLen returns the full length of the frame, even if Data was truncated.
func (p Packet) WireLen() int {
	if p.Length > len(p.Data) {
		return p.Length
	}
	return len(p.Data)
}

const (
	// rcvBufSize is the requested socket receive buffer; the kernel doubles it
	// for bookkeeping. Large enough to ride out bursts while the reader is
	// descheduled.
	rcvBufSize = 4 << 20
	// readBufSize bounds a single frame. Frames built by GSO/GRO on veth can
	// be far larger than the MTU (64 KiB by default, more with BIG TCP).
	readBufSize = 256 << 10
	// maxSoftErrors bounds consecutive socket errors tolerated while draining
	// (each recvmsg reports and clears one pending error).
	maxSoftErrors = 16
)

// Capture is a running capture on one interface. Create it with Start and
// finish it with Stop.
type Capture struct {
	point  string
	ifname string
	fd     int // AF_PACKET socket; owned by the reader goroutine
	wake   int // eventfd used by Stop to wake the reader

	mu   sync.Mutex
	pkts []Packet

	drops   atomic.Uint32
	ifDown  atomic.Bool
	done    chan struct{}
	readErr error // set by the reader before done is closed

	stopOnce sync.Once
	result   []Packet
	stopErr  error
}

// Start opens an AF_PACKET socket for all protocols bound to interface ifname
// in the namespace reached by enter, and reads from it in the background.
// It returns once the socket is bound, so every frame that crosses the
// interface after Start returns is captured. A nil enter creates the socket
// on the calling thread, i.e. in whatever namespace that thread is in.
//
// The interface may be down; frames are captured once it is up.
func Start(enter Enter, ifname, point string) (*Capture, error) {
	if enter == nil {
		enter = func(fn func() error) error { return fn() }
	}
	fd := -1
	called := false
	err := enter(func() error {
		called = true
		var err error
		fd, err = openSocket(ifname)
		return err
	})
	if err == nil && !called {
		err = errors.New("enter did not run the function")
	}
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("capture %s on %s: %w", point, ifname, err)
	}

	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("capture %s on %s: eventfd: %w", point, ifname, err)
	}
	c := &Capture{
		point:  point,
		ifname: ifname,
		fd:     fd,
		wake:   wake,
		done:   make(chan struct{}),
	}
	go c.run()
	return c, nil
}

// openSocket must run inside the target namespace: both the socket and the
// interface name lookup belong to the namespace of the calling thread.
func openSocket(ifname string) (fd int, err error) {
	// Protocol 0 means the socket receives nothing until bind installs the
	// ETH_P_ALL hook for this one interface; created with ETH_P_ALL it would
	// queue frames from every interface in the namespace until bound.
	fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, fmt.Errorf("socket(AF_PACKET): %w", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
			fd = -1
		}
	}()

	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return -1, fmt.Errorf("interface %q: %w", ifname, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return -1, fmt.Errorf("interface %q: %w", ifname, err)
	}
	ifindex := int(ifr.Uint32())

	// SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBufSize); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBufSize); err != nil {
			return -1, fmt.Errorf("SO_RCVBUF: %w", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return -1, fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	// Auxdata carries VLAN tags that offloading moved out of the frame; they
	// are put back so the frame looks as it does on the wire.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		return -1, fmt.Errorf("PACKET_AUXDATA: %w", err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return -1, fmt.Errorf("bind to %q: %w", ifname, err)
	}
	return fd, nil
}

// run is the reader goroutine. It sleeps in poll(2) on the packet socket and
// the wake eventfd, so it neither spins nor sleeps for fixed intervals.
func (c *Capture) run() {
	buf := make([]byte, readBufSize)
	oob := make([]byte, 256)
	fds := []unix.PollFd{
		{Fd: int32(c.fd), Events: unix.POLLIN},
		{Fd: int32(c.wake), Events: unix.POLLIN},
	}
	var err error
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err = unix.Poll(fds, -1); err == unix.EINTR {
			continue
		} else if err != nil {
			err = fmt.Errorf("poll: %w", err)
			break
		}
		if fds[0].Revents&unix.POLLNVAL != 0 {
			err = errors.New("poll: packet socket is not open")
			break
		}
		if fds[0].Revents != 0 {
			if err = c.drain(buf, oob); err != nil {
				break
			}
		}
		if fds[1].Revents != 0 {
			break
		}
	}
	// Stop was called (or reading failed): everything that reached the
	// socket so far is still in its queue, so read it before closing.
	if derr := c.drain(buf, oob); err == nil {
		err = derr
	}
	c.readErr = err
	close(c.done)
	// Closing waits for an RCU grace period (the kernel unhooks the socket
	// from the device), typically 10-20 ms; Stop need not wait for that.
	// Frames that arrive meanwhile are discarded with the socket.
	unix.Close(c.fd)
}

// drain reads frames until the socket queue is empty.
func (c *Capture) drain(buf, oob []byte) error {
	softErrors := 0
	defer c.readStats()
	for {
		n, oobn, _, from, err := unix.Recvmsg(c.fd, buf, oob, unix.MSG_TRUNC|unix.MSG_DONTWAIT)
		switch {
		case err == unix.EAGAIN:
			return nil
		case err == unix.EINTR:
			continue
		case err == unix.ENETDOWN || err == unix.ENODEV || err == unix.ENXIO:
			// The interface went down or away. The kernel reports this once
			// (the pending socket error is cleared by reading it); frames
			// queued before are still readable.
			c.ifDown.Store(true)
			if softErrors++; softErrors > maxSoftErrors {
				return fmt.Errorf("recvmsg: %w", err)
			}
			continue
		case err != nil:
			return fmt.Errorf("recvmsg: %w", err)
		}
		softErrors = 0
		c.add(buf, n, oob[:oobn], from)
	}
}

func (c *Capture) add(buf []byte, n int, oob []byte, from unix.Sockaddr) {
	p := Packet{Point: c.point, Length: n}
	if ll, ok := from.(*unix.SockaddrLinklayer); ok {
		p.Outgoing = ll.Pkttype == unix.PACKET_OUTGOING
	}
	got := min(n, len(buf))

	var haveTime bool
	var aux *unix.TpacketAuxdata
	if msgs, err := unix.ParseSocketControlMessage(oob); err == nil {
		for _, m := range msgs {
			switch {
			case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS:
				var ts unix.Timespec
				if len(m.Data) >= int(unsafe.Sizeof(ts)) {
					copy(unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts)), m.Data)
					p.Time = time.Unix(ts.Unix())
					haveTime = true
				}
			case m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA:
				var a unix.TpacketAuxdata
				if len(m.Data) >= int(unsafe.Sizeof(a)) {
					copy(unsafe.Slice((*byte)(unsafe.Pointer(&a)), unsafe.Sizeof(a)), m.Data)
					aux = &a
				}
			}
		}
	}
	if !haveTime {
		// Not expected with SO_TIMESTAMPNS; the read time is the best left.
		p.Time = time.Now()
	}

	if aux != nil && aux.Status&unix.TP_STATUS_VLAN_VALID != 0 && got >= 12 {
		tpid := uint16(0x8100)
		if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && aux.Vlan_tpid != 0 {
			tpid = aux.Vlan_tpid
		}
		p.Data = make([]byte, got+4)
		copy(p.Data, buf[:12])
		binary.BigEndian.PutUint16(p.Data[12:], tpid)
		binary.BigEndian.PutUint16(p.Data[14:], aux.Vlan_tci)
		copy(p.Data[16:], buf[12:got])
		p.Length += 4
	} else {
		p.Data = append([]byte(nil), buf[:got]...)
	}

	c.mu.Lock()
	c.pkts = append(c.pkts, p)
	c.mu.Unlock()
}

// readStats accumulates the kernel's drop counter; reading it resets it.
func (c *Capture) readStats() {
	st, err := unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err == nil && st.Drops > 0 {
		c.drops.Add(st.Drops)
	}
}

// Stop stops capturing and returns every frame received up to now, in the
// order the kernel queued them. Frames that reached the socket before Stop
// was called are all returned. Stop is idempotent: later calls return the
// same frames and error. If the interface was deleted meanwhile, Stop
// returns what was captured until then and no error.
func (c *Capture) Stop() ([]Packet, error) {
	c.stopOnce.Do(func() {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		for {
			// The counter cannot overflow with a single write, so only EINTR
			// needs a retry.
			if _, err := unix.Write(c.wake, one[:]); err != unix.EINTR {
				break
			}
		}
		<-c.done
		unix.Close(c.wake)
		c.result = c.pkts
		if c.readErr != nil {
			c.stopErr = fmt.Errorf("capture %s on %s: %w", c.point, c.ifname, c.readErr)
		}
	})
	return c.result, c.stopErr
}

// Snapshot returns a copy of the frames read so far, without stopping.
// Frames still waiting in the socket queue are not included.
func (c *Capture) Snapshot() []Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Packet(nil), c.pkts...)
}

// Drops returns how many frames the kernel discarded because the socket's
// receive queue was full. Zero after Stop means the capture is complete.
func (c *Capture) Drops() uint32 { return c.drops.Load() }

// InterfaceDown reports whether the interface was down, or went down or
// away, at some point during the capture.
func (c *Capture) InterfaceDown() bool { return c.ifDown.Load() }

// Point returns the capture point label given to Start.
func (c *Capture) Point() string { return c.point }

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
