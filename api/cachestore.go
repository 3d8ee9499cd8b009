package api

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
	"strconv"
	"sync/atomic"
	"time"
)

// A cache with a Store path keeps a journal: every mutation (set, update,
// inc/dec, delete, clear) is appended to the file as one record with one
// write, and a new Cache on the same path replays it. A process crash
// loses nothing that was written (the page cache outlives the process),
// so no fsync is made per record; snapshots are fsynced. Reads never touch
// the journal. Evictions and expiries are not recorded: replay applies
// the same limits and drops what has expired by then.
//
// File layout: the 8-byte journalMagic, then records of
//
//	body length  uint32 little-endian
//	CRC-32C      uint32 little-endian, of the body
//	body         op byte, then for put: expiry int64 (Unix nanoseconds,
//	             0 for never), key length uint32, key, value; for delete:
//	             key; for clear: nothing
//
// A record cut short (a crash mid-write) or failing its checksum ends the
// replay there: what precedes it is kept, the rest is dropped with a log
// line, and the journal is rewritten without it.
//
// Several processes may hold the same journal for a while (a graceful
// restart starts the new process before the old one stops): each holds a
// shared flock, appends with O_APPEND, and only a process that can take
// the lock exclusively (it is alone) repairs or compacts the file, by
// writing a snapshot to a new file and renaming it over the old one.

// ErrJournal marks a cache journal that cannot be used (not a journal,
// unreadable); damage inside a journal is logged and dropped instead.
var ErrJournal = errors.New("api: bad cache journal")

const journalMagic = "SHCJRNL1"

const (
	opPut    byte = 1
	opDelete byte = 2
	opClear  byte = 3
)

const (
	recordHeader = 8                // length + checksum
	putFixed     = 1 + 8 + 4        // op, expiry, key length
	compactMin   = 1 << 20          // journals smaller than this are never compacted
	compactRatio = 4                // compact when the journal is this many times the live data
	openAttempts = 100              // bound on reopening a journal renamed under us
	replayBuffer = 256 << 10        // read buffer of a replay
	snapshotBuf  = 256 << 10        // write buffer of a snapshot
	crcTableKind = crc32.Castagnoli // hardware-accelerated on amd64 and arm64
)

var crcTable = crc32.MakeTable(crcTableKind)

// journal is a cache's open journal file; the cache's mutex guards it.
type journal struct {
	path        string
	f           *os.File
	buf         []byte // the record being written, reused
	size        int64  // bytes in the file as this process knows it
	nextCompact int64  // consider compacting once size passes this
	failed      bool   // a write failed: the file may end in a partial record
	log         *slog.Logger
	cache       string
}

// tmpSeq names snapshot files uniquely within this process.
var tmpSeq atomic.Int64

// openJournal opens (creating it 0600) and locks the journal at path. It
// returns alone when this process holds the lock exclusively, in which
// case the caller downgrades it once it has replayed (and repaired).
func openJournal(path string) (f *os.File, alone bool, err error) {
	for range openAttempts {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %v", ErrJournal, err)
		}
		alone = tryLockExclusive(f)
		if !alone {
			// Blocks while a compaction holds the file exclusively.
			if err := lockShared(f); err != nil {
				f.Close()
				return nil, false, fmt.Errorf("%w: locking %s: %v", ErrJournal, path, err)
			}
		}
		// A compaction may have renamed a new file over the path while we
		// waited: then this descriptor is an orphan.
		if same, err := sameFile(f, path); err != nil || same {
			if err != nil {
				f.Close()
				return nil, false, fmt.Errorf("%w: %v", ErrJournal, err)
			}
			return f, alone, nil
		}
		f.Close()
	}
	return nil, false, fmt.Errorf("%w: %s keeps being replaced", ErrJournal, path)
}

func sameFile(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}

// attachJournal opens the journal at c.cfg.Store and replays it into c,
// which nobody else uses yet.
func (c *Cache) attachJournal() error {
	f, alone, err := openJournal(c.cfg.Store)
	if err != nil {
		return err
	}
	log := c.cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	j := &journal{path: c.cfg.Store, f: f, log: log, cache: c.cfg.Name}
	damaged, err := c.replay(j)
	if err != nil {
		f.Close()
		return err
	}
	c.journal = j
	j.nextCompact = c.compactThreshold()
	if alone && (damaged || j.size > j.nextCompact) {
		// compact swaps in a fresh, shared-locked file.
		if err := c.compact(true); err != nil {
			return err
		}
		return nil
	}
	if alone {
		if err := lockShared(f); err != nil {
			return fmt.Errorf("%w: locking %s: %v", ErrJournal, j.path, err)
		}
	}
	return nil
}

// replay applies the journal's records to c. damaged reports a record cut
// short or failing its checksum, after which nothing is read.
func (c *Cache) replay(j *journal) (damaged bool, err error) {
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		return false, fmt.Errorf("%w: %v", ErrJournal, err)
	}
	r := bufio.NewReaderSize(j.f, replayBuffer)
	magic := make([]byte, len(journalMagic))
	n, err := io.ReadFull(r, magic)
	switch {
	case n == 0 && err == io.EOF:
		// New file: write the magic (under the exclusive lock, or after
		// the process that created it did, so it is there at most once).
		if _, err := j.f.Write([]byte(journalMagic)); err != nil {
			return false, fmt.Errorf("%w: %v", ErrJournal, err)
		}
		j.size = int64(len(journalMagic))
		return false, nil
	case err == io.ErrUnexpectedEOF && journalMagic[:n] == string(magic[:n]):
		c.logDamage(j, 0, "file header cut short") // a crash right after creating the file
		j.size = int64(n)
		return true, nil
	case err != nil && err != io.ErrUnexpectedEOF:
		return false, fmt.Errorf("%w: reading %s: %v", ErrJournal, j.path, err)
	case string(magic[:n]) != journalMagic:
		return false, fmt.Errorf("%w: %s is not a cache journal", ErrJournal, j.path)
	}
	off := int64(len(journalMagic))
	now := c.now()
	var skipped int
	var body []byte
	for {
		var hdr [recordHeader]byte
		n, err := io.ReadFull(r, hdr[:])
		if n == 0 && err == io.EOF {
			break
		}
		if err != nil {
			c.logDamage(j, off, "record header cut short")
			damaged = true
			break
		}
		length := int64(binary.LittleEndian.Uint32(hdr[0:4]))
		sum := binary.LittleEndian.Uint32(hdr[4:8])
		if length > c.maxRecordBody() {
			// Too large for this cache's limits (or a corrupt length):
			// verify it without holding it, then skip it.
			h := crc32.New(crcTable)
			if m, err := io.CopyN(h, r, length); err != nil || m != length || h.Sum32() != sum {
				c.logDamage(j, off, "oversized record cut short or corrupt")
				damaged = true
				break
			}
			skipped++
			off += recordHeader + length
			continue
		}
		if int64(cap(body)) < length {
			body = make([]byte, length)
		}
		body = body[:length]
		if _, err := io.ReadFull(r, body); err != nil {
			c.logDamage(j, off, "record cut short")
			damaged = true
			break
		}
		if crc32.Checksum(body, crcTable) != sum {
			c.logDamage(j, off, "record checksum mismatch")
			damaged = true
			break
		}
		if !c.applyRecord(body, now) {
			skipped++
		}
		off += recordHeader + length
	}
	j.size = off
	if skipped > 0 {
		j.log.Warn("cache journal: records skipped (outside this cache's limits or malformed)",
			"cache", c.cfg.Name, "path", j.path, "records", skipped)
	}
	return damaged, nil
}

func (c *Cache) logDamage(j *journal, off int64, what string) {
	size := int64(-1)
	if st, err := j.f.Stat(); err == nil {
		size = st.Size()
	}
	j.log.Warn("cache journal damaged (a crash mid-write?): keeping the records before it, dropping the rest",
		"cache", c.cfg.Name, "path", j.path, "offset", off, "dropped_bytes", size-off, "damage", what)
}

// maxRecordBody is the largest body a record of this cache can have.
func (c *Cache) maxRecordBody() int64 {
	return putFixed + int64(c.cfg.MaxKeySize) + int64(c.cfg.MaxItemSize)
}

// applyRecord replays one record; false means it was malformed or does
// not fit this cache's limits.
func (c *Cache) applyRecord(body []byte, now time.Time) bool {
	if len(body) == 0 {
		return false
	}
	switch body[0] {
	case opPut:
		if len(body) < putFixed {
			return false
		}
		ns := int64(binary.LittleEndian.Uint64(body[1:9]))
		klen := int64(binary.LittleEndian.Uint32(body[9:13]))
		if klen > int64(len(body)-putFixed) {
			return false
		}
		key, value := body[putFixed:putFixed+klen], body[putFixed+klen:]
		if c.checkItem(key, value) != nil {
			return false
		}
		var expires time.Time
		if ns != 0 {
			expires = time.Unix(0, ns)
		}
		if !expires.IsZero() && !now.Before(expires) {
			if e := c.items[string(key)]; e != nil {
				c.remove(e)
			}
			return true
		}
		c.put(string(key), cloneBytes(value), expires, now)
	case opDelete:
		if e := c.items[string(body[1:])]; e != nil {
			c.remove(e)
		}
	case opClear:
		c.clearItems()
	default:
		return false
	}
	return true
}

func appendRecord(buf []byte, op byte, key string, value []byte, expires time.Time) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, recordHeader)...)
	buf = append(buf, op)
	switch op {
	case opPut:
		var ns int64
		if !expires.IsZero() {
			ns = expires.UnixNano()
		}
		buf = binary.LittleEndian.AppendUint64(buf, uint64(ns))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(key)))
		buf = append(buf, key...)
		buf = append(buf, value...)
	case opDelete:
		buf = append(buf, key...)
	}
	body := buf[start+recordHeader:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(body, crcTable))
	return buf
}

// record appends one mutation to the journal, if there is one. The caller
// holds c.mu. A failed write is logged and ends journaling for this
// process (the file may now end in a partial record that the next
// process drops), but never fails the cache operation.
func (c *Cache) record(op byte, key string, value []byte, expires time.Time) {
	j := c.journal
	if j == nil || j.failed {
		return
	}
	j.buf = appendRecord(j.buf[:0], op, key, value, expires)
	n, err := j.f.Write(j.buf)
	j.size += int64(n)
	if err != nil {
		j.failed = true
		j.log.Error("cache journal write failed: the cache is no longer journaled in this process",
			"cache", c.cfg.Name, "path", j.path, "err", err)
		return
	}
	if j.size > j.nextCompact {
		if err := c.compact(false); err != nil {
			j.log.Error("cache journal compaction failed", "cache", c.cfg.Name, "path", j.path, "err", err)
		}
	}
}

// compactThreshold is the journal size past which compaction pays off.
func (c *Cache) compactThreshold() int64 {
	live := c.bytes + int64(len(c.items))*(recordHeader+putFixed)
	return max(compactMin, compactRatio*live)
}

// compact replaces the journal with a snapshot of the live items, coldest
// first so that replay rebuilds the recency order. The caller holds c.mu
// (or owns c alone) and, when locked, the journal's exclusive lock. If
// another process shares the journal, compaction waits for a later try.
func (c *Cache) compact(locked bool) error {
	j := c.journal
	if !locked && !tryLockExclusive(j.f) {
		// A failed conversion may have dropped the shared lock (flock(2)
		// converts by unlocking first): take it again.
		if err := lockShared(j.f); err != nil {
			return fmt.Errorf("%w: locking %s: %v", ErrJournal, j.path, err)
		}
		j.nextCompact = j.size + max(j.size, compactMin)
		return nil
	}
	tmpPath := j.path + ".snapshot-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(tmpSeq.Add(1), 10)
	nf, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		lockShared(j.f)
		return fmt.Errorf("%w: %v", ErrJournal, err)
	}
	fail := func(err error) error {
		nf.Close()
		os.Remove(tmpPath)
		lockShared(j.f)
		return fmt.Errorf("%w: writing a snapshot: %v", ErrJournal, err)
	}
	// Locked before anyone can open it by the journal's path.
	if err := lockShared(nf); err != nil {
		return fail(err)
	}
	w := bufio.NewWriterSize(nf, snapshotBuf)
	w.WriteString(journalMagic)
	size := int64(len(journalMagic))
	now := c.now()
	for e := c.root.prev; e != &c.root; e = e.prev {
		if e.expiredAt(now) {
			continue
		}
		j.buf = appendRecord(j.buf[:0], opPut, e.key, e.value, e.expires)
		w.Write(j.buf)
		size += int64(len(j.buf))
	}
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if err := nf.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmpPath, j.path); err != nil {
		return fail(err)
	}
	syncDir(filepath.Dir(j.path)) // best effort: a process crash does not need it
	j.f.Close()                   // releases the old file's lock
	j.f, j.size, j.failed = nf, size, false
	j.nextCompact = c.compactThreshold()
	return nil
}

// Close closes the cache's journal, if it has one (or its connection to
// its backend); the items stay in memory and later mutations are no
// longer journaled. Close does not
// compact: the next process replays the journal as it is.
func (c *Cache) Close() error {
	if c.remote != nil {
		return c.remote.close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.journal == nil {
		return nil
	}
	err := c.journal.f.Close()
	c.journal = nil
	return err
}
