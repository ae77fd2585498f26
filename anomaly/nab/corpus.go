package nab

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookstream/hookstream/anomaly"
)

// timeLayout reads NAB's timestamps: "2014-04-10 07:15:00" in the data files,
// "2014-04-10 07:15:00.000000" in the labels. NAB's timestamps carry no zone;
// they are read as UTC.
const timeLayout = "2006-01-02 15:04:05.999999999"

// Series is one NAB data file.
type Series struct {
	// Name is the file's path under data/, with forward slashes:
	// "realKnownCause/nyc_taxi.csv", the key of the labels file.
	Name   string
	Points []anomaly.Point
	// Text holds each row's timestamp and value as written, so a scored
	// copy of the file repeats them unchanged.
	Text [][2]string
}

// ReadCSV reads a series in NAB's format: a header "timestamp,value", then
// one row per point. Rows are kept in file order, as NAB feeds them to
// detectors: NAB's files are in time order except for a few repeated or
// out-of-order timestamps (machine_temperature_system_failure.csv goes back
// 55 minutes once), which are not refused.
func ReadCSV(r io.Reader) (Series, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = 2
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Series{}, errors.New("empty file; NAB's format is a header timestamp,value and one row per point")
		}
		return Series{}, fmt.Errorf("read the header: %w", err)
	}
	if strings.TrimPrefix(head[0], "\ufeff") != "timestamp" || head[1] != "value" {
		return Series{}, fmt.Errorf("header is %q, want \"timestamp,value\" (NAB's format)", strings.Join(head, ","))
	}
	var s Series
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Series{}, err
		}
		line, _ := cr.FieldPos(0)
		t, err := time.Parse(timeLayout, rec[0])
		if err != nil {
			return Series{}, fmt.Errorf("line %d: timestamp %q is not like 2014-04-10 07:15:00", line, rec[0])
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[1]), 64)
		if err != nil {
			return Series{}, fmt.Errorf("line %d: value %q is not a number", line, rec[1])
		}
		s.Points = append(s.Points, anomaly.Point{Time: t, Value: v})
		s.Text = append(s.Text, [2]string{rec[0], rec[1]})
	}
	if len(s.Points) == 0 {
		return Series{}, errors.New("no rows after the header")
	}
	return s, nil
}

// ReadSeries reads the data file at path; name is its key in the labels.
func ReadSeries(path, name string) (Series, error) {
	f, err := os.Open(path)
	if err != nil {
		return Series{}, err
	}
	defer f.Close()
	s, err := ReadCSV(f)
	if err != nil {
		return Series{}, fmt.Errorf("read %s: %w", path, err)
	}
	s.Name = name
	return s, nil
}

// Window is one labelled anomaly window, both ends included.
type Window struct {
	Start, End time.Time
}

// ReadWindows reads NAB's labels/combined_windows.json: for each
// "category/file.csv", its windows as [start, end] timestamp pairs.
func ReadWindows(path string) (map[string][]Window, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string][][]string
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("read %s: %w (want {\"category/file.csv\": [[start, end], ...]})", path, err)
	}
	out := make(map[string][]Window, len(raw))
	for name, ws := range raw {
		out[name] = make([]Window, 0, len(ws))
		for i, w := range ws {
			if len(w) != 2 {
				return nil, fmt.Errorf("read %s: %s window %d has %d timestamps, want [start, end]", path, name, i, len(w))
			}
			var win Window
			for j, p := range []*time.Time{&win.Start, &win.End} {
				if *p, err = time.Parse(timeLayout, w[j]); err != nil {
					return nil, fmt.Errorf("read %s: %s window %d: %q is not like 2014-04-10 07:15:00.000000", path, name, i, w[j])
				}
			}
			out[name] = append(out[name], win)
		}
	}
	return out, nil
}

// Corpus is a NAB-layout folder read into memory: every data file that has
// labels, with its windows.
type Corpus struct {
	Series  []Series // sorted by name
	Windows map[string][]Window
}

// ReadCorpus reads dir/labels/combined_windows.json and every
// dir/data/<category>/<file>.csv. A data file without labels cannot be
// scored and is an error; labels whose data file is absent are ignored, so a
// folder may hold part of NAB.
func ReadCorpus(dir string) (Corpus, error) {
	labels := filepath.Join(dir, "labels", "combined_windows.json")
	windows, err := ReadWindows(labels)
	if err != nil {
		return Corpus{}, fmt.Errorf("read NAB labels: %w; --nab names a folder with data/ and labels/combined_windows.json", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "data", "*", "*.csv"))
	if err != nil {
		return Corpus{}, err
	}
	if len(files) == 0 {
		return Corpus{}, fmt.Errorf("no data/<category>/<file>.csv under %s", dir)
	}
	slices.Sort(files)
	c := Corpus{Windows: map[string][]Window{}}
	for _, f := range files {
		name := path.Join(filepath.Base(filepath.Dir(f)), filepath.Base(f))
		ws, ok := windows[name]
		if !ok {
			return Corpus{}, fmt.Errorf("%s has no entry in %s; NAB scores only labelled files", name, labels)
		}
		s, err := ReadSeries(f, name)
		if err != nil {
			return Corpus{}, err
		}
		c.Series = append(c.Series, s)
		c.Windows[name] = ws
	}
	return c, nil
}

// Category is the folder a NAB file name starts with.
func Category(name string) string {
	cat, _, _ := strings.Cut(name, "/")
	return cat
}
