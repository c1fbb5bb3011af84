package report

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/experiments"
)

// PcapName is the file a capture point of a case run is written to: the
// case, the run's lab id (also in the JSON), and the point.
func PcapName(r experiments.Result, point string) string {
	return fmt.Sprintf("%s-%s-%s.pcap", r.Case, r.Lab, point)
}

// WritePcaps writes one pcap file per capture point of the run into dir and
// returns their paths.
func WritePcaps(dir string, r experiments.Result) ([]string, error) {
	points := make([]string, 0, len(r.Captures))
	for p := range r.Captures {
		points = append(points, p)
	}
	sort.Strings(points)
	var paths []string
	for _, p := range points {
		path := filepath.Join(dir, PcapName(r, p))
		if err := capture.WritePcap(path, r.Captures[p]); err != nil {
			return paths, fmt.Errorf("write %s: %w", path, err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// PcapDir makes sure dir exists and can be written, before any case runs.
func PcapDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pcap directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".tcplab-write-test-*")
	if err != nil {
		return fmt.Errorf("pcap directory %s is not writable: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}
