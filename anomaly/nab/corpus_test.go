package nab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadCSV(t *testing.T) {
	s, err := ReadCSV(strings.NewReader("timestamp,value\n2014-04-10 07:15:00,54.2\n2014-04-10 07:20:00,1e3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Points) != 2 || s.Points[1].Value != 1000 || !s.Points[0].Time.Equal(time.Date(2014, 4, 10, 7, 15, 0, 0, time.UTC)) {
		t.Errorf("read %+v", s.Points)
	}
	if s.Text[1] != [2]string{"2014-04-10 07:20:00", "1e3"} {
		t.Errorf("text %q, want the row as written", s.Text[1])
	}
	bad := func(in, wantErr string) {
		t.Helper()
		_, err := ReadCSV(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("ReadCSV(%q): %v, want an error containing %q", in, err, wantErr)
		}
	}
	bad("", "empty file")
	bad("time,value\n", "header")
	bad("timestamp,value\n", "no rows")
	bad("timestamp,value\n2014-04-10T07:15:00Z,1\n", "line 2: timestamp")
	bad("timestamp,value\n2014-04-10 07:15:00,x\n", "line 2: value")
	bad("timestamp,value\n2014-04-10 07:15:00\n", "wrong number of fields")
}

func TestReadWindows(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w.json")
	os.WriteFile(p, []byte(`{"a/b.csv": [["2014-04-10 07:15:00.000000", "2014-04-11 07:15:00.000000"]], "a/c.csv": []}`), 0o600)
	w, err := ReadWindows(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(w["a/b.csv"]) != 1 || len(w["a/c.csv"]) != 0 || w["a/b.csv"][0].End.Day() != 11 {
		t.Errorf("read %+v", w)
	}
	os.WriteFile(p, []byte(`{"a/b.csv": [["2014-04-10 07:15:00.000000"]]}`), 0o600)
	if _, err := ReadWindows(p); err == nil {
		t.Error("a window with one timestamp was accepted")
	}
}

func TestReadCorpusRefusesUnlabelledFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "labels"), 0o755)
	os.MkdirAll(filepath.Join(dir, "data", "cat"), 0o755)
	os.WriteFile(filepath.Join(dir, "labels", "combined_windows.json"), []byte(`{"cat/a.csv": []}`), 0o600)
	os.WriteFile(filepath.Join(dir, "data", "cat", "a.csv"), []byte("timestamp,value\n2014-04-10 07:15:00,1\n"), 0o600)
	c, err := ReadCorpus(dir)
	if err != nil || len(c.Series) != 1 || c.Series[0].Name != "cat/a.csv" {
		t.Fatalf("ReadCorpus: %v, %+v", err, c)
	}
	os.WriteFile(filepath.Join(dir, "data", "cat", "b.csv"), []byte("timestamp,value\n2014-04-10 07:15:00,1\n"), 0o600)
	if _, err := ReadCorpus(dir); err == nil || !strings.Contains(err.Error(), "cat/b.csv has no entry") {
		t.Errorf("an unlabelled file: %v", err)
	}
}

func FuzzReadCSV(f *testing.F) {
	f.Add("timestamp,value\n2014-04-10 07:15:00,54.2\n")
	f.Add("timestamp,value\n2014-04-10 07:15:00.5,-1\n2014-04-10 07:15:00,NaN\n")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ReadCSV(strings.NewReader(in))
		if err == nil && (len(s.Points) == 0 || len(s.Points) != len(s.Text)) {
			t.Errorf("%d points, %d texts", len(s.Points), len(s.Text))
		}
	})
}
