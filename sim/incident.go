package sim

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strings"
	"time"
)

// Incidents: trouble injected into otherwise normal traffic, so that the
// anomaly detectors (and people) can be shown to notice it. Each runs over
// a window of event time, [Start+Offset, Start+Offset+Duration), and its
// effects are decided from ids and times only (hashes, never the random
// streams), so a scenario without incidents is byte for byte what it was.

// Incident kinds.
const (
	// FailureSpike: most bank transfers and transfers created in the window
	// fail instead of completing.
	FailureSpike = "failure-spike"
	// VolumeDrop: nothing happens in the window (as in an outage of the
	// platform the customers use): no customer starts, and every step that
	// would have happened in it happens just after it instead.
	VolumeDrop = "volume-drop"
	// LagSurge: webhooks of events created in the window are delivered late,
	// up to Duration (at most 10 minutes) after their created time and at
	// least half of that (Event.Delay): of a surge of 10 minutes or more,
	// nothing created in it arrives in its first 5 minutes.
	LagSurge = "lag-surge"
	// VerificationStall: customer verification stops progressing: every
	// verification step but "created" that would have happened in the
	// window happens just after it instead, within a tenth of its length
	// (so a stall much shorter than an hour hardly changes hourly counts).
	VerificationStall = "verification-stall"
)

// IncidentKinds lists the kinds.
var IncidentKinds = []string{FailureSpike, VolumeDrop, LagSurge, VerificationStall}

// Incident is one injected incident.
type Incident struct {
	Kind     string
	Offset   time.Duration // from Config.Start
	Duration time.Duration
}

// ParseIncident reads KIND@OFFSET/DURATION, for example
// failure-spike@2h/30m: a failure spike from two hours after the start,
// for 30 minutes.
func ParseIncident(s string) (Incident, error) {
	kind, rest, ok := strings.Cut(s, "@")
	off, dur, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return Incident{}, fmt.Errorf("incident %q: want KIND@OFFSET/DURATION, for example failure-spike@2h/30m", s)
	}
	if !slices.Contains(IncidentKinds, kind) {
		return Incident{}, fmt.Errorf("incident %q: kind %q is not one of %s", s, kind, strings.Join(IncidentKinds, ", "))
	}
	in := Incident{Kind: kind}
	var err error
	if in.Offset, err = time.ParseDuration(off); err != nil || in.Offset < 0 {
		return Incident{}, fmt.Errorf("incident %q: offset %q is not a duration from the start such as 2h", s, off)
	}
	if in.Duration, err = time.ParseDuration(dur); err != nil || in.Duration <= 0 {
		return Incident{}, fmt.Errorf("incident %q: duration %q is not a positive duration such as 30m", s, dur)
	}
	return in, nil
}

func (in Incident) String() string {
	return fmt.Sprintf("%s@%s/%s", in.Kind, in.Offset, in.Duration)
}

// window is an incident's span of event time.
type window struct {
	kind     string
	from, to time.Time
}

func (w window) holds(t time.Time) bool { return !t.Before(w.from) && t.Before(w.to) }

func (c Config) windows() []window {
	out := make([]window, len(c.Incidents))
	for i, in := range c.Incidents {
		from := c.Start.Add(in.Offset)
		out[i] = window{kind: in.Kind, from: from, to: from.Add(in.Duration)}
	}
	return out
}

// during returns the incident of kind whose window holds t, if any.
func (g *Generator) during(kind string, t time.Time) (window, bool) {
	for _, w := range g.windows {
		if w.kind == kind && w.holds(t) {
			return w, true
		}
	}
	return window{}, false
}

// unit is a number in [0, 1) decided by s alone.
func unit(s string) float64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return float64(h.Sum64()>>11) / (1 << 53)
}

// postpone moves a step that falls in a window of kind to just after it,
// keeping the order of the steps postponed (a tenth of their offset into
// the window).
func (g *Generator) postpone(kind string, at time.Time) time.Time {
	if w, ok := g.during(kind, at); ok {
		return w.to.Add(at.Sub(w.from) / 10).Truncate(time.Millisecond)
	}
	return at
}

// IncidentRecord is when an incident ran, in the ground truth.
type IncidentRecord struct {
	Kind  string    `json:"kind"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// IncidentRecords are cfg's incidents with their times.
func IncidentRecords(cfg Config) []IncidentRecord {
	cfg = cfg.withDefaults()
	out := []IncidentRecord{}
	for _, w := range cfg.windows() {
		out = append(out, IncidentRecord{Kind: w.kind, Start: w.from, End: w.to})
	}
	return out
}

// WriteIncidents writes the incidents of cfg as a JSON array (`hookstream
// sim --truth FILE` writes them to FILE.incidents.json).
func WriteIncidents(w io.Writer, cfg Config) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(IncidentRecords(cfg)); err != nil {
		return fmt.Errorf("sim: write incidents: %w", err)
	}
	return nil
}
