package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// The classic pcap format (as tcpdump and Wireshark read it), written and
// read by hand: the format is 24 bytes of header and 16 per frame, and
// linking a packet library for it would cost every tcplab process, agents
// included, milliseconds of start-up.

const pcapSnaplen = 262144

// maxFrame bounds a frame read from a file, which may be anything.
const maxFrame = 1 << 24

const (
	magicNanos  = 0xa1b23c4d
	magicMicros = 0xa1b2c3d4
	linkTypeEth = 1
)

// WritePcap writes frames as a nanosecond pcap file, LINKTYPE_ETHERNET.
func WritePcap(path string, pkts []Packet) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriter(f)
	if err := writePcap(bw, pkts); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writePcap(w io.Writer, pkts []Packet) error {
	snaplen := pcapSnaplen
	for _, p := range pkts {
		snaplen = max(snaplen, len(p.Data))
	}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], magicNanos)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], uint32(snaplen))
	binary.LittleEndian.PutUint32(h[20:], linkTypeEth)
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	for i, p := range pkts {
		var r [16]byte
		ns := p.Time.UnixNano()
		binary.LittleEndian.PutUint32(r[0:], uint32(ns/1e9))
		binary.LittleEndian.PutUint32(r[4:], uint32(ns%1e9))
		binary.LittleEndian.PutUint32(r[8:], uint32(len(p.Data)))
		binary.LittleEndian.PutUint32(r[12:], uint32(p.WireLen()))
		if _, err := w.Write(r[:]); err != nil {
			return fmt.Errorf("packet %d: %w", i, err)
		}
		if _, err := w.Write(p.Data); err != nil {
			return fmt.Errorf("packet %d: %w", i, err)
		}
	}
	return nil
}

// ReadPcap reads a pcap file of Ethernet frames, nanosecond or microsecond,
// in either byte order.
func ReadPcap(path string) ([]Packet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	magic := bo.Uint32(h[0:])
	if magic != magicNanos && magic != magicMicros {
		bo = binary.BigEndian
		magic = bo.Uint32(h[0:])
	}
	if magic != magicNanos && magic != magicMicros {
		return nil, fmt.Errorf("read %s: not a pcap file", path)
	}
	if lt := bo.Uint32(h[20:]); lt != linkTypeEth {
		return nil, fmt.Errorf("read %s: link type %d, want Ethernet", path, lt)
	}
	var pkts []Packet
	for {
		var rh [16]byte
		if _, err := io.ReadFull(r, rh[:]); errors.Is(err, io.EOF) {
			return pkts, nil
		} else if err != nil {
			return pkts, fmt.Errorf("read %s: packet %d: %w", path, len(pkts), err)
		}
		sub := int64(bo.Uint32(rh[4:]))
		if magic == magicMicros {
			sub *= 1000
		}
		n := bo.Uint32(rh[8:])
		if n > maxFrame {
			return pkts, fmt.Errorf("read %s: packet %d claims %d bytes", path, len(pkts), n)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			return pkts, fmt.Errorf("read %s: packet %d: %w", path, len(pkts), err)
		}
		pkts = append(pkts, Packet{Time: time.Unix(int64(bo.Uint32(rh[0:])), sub), Data: data, Length: int(bo.Uint32(rh[12:]))})
	}
}
