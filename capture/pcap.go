package capture

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// pcapSnaplen is the snapshot length announced in the file header. Readers
// (pcapgo included) reject records longer than it, so it is raised when a
// frame is longer still.
const pcapSnaplen = 262144

// WritePcap writes pkts to path as a classic pcap file with Ethernet link
// type and nanosecond timestamps, which tcpdump and Wireshark read.
//
// Classic pcap has no place for Point and Outgoing; they are not stored.
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
	pw := pcapgo.NewWriterNanos(w)
	if err := pw.WriteFileHeader(uint32(snaplen), layers.LinkTypeEthernet); err != nil {
		return err
	}
	for i, p := range pkts {
		ci := gopacket.CaptureInfo{
			Timestamp:     p.Time,
			CaptureLength: len(p.Data),
			Length:        p.WireLen(),
		}
		if err := pw.WritePacket(ci, p.Data); err != nil {
			return fmt.Errorf("packet %d: %w", i, err)
		}
	}
	return nil
}

// ReadPcap reads a classic pcap file with Ethernet link type (microsecond or
// nanosecond timestamps). Point is left empty and Outgoing false, since the
// format does not record them.
func ReadPcap(path string) ([]Packet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if lt := r.LinkType(); lt != layers.LinkTypeEthernet {
		return nil, fmt.Errorf("read %s: link type %v, want Ethernet", path, lt)
	}
	var pkts []Packet
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return pkts, nil
		}
		if err != nil {
			return pkts, fmt.Errorf("read %s: packet %d: %w", path, len(pkts), err)
		}
		pkts = append(pkts, Packet{Time: ci.Timestamp, Data: data, Length: ci.Length})
	}
}
