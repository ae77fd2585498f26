package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

type truthLine struct {
	ID         string `json:"id"`
	Topic      string `json:"topic"`
	CustomerID string `json:"customer_id"`
	ResourceID string `json:"resource_id"`
	Created    string `json:"created"`
}

// WriteTruth writes the ground truth of sc: one JSON object per line for
// every unique event, in Created order, and nothing else:
//
//	{"id":"…","topic":"…","customer_id":"…","resource_id":"…","created":"2025-06-02T14:05:11.482Z"}
//
// Ids are lower case, as hookstream stores them. The lifecycle paths go to a
// separate file (see WritePaths; `hookstream sim --truth FILE` writes them to
// FILE.paths.json).
func WriteTruth(w io.Writer, sc *Scenario) error {
	bw := bufio.NewWriter(w)
	if err := NewTruthWriter(bw).Write(sc.Events); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("sim: write ground truth: %w", err)
	}
	return nil
}

// TruthWriter appends events to a truth file as they are generated, for runs
// without end. It makes one Write per line and does not buffer: give it a
// bufio.Writer and flush that at the end.
type TruthWriter struct{ enc *json.Encoder }

// NewTruthWriter returns a TruthWriter writing to w.
func NewTruthWriter(w io.Writer) *TruthWriter {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &TruthWriter{enc: enc}
}

// Write appends one line per event.
func (t *TruthWriter) Write(events []Event) error {
	for i := range events {
		ev := &events[i]
		line := truthLine{ID: ev.ID, Topic: ev.Topic, CustomerID: ev.CustomerID, ResourceID: ev.ResourceID, Created: ev.Created.Format(timeLayout)}
		if err := t.enc.Encode(&line); err != nil {
			return fmt.Errorf("sim: write ground truth: %w", err)
		}
	}
	return nil
}

// ReadTruth reads the event ids of a file written by WriteTruth or a
// TruthWriter, in file order. Blank lines
// are skipped; any other line that is not a truth line is an error naming it.
func ReadTruth(r io.Reader) (ids []string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var tl truthLine
		if err := json.Unmarshal(line, &tl); err != nil {
			return nil, fmt.Errorf("sim: ground truth line %d is not a JSON event line: %w", n, err)
		}
		if tl.ID == "" {
			return nil, fmt.Errorf("sim: ground truth line %d has no \"id\"", n)
		}
		ids = append(ids, tl.ID)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("sim: ground truth has a line over 1 MiB; is it a truth file? %w", err)
		}
		return nil, fmt.Errorf("sim: read ground truth: %w", err)
	}
	return ids, nil
}

// WritePaths writes lifecycle path counts (Scenario.Paths, Generator.Paths)
// as one indented JSON object:
//
//	{"lifecycles": N, "paths": {"verification:created>verified": N, …}}
func WritePaths(w io.Writer, paths map[string]int) error {
	total := 0
	for _, n := range paths {
		total += n
	}
	out := struct {
		Lifecycles int            `json:"lifecycles"`
		Paths      map[string]int `json:"paths"` // encoding/json sorts the keys
	}{total, paths}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // keep the ">" of the paths readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(&out); err != nil {
		return fmt.Errorf("sim: write lifecycle paths: %w", err)
	}
	return nil
}
