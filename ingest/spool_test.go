package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hookstream/hookstream/stream"
)

func entries(n, from int) []stream.Entry {
	out := make([]stream.Entry, n)
	for i := range out {
		id := fmt.Sprintf("e-%d", from+i)
		out[i] = stream.Entry{Partition: i % 7, ID: id, Fields: []string{"id", id, "body", `{"x":"` + id + `"}`, "empty", ""}}
	}
	return out
}

// TestSpoolPermissions: the spool holds webhook bodies, so its folder is
// its owner's only (0700) and its segments 0600, even when the folder or a
// segment existed before with wider permissions.
func TestSpoolPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	sp, err := openSpool(dir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Append(entries(3, 0)); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	if err := os.Chmod(segs[0], 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err = openSpool(dir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("spool folder mode %v, want 0700", st.Mode().Perm())
	}
	if st, _ := os.Stat(segs[0]); st.Mode().Perm() != 0o600 {
		t.Errorf("segment mode %v, want 0600", st.Mode().Perm())
	}
}

func TestSpoolRoundTrip(t *testing.T) {
	dir := t.TempDir()
	sp, err := openSpool(dir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	want := append(entries(10, 0), entries(5, 10)...)
	if err := sp.Append(want[:10]); err != nil {
		t.Fatal(err)
	}
	if err := sp.Append(want[10:]); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	if st, _ := os.Stat(segs[0]); st.Mode().Perm() != 0o600 {
		t.Fatalf("segment mode %v, want 0600", st.Mode().Perm())
	}
	sp.Close()

	// A restart finds the entries.
	sp, err = openSpool(dir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if sp.Depth() != 15 {
		t.Fatalf("depth after reopen %d, want 15", sp.Depth())
	}
	// A failing put keeps everything for the next drain.
	if _, err := sp.Drain(4, func([]stream.Entry) error { return errors.New("redis down") }); err == nil {
		t.Fatal("drain should report put's error")
	}
	if sp.Depth() != 15 {
		t.Fatalf("depth after failed drain %d", sp.Depth())
	}
	var got []stream.Entry
	n, err := sp.Drain(4, func(c []stream.Entry) error { got = append(got, c...); return nil })
	if err != nil || n != 15 || sp.Depth() != 0 {
		t.Fatalf("drain: n=%d err=%v depth=%d", n, err, sp.Depth())
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("drained entries differ:\n got %v\nwant %v", got, want)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "seg-*")); len(segs) != 0 {
		t.Fatalf("drained segments not removed: %v", segs)
	}
}

func TestSpoolTornTail(t *testing.T) {
	dir := t.TempDir()
	sp, err := openSpool(dir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Append(entries(3, 0)); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	// A crash mid-write leaves half a record at the end.
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	half := appendRecord(nil, &entries(1, 99)[0])
	f, _ := os.OpenFile(segs[0], os.O_APPEND|os.O_WRONLY, 0)
	f.Write(half[:len(half)/2])
	f.Close()

	sp, err = openSpool(dir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if sp.Depth() != 3 {
		t.Fatalf("depth %d, want the 3 whole records", sp.Depth())
	}
	// New writes go to a new segment, never after the torn tail.
	if err := sp.Append(entries(2, 3)); err != nil {
		t.Fatal(err)
	}
	var ids []string
	if _, err := sp.Drain(100, func(c []stream.Entry) error {
		for _, e := range c {
			ids = append(ids, e.ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids, []string{"e-0", "e-1", "e-2", "e-3", "e-4"}) {
		t.Fatalf("drained %v", ids)
	}
}

func TestDecodeEntryRejectsGarbage(t *testing.T) {
	rec := appendRecord(nil, &entries(1, 0)[0])
	payload := rec[8:]
	for i := range payload {
		if _, err := decodeEntry(payload[:i]); err == nil {
			t.Fatalf("truncated payload of %d bytes decoded", i)
		}
	}
}

// FuzzDecodeEntry feeds arbitrary bytes (a corrupted spool) to the decoder: it
// must reject or decode, never panic, and what it decodes must survive an
// encode/decode round trip unchanged.
func FuzzDecodeEntry(f *testing.F) {
	for _, e := range entries(3, 0) {
		f.Add(appendRecord(nil, &e)[8:])
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, payload []byte) {
		e, err := decodeEntry(payload)
		if err != nil {
			return
		}
		again, err := decodeEntry(appendRecord(nil, &e)[8:])
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("decoded %+v, but its re-encoding decodes to %+v (%v)", e, again, err)
		}
	})
}
