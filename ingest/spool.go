package ingest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/stream"
)

// spoolDepthAll is the depth of every spool of this process (one, outside
// tests and benchmarks), for the gauge.
var spoolDepthAll atomic.Int64

var (
	_                = metrics.NewGauge(`hookstream_spool_depth`, func() float64 { return float64(spoolDepthAll.Load()) })
	spoolWrites      = metrics.NewCounter(`hookstream_spool_written_total`)
	spoolDrainStored = metrics.NewCounter(`hookstream_spool_drained_total{result="stored"}`)
	spoolDrainDup    = metrics.NewCounter(`hookstream_spool_drained_total{result="duplicate"}`)
	spoolTornBytes   = metrics.NewCounter(`hookstream_spool_torn_bytes_total`)
)

// spool is an append-only local log of entries that could not reach Redis.
// It is a sequence of segment files seg-<seq>.spool (mode 0600). Each record
// is [u32 length][u32 CRC-32C][payload]; a batch is written and fsync'd before
// any request in it is answered. Draining seals the active segment, replays the
// sealed ones in order and deletes each once all its entries are in Redis.
// A torn record (crash mid-write) can only be the tail of a segment, and was
// never acknowledged, so reading stops there.
type spool struct {
	dir   string
	log   *slog.Logger
	mu    sync.Mutex // guards f, seq
	f     *os.File   // active segment; nil until the next write
	seq   uint64     // sequence number of the active (or next) segment
	depth atomic.Int64
	buf   []byte
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

const segSuffix = ".spool"

func openSpool(dir string, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create spool directory %q: %w; check HOOKSTREAM_SPOOL_DIR and its permissions", dir, err)
	}
	// The spool holds webhook bodies (customers' names and emails): a
	// folder that already existed with wider permissions is narrowed to
	// its owner, as are segments an earlier version left readable.
	if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("spool directory %q is %v, readable by others, and cannot be narrowed to 0700: %w", dir, st.Mode().Perm(), err)
		}
		log.Warn("narrowed the spool directory's permissions to 0700", "spool_dir", dir, "was", st.Mode().Perm().String())
	}
	s := &spool{dir: dir, log: log}
	segs, err := s.segments()
	if err != nil {
		return nil, err
	}
	for _, seq := range segs {
		if err := os.Chmod(s.segPath(seq), 0o600); err != nil {
			return nil, fmt.Errorf("cannot narrow spool segment %s to 0600: %w", s.segPath(seq), err)
		}
		n, _, err := s.readSegment(seq, 1024, func([]stream.Entry) error { return nil })
		if err != nil {
			return nil, err
		}
		s.addDepth(int64(n))
		s.seq = seq + 1
	}
	if s.depth.Load() > 0 {
		log.Warn("spool holds entries from an earlier run; they will be replayed when Redis is reachable", "spool_dir", dir, "entries", s.depth.Load())
	}
	return s, nil
}

func (s *spool) segPath(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("seg-%020d%s", seq, segSuffix))
}

// segments lists the sequence numbers of existing segments, oldest first.
func (s *spool) segments() ([]uint64, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list spool directory %q: %w", s.dir, err)
	}
	var out []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "seg-") || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "seg-"), segSuffix), 10, 64)
		if err != nil {
			continue
		}
		out = append(out, seq)
	}
	slices.Sort(out)
	return out, nil
}

// Append writes entries durably: it returns only after fsync.
func (s *spool) Append(entries []stream.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		f, err := os.OpenFile(s.segPath(s.seq), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("cannot open spool segment in %q: %w; check free space and permissions", s.dir, err)
		}
		if err := syncDir(s.dir); err != nil {
			f.Close()
			return err
		}
		s.f = f
	}
	s.buf = s.buf[:0]
	for i := range entries {
		s.buf = appendRecord(s.buf, &entries[i])
	}
	if _, err := s.f.Write(s.buf); err != nil {
		s.sealLocked() // a partial write may leave a torn tail: never append after it
		return fmt.Errorf("cannot write spool segment in %q: %w", s.dir, err)
	}
	if err := s.f.Sync(); err != nil {
		s.sealLocked()
		return fmt.Errorf("cannot fsync spool segment in %q: %w", s.dir, err)
	}
	s.addDepth(int64(len(entries)))
	spoolWrites.Add(len(entries))
	return nil
}

func (s *spool) sealLocked() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
		s.seq++
	}
}

func (s *spool) addDepth(n int64) {
	s.depth.Add(n)
	spoolDepthAll.Add(n)
}

// Depth is the number of entries waiting in the spool.
func (s *spool) Depth() int64 { return s.depth.Load() }

// Writable reports whether the spool can take a webhook now: a new file in
// its directory and a block of data in it. An empty file alone would do on
// a full disk (it needs an inode, not a block), and readiness would then
// say ready while every webhook is answered 503.
func (s *spool) Writable() error {
	f, err := os.CreateTemp(s.dir, ".probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_, werr := f.Write(make([]byte, 4096))
	if werr == nil {
		werr = f.Sync()
	}
	f.Close()
	if err := os.Remove(name); err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("spool directory %q cannot take a webhook: %w; check free space", s.dir, werr)
	}
	return nil
}

// Drain replays every sealed segment through put, chunk by chunk, and deletes
// a segment once put accepted all of it. It stops at the first error; what was
// not deleted is replayed next time (put must be idempotent: it is the dedup
// step). Entries appended while draining go to a new segment.
func (s *spool) Drain(chunk int, put func([]stream.Entry) error) (int, error) {
	s.mu.Lock()
	s.sealLocked()
	limit := s.seq // segments below limit are sealed
	s.mu.Unlock()

	segs, err := s.segments()
	if err != nil {
		return 0, err
	}
	total := 0
	for _, seq := range segs {
		if seq >= limit {
			break
		}
		n, torn, err := s.readSegment(seq, chunk, put)
		total += n
		if err != nil {
			return total, err
		}
		if torn > 0 {
			spoolTornBytes.Add(torn)
			s.log.Warn("spool segment ended in a torn record (a crash mid-write); the torn bytes were never acknowledged and are dropped",
				"segment", s.segPath(seq), "torn_bytes", torn)
		}
		if err := os.Remove(s.segPath(seq)); err != nil {
			return total, fmt.Errorf("cannot remove drained spool segment: %w", err)
		}
		if err := syncDir(s.dir); err != nil {
			return total, err
		}
		s.addDepth(-int64(n))
	}
	return total, nil
}

// readSegment decodes a segment and hands its entries to put in chunks.
// It returns the number of good records and the number of torn tail bytes.
func (s *spool) readSegment(seq uint64, chunk int, put func([]stream.Entry) error) (n int, torn int, err error) {
	f, err := os.Open(s.segPath(seq))
	if err != nil {
		return 0, 0, fmt.Errorf("cannot open spool segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	r := bufio.NewReaderSize(f, 1<<16)
	var batch []stream.Entry
	var hdr [8]byte
	var off int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := put(batch); err != nil {
			return err
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			torn = int(st.Size() - off)
			break
		}
		size := binary.LittleEndian.Uint32(hdr[:4])
		sum := binary.LittleEndian.Uint32(hdr[4:])
		if int64(size) > st.Size()-off-8 {
			torn = int(st.Size() - off)
			break
		}
		payload := make([]byte, size)
		if _, err := io.ReadFull(r, payload); err != nil || crc32.Checksum(payload, crcTable) != sum {
			torn = int(st.Size() - off)
			break
		}
		e, err := decodeEntry(payload)
		if err != nil {
			torn = int(st.Size() - off)
			break
		}
		off += 8 + int64(size)
		batch = append(batch, e)
		if len(batch) >= chunk {
			if err := flush(); err != nil {
				return n, 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return n, 0, err
	}
	return n, torn, nil
}

// Close closes the active segment. What it holds stays on disk for the next
// run, but no longer counts in this process's gauge.
func (s *spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	spoolDepthAll.Add(-s.depth.Load())
	if s.f != nil {
		err := s.f.Close()
		s.f = nil
		return err
	}
	return nil
}

func appendRecord(dst []byte, e *stream.Entry) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, uint64(e.Partition))
	dst = appendString(dst, e.ID)
	dst = binary.AppendUvarint(dst, uint64(len(e.Fields)))
	for _, f := range e.Fields {
		dst = appendString(dst, f)
	}
	payload := dst[start+8:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, crcTable))
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

var errCorrupt = errors.New("corrupt spool record")

func decodeEntry(p []byte) (stream.Entry, error) {
	var e stream.Entry
	part, n := binary.Uvarint(p)
	if n <= 0 {
		return e, errCorrupt
	}
	p = p[n:]
	e.Partition = int(part)
	var ok bool
	if e.ID, p, ok = readString(p); !ok {
		return e, errCorrupt
	}
	count, n := binary.Uvarint(p)
	if n <= 0 || count > uint64(len(p)) {
		return e, errCorrupt
	}
	p = p[n:]
	e.Fields = make([]string, count)
	for i := range e.Fields {
		if e.Fields[i], p, ok = readString(p); !ok {
			return e, errCorrupt
		}
	}
	if len(p) != 0 {
		return e, errCorrupt
	}
	return e, nil
}

func readString(p []byte) (string, []byte, bool) {
	l, n := binary.Uvarint(p)
	if n <= 0 || l > uint64(len(p)-n) {
		return "", nil, false
	}
	return string(p[n : n+int(l)]), p[n+int(l):], true
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot open spool directory %q to fsync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot fsync spool directory %q: %w", dir, err)
	}
	return nil
}
