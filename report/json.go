package report

import (
	"encoding/json"
	"io"

	"github.com/tcplab/tcplab/experiments"
)

// Document is the --json output: one object on stdout.
type Document struct {
	Tool    string               `json:"tool"`
	Version string               `json:"version"`
	Kernel  string               `json:"kernel"`
	Results []experiments.Result `json:"results"`
	// Summary is present with --count greater than 1.
	Summary []Summary `json:"summary,omitempty"`
}

// JSON writes the document, indented.
func JSON(w io.Writer, d Document) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}
