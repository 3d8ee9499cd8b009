package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// journalCache opens a journaled cache at path with a clock at now and a
// logger writing to logs (nil: discard).
func journalCache(t testing.TB, path string, now time.Time, logs *bytes.Buffer) *Cache {
	t.Helper()
	c, err := openJournalCache(path, now, logs)
	if err != nil {
		t.Fatalf("NewCache with store %s = %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func openJournalCache(path string, now time.Time, logs *bytes.Buffer) (*Cache, error) {
	var w bytes.Buffer
	if logs == nil {
		logs = &w
	}
	log := slog.New(slog.NewTextHandler(logs, nil))
	return newCache(CacheConfig{Name: "j", MaxItems: 100, Store: path, Logger: log}, func() time.Time { return now })
}

// crash drops the cache's journal without any of Close's work, as a
// killed process does (the kernel closes the file and drops its lock).
func crash(c *Cache) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.journal.f.Close()
	c.journal = nil
}

func itemsOf(t *testing.T, c *Cache) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, k := range keyStrings(t, c) {
		it, err := c.Get(context.Background(), []byte(k))
		if err != nil {
			t.Fatalf("Get(%q) = %v", k, err)
		}
		got[k] = string(it.Value)
	}
	return got
}

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestJournalReplay(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		mutate func(c *Cache) error
		want   map[string]string
	}{
		{"set", func(c *Cache) error { return c.Set(ctx, []byte("a"), []byte("1"), 0) }, map[string]string{"a": "1"}},
		{"update overwrites", func(c *Cache) error {
			c.Update(ctx, []byte("a"), []byte("1"), 0)
			return c.Update(ctx, []byte("a"), []byte("2"), 0)
		}, map[string]string{"a": "2"}},
		{"inc and dec", func(c *Cache) error {
			c.Inc(ctx, []byte("n"), 5, 0)
			_, err := c.Dec(ctx, []byte("n"), 2, 0)
			return err
		}, map[string]string{"n": counterString(3)}},
		{"delete", func(c *Cache) error {
			c.Set(ctx, []byte("a"), []byte("1"), 0)
			c.Set(ctx, []byte("b"), []byte("2"), 0)
			return c.Delete(ctx, []byte("a"))
		}, map[string]string{"b": "2"}},
		{"clear", func(c *Cache) error {
			c.Set(ctx, []byte("a"), []byte("1"), 0)
			c.Clear(ctx)
			return c.Set(ctx, []byte("b"), []byte("2"), 0)
		}, map[string]string{"b": "2"}},
		{"binary and empty values", func(c *Cache) error {
			c.Set(ctx, []byte("bin\x00"), []byte("\x00\xff"), 0)
			return c.Set(ctx, []byte("empty"), []byte{}, 0)
		}, map[string]string{"bin\x00": "\x00\xff", "empty": ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, end := range []struct {
				name string
				stop func(*Cache)
			}{{"crash", crash}, {"close", func(c *Cache) { c.Close() }}} {
				path := filepath.Join(t.TempDir(), "cache.journal")
				c := journalCache(t, path, t0, nil)
				if err := tc.mutate(c); err != nil {
					t.Fatal(err)
				}
				end.stop(c)
				got := itemsOf(t, journalCache(t, path, t0, nil))
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("after %s: items %q, want %q", end.name, got, tc.want)
				}
			}
		})
	}
}

// The replayed cache keeps the recency order, so eviction picks the same
// item it would have picked before the crash.
func TestJournalReplayKeepsRecency(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.journal")
	c := journalCache(t, path, t0, nil)
	for _, k := range []string{"a", "b", "c"} {
		mustSet(t, c, k, k, 0)
	}
	crash(c)
	if got, want := keyStrings(t, journalCache(t, path, t0, nil)), []string{"c", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("keys %q, want %q", got, want)
	}
}

func TestJournalExpiry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.journal")
	c := journalCache(t, path, t0, nil)
	mustSet(t, c, "short", "s", time.Minute)
	mustSet(t, c, "long", "l", time.Hour)
	mustSet(t, c, "never", "n", 0)
	crash(c)

	c = journalCache(t, path, t0.Add(30*time.Minute), nil)
	if got, want := itemsOf(t, c), map[string]string{"long": "l", "never": "n"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("items 30 minutes later %q, want %q", got, want)
	}
	it, err := c.Get(context.Background(), []byte("long"))
	if err != nil || !it.Expires.Equal(t0.Add(time.Hour)) {
		t.Errorf("Get(long) = %v, %v; want it to expire at %v (absolute, as set)", it.Expires, err, t0.Add(time.Hour))
	}
}

// cutAndCorrupt damages a journal holding records a, b, c (in that order).
var journalDamage = []struct {
	name     string
	damage   func(t *testing.T, path string, b []byte) []byte
	wantKeys []string // what survives, besides "d" written after the repair
	wantLog  string
}{
	{"last record cut short", func(t *testing.T, _ string, b []byte) []byte { return b[:len(b)-3] }, []string{"a", "b"}, "record cut short"},
	{"last header cut short", func(t *testing.T, _ string, b []byte) []byte {
		return b[:recordOffset(t, b, 2)+3]
	}, []string{"a", "b"}, "header cut short"},
	{"checksum mismatch in the middle", func(t *testing.T, _ string, b []byte) []byte {
		b[recordOffset(t, b, 1)+recordHeader+3] ^= 0xff
		return b
	}, []string{"a"}, "checksum mismatch"},
	{"huge length", func(t *testing.T, _ string, b []byte) []byte {
		copy(b[recordOffset(t, b, 1):], []byte{0xff, 0xff, 0xff, 0x7f})
		return b
	}, []string{"a"}, "oversized record"},
	{"magic cut short", func(t *testing.T, _ string, b []byte) []byte { return b[:3] }, nil, "damaged"},
}

// recordOffset returns the offset of record i of a journal.
func recordOffset(t *testing.T, b []byte, i int) int {
	off := len(journalMagic)
	for ; i > 0; i-- {
		if off+recordHeader > len(b) {
			t.Fatalf("journal has fewer records")
		}
		off += recordHeader + int(binary.LittleEndian.Uint32(b[off:]))
	}
	return off
}

func TestJournalDamage(t *testing.T) {
	for _, tc := range journalDamage {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cache.journal")
			c := journalCache(t, path, t0, nil)
			for _, k := range []string{"a", "b", "c"} {
				mustSet(t, c, k, k, 0)
			}
			crash(c)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.damage(t, path, b), 0o600); err != nil {
				t.Fatal(err)
			}

			var logs bytes.Buffer
			c = journalCache(t, path, t0, &logs)
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log %q does not mention %q", logs.String(), tc.wantLog)
			}
			if got := keyStrings(t, c); !slices.Equal(sortedCopy(got), tc.wantKeys) {
				t.Errorf("keys after the damage %q, want %q", got, tc.wantKeys)
			}
			// The damage is gone from the file: a record written now is
			// read back by the next process.
			mustSet(t, c, "d", "d", 0)
			crash(c)
			logs.Reset()
			c = journalCache(t, path, t0, &logs)
			if got, want := sortedCopy(keyStrings(t, c)), append(slices.Clone(tc.wantKeys), "d"); !slices.Equal(got, want) {
				t.Errorf("keys after the repair %q, want %q", got, want)
			}
			if logs.Len() != 0 {
				t.Errorf("the repaired journal still logs: %s", logs.String())
			}
		})
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestJournalNotAJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	content := []byte("precious notes, not a cache journal\n")
	os.WriteFile(path, content, 0o600)
	_, err := openJournalCache(path, t0, nil)
	if !errors.Is(err, ErrJournal) || !strings.Contains(err.Error(), "not a cache journal") {
		t.Fatalf("NewCache on a text file = %v, want %v saying so", err, ErrJournal)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, content) {
		t.Errorf("the file was changed to %q", b)
	}
}

func TestJournalUnopenable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing-dir", "cache.journal")
	if _, err := openJournalCache(path, t0, nil); !errors.Is(err, ErrJournal) {
		t.Fatalf("NewCache in a missing directory = %v, want %v", err, ErrJournal)
	}
}

// Records too large for the cache's limits (the store was written with
// larger ones) are skipped, and replay goes on past them.
func TestJournalRecordOutsideLimits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.journal")
	big, err := newCache(CacheConfig{Name: "j", MaxItemSize: 100, Store: path}, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, big, "large", strings.Repeat("x", 80), 0)
	mustSet(t, big, "small", "s", 0)
	big.Close()
	var logs bytes.Buffer
	small, err := newCache(CacheConfig{Name: "j", MaxItemSize: 10, Store: path,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if got := keyStrings(t, small); !slices.Equal(got, []string{"small"}) {
		t.Errorf("keys %q, want [small]", got)
	}
	if !strings.Contains(logs.String(), "records skipped") {
		t.Errorf("no log line for the skipped record: %q", logs.String())
	}
}

func TestJournalCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.journal")
	c := journalCache(t, path, t0, nil)
	ctx := context.Background()
	value := bytes.Repeat([]byte("v"), 1000)
	// Rewriting one item many times grows the journal, not the data.
	for i := range 5000 {
		if err := c.Update(ctx, []byte(fmt.Sprint("key", i%10)), value, 0); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > compactMin+2000 {
		t.Errorf("journal %d bytes after 5 MB of rewrites of 10 KB of data, want compacted below %d", st.Size(), compactMin+2000)
	}
	if m, _ := filepath.Glob(path + ".snapshot-*"); len(m) != 0 {
		t.Errorf("snapshot files left behind: %q", m)
	}
	mustSet(t, c, "after", "compaction", 0)
	crash(c)
	got := journalCache(t, path, t0, nil)
	if n := got.Len(); n != 11 {
		t.Errorf("%d items after replaying the compacted journal, want 11", n)
	}
	if it, err := got.Get(ctx, []byte("after")); err != nil || string(it.Value) != "compaction" {
		t.Errorf("Get(after) = %q, %v", it.Value, err)
	}
}

// While two processes share a journal (a graceful restart), neither
// compacts it: a rename would leave the other writing to a lost file.
// Once alone, the survivor compacts and keeps everything.
func TestJournalSharedNotCompacted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.journal")
	ctx := context.Background()
	old := journalCache(t, path, t0, nil)
	mustSet(t, old, "from-old", "1", 0)
	next := journalCache(t, path, t0, nil)
	if it, err := next.Get(ctx, []byte("from-old")); err != nil || string(it.Value) != "1" {
		t.Fatalf("the new cache does not see the old one's item: %q, %v", it.Value, err)
	}
	value := bytes.Repeat([]byte("v"), 1000)
	for range 2000 {
		next.Update(ctx, []byte("k"), value, 0)
	}
	// (Sizes, not inodes: a compacted file may reuse a freed inode.)
	if st, _ := os.Stat(path); st.Size() < 2000*int64(len(value)) {
		t.Fatalf("the journal was compacted to %d bytes while shared", st.Size())
	}
	// next's failed tries kept its shared lock, so old cannot take the
	// journal alone either.
	if tryLockExclusive(old.journal.f) {
		t.Errorf("the old cache could lock the shared journal exclusively")
	}
	lockShared(old.journal.f)
	mustSet(t, old, "late-from-old", "2", 0) // while draining
	old.Close()
	for range 2000 {
		next.Update(ctx, []byte("k"), value, 0)
	}
	if st, _ := os.Stat(path); st.Size() > compactMin+2000 {
		t.Errorf("the journal is %d bytes once the other cache closed, want it compacted", st.Size())
	}
	crash(next)
	got := journalCache(t, path, t0, nil)
	if _, err := got.Get(ctx, []byte("k")); err != nil {
		t.Errorf("Get(k) after compaction = %v", err)
	}
}

func TestParseCacheConfigStore(t *testing.T) {
	cfg, err := ParseCacheConfig("name=s,items=10,store=/var/lib/scripthost/s.journal")
	if err != nil || cfg.Store != "/var/lib/scripthost/s.journal" || cfg.Name != "s" {
		t.Fatalf("ParseCacheConfig = %+v, %v", cfg, err)
	}
}

func TestStateClosesJournals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.journal")
	s, err := NewState(StateConfig{Caches: []CacheConfig{{Store: path}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s.Caches.Default().Set(ctx, []byte("k"), []byte("v"), 0)
	s.Close()
	s2, err := NewState(StateConfig{Caches: []CacheConfig{{Store: path}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if it, err := s2.Caches.Default().Get(ctx, []byte("k")); err != nil || string(it.Value) != "v" {
		t.Errorf("Get(k) in the next state = %q, %v", it.Value, err)
	}
	// The first state's journal is closed: its lock is gone, so the
	// second state is alone and may compact.
	if !tryLockExclusive(s2.Caches.Default().journal.f) {
		t.Errorf("the first state still holds the journal")
	}
}

func benchmarkCacheUpdate(b *testing.B, store string) {
	ctx := context.Background()
	c, err := NewCache(CacheConfig{Store: store})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	value := bytes.Repeat([]byte("v"), 128)
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprint("key", i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := c.Update(ctx, keys[i%len(keys)], value, time.Minute); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkCacheUpdate(b *testing.B) { benchmarkCacheUpdate(b, "") }

func BenchmarkCacheUpdateJournaled(b *testing.B) {
	benchmarkCacheUpdate(b, filepath.Join(b.TempDir(), "cache.journal"))
}

func BenchmarkCacheGetJournaled(b *testing.B) {
	ctx := context.Background()
	c, err := NewCache(CacheConfig{Store: filepath.Join(b.TempDir(), "cache.journal")})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	value := bytes.Repeat([]byte("v"), 128)
	for i := range 1000 {
		c.Update(ctx, []byte(fmt.Sprint("key", i)), value, 0)
	}
	key := []byte("key500")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}
