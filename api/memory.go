package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Memory errors. A script that gets one sees a script error; the VM
// that ran it is discarded.
var (
	// ErrMemoryLimit: the process is at its memory budget, and this call
	// allocated most, or asked for more than is left.
	ErrMemoryLimit = errors.New("api: memory limit exceeded")
	// ErrAllocTooLarge: one allocation over Memory.MaxAlloc.
	ErrAllocTooLarge = errors.New("api: allocation too large")
)

// Memory is the process's memory budget for scripts. Engines Charge the
// allocations a script sizes (strings, buffers, arrays) to the call that
// makes them before making them; one too large for the budget fails at
// once. Serve watches the heap: when it nears the limit even after a
// collection, the running call that allocated most (the longest running
// when none was charged) is interrupted with ErrMemoryLimit.
//
// Calls are found through their Scope: NewScope registers a call with the
// Memory of its parent context (WithMemory).
type Memory struct {
	limit    int64
	maxAlloc int64
	// Logger receives a line for every interrupted call; nil means
	// slog.Default().
	Logger *slog.Logger

	heap  atomic.Int64 // last heap reading, bytes
	kills atomic.Int64

	mu    sync.Mutex
	calls map[*Scope]struct{}

	collectMu sync.Mutex // one collection for refused charges at a time
	warned    bool       // the last step found no call to interrupt (Serve's goroutine only)

	readHeap func() int64 // heap bytes in use
	collect  func()       // a full collection
}

// Memory budget tuning.
const (
	// memorySoft is the share of the limit at which Serve collects and
	// then interrupts.
	memorySoftPercent = 85
	memoryTick        = 10 * time.Millisecond
	// memoryVictimWait is how long Serve waits for an interrupted call
	// to end before it judges the heap again.
	memoryVictimWait = 250 * time.Millisecond
	// memoryMinAge is how long a call that was charged nothing runs
	// before it may be interrupted.
	memoryMinAge = 100 * time.Millisecond
)

// NewMemory returns a budget of limit bytes (limit <= 0: no budget, only
// the allocation cap of DefaultMaxAlloc). The largest single allocation is
// a quarter of the limit.
func NewMemory(limit int64) *Memory {
	m := &Memory{limit: limit, maxAlloc: DefaultMaxAlloc, calls: make(map[*Scope]struct{})}
	if limit > 0 {
		m.maxAlloc = max(limit/4, 1<<20)
	}
	m.readHeap = heapInUse
	m.collect = runtime.GC
	return m
}

// DefaultMaxAlloc caps single allocations when there is no budget.
const DefaultMaxAlloc = 1 << 30

// Limit returns the budget in bytes (0: none).
func (m *Memory) Limit() int64 { return m.limit }

// MaxAlloc returns the largest allocation a script may make at once.
func (m *Memory) MaxAlloc() int64 { return m.maxAlloc }

// Kills returns how many calls were interrupted for memory.
func (m *Memory) Kills() int64 { return m.kills.Load() }

// Heap returns the heap in use at the last reading.
func (m *Memory) Heap() int64 { return m.heap.Load() }

type memoryKey struct{}

// WithMemory returns ctx carrying m: scopes made under it are counted in m.
func WithMemory(ctx context.Context, m *Memory) context.Context {
	return context.WithValue(ctx, memoryKey{}, m)
}

// MemoryOf returns the budget ctx carries (nil: none).
func MemoryOf(ctx context.Context) *Memory {
	if s := ScopeOf(ctx); s != nil && s.mem != nil {
		return s.mem
	}
	m, _ := ctx.Value(memoryKey{}).(*Memory)
	return m
}

// Charge accounts n bytes that the call of ctx is about to allocate. It
// fails, and the caller must not allocate, with ErrAllocTooLarge when n is
// over the allocation cap (DefaultMaxAlloc without a budget) and with
// ErrMemoryLimit when the heap has no room for n within the budget.
func Charge(ctx context.Context, n int64) error {
	if s := ScopeOf(ctx); s != nil {
		return s.Charge(n)
	}
	return chargeTo(MemoryOf(ctx), n)
}

func chargeTo(m *Memory, n int64) error {
	if m == nil {
		if n > DefaultMaxAlloc || n < 0 {
			return fmt.Errorf("%w: %d bytes, over the %d byte limit", ErrAllocTooLarge, n, int64(DefaultMaxAlloc))
		}
		return nil
	}
	return m.check(n)
}

func (m *Memory) check(n int64) error {
	if n < 0 || n > m.maxAlloc {
		return fmt.Errorf("%w: %d bytes, over the %d byte limit", ErrAllocTooLarge, n, m.maxAlloc)
	}
	if m.limit > 0 && n > 1<<20 && m.heap.Load()+n > m.limit {
		if h, ok := m.roomAfterCollecting(n); !ok {
			return fmt.Errorf("%w: %d bytes asked with %d of %d in use", ErrMemoryLimit, n, h, m.limit)
		}
	}
	return nil
}

// roomAfterCollecting collects before refusing n bytes: the last reading
// may count garbage (the memory of a call just interrupted). One caller
// collects at a time; the others take its reading.
func (m *Memory) roomAfterCollecting(n int64) (heap int64, ok bool) {
	m.collectMu.Lock()
	defer m.collectMu.Unlock()
	if h := m.heap.Load(); h+n <= m.limit {
		return h, true
	}
	m.collect()
	h := m.readHeap()
	m.heap.Store(h)
	return h, h+n <= m.limit
}

// Charge is Charge for the call s (nil: no call, only the default cap).
func (s *Scope) Charge(n int64) error {
	if s == nil {
		return chargeTo(nil, n)
	}
	if err := chargeTo(s.mem, n); err != nil {
		return err
	}
	s.charged.Add(n)
	return nil
}

// Charged returns the bytes charged to the call so far.
func (s *Scope) Charged() int64 { return s.charged.Load() }

func (m *Memory) add(s *Scope) {
	m.mu.Lock()
	m.calls[s] = struct{}{}
	m.mu.Unlock()
}

// remove takes s out and reports whether it was in.
func (m *Memory) remove(s *Scope) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.calls[s]
	delete(m.calls, s)
	return ok
}

// Calls returns how many calls are running.
func (m *Memory) Calls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}

// Serve watches the heap until ctx is done. With a budget it also sets
// the Go runtime's soft memory limit to it, so the collector works harder
// before the budget is reached.
func (m *Memory) Serve(ctx context.Context) error {
	if m.limit > 0 {
		old := debug.SetMemoryLimit(m.limit)
		defer debug.SetMemoryLimit(old)
	}
	t := time.NewTicker(memoryTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if victim := m.step(); victim != nil {
			select {
			case <-victim.ended:
			case <-time.After(memoryVictimWait):
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// step reads the heap and, over the soft limit after a collection,
// interrupts one call; it returns that call.
func (m *Memory) step() *Scope {
	h := m.readHeap()
	m.heap.Store(h)
	if m.limit <= 0 {
		return nil
	}
	soft := m.limit / 100 * memorySoftPercent
	if h < soft {
		m.warned = false
		return nil
	}
	m.collect()
	h = m.readHeap()
	m.heap.Store(h)
	if h < soft {
		return nil
	}
	victim := m.victim()
	if victim == nil {
		if !m.warned {
			m.warned = true
			m.logger().Warn("memory near the limit with no script call to interrupt",
				"heap_bytes", h, "limit_bytes", m.limit)
		}
		return nil
	}
	m.warned = false
	victim.cancel(fmt.Errorf("%w: %d of %d bytes in use; this call allocated %d", ErrMemoryLimit, h, m.limit, victim.Charged()))
	m.kills.Add(1)
	m.logger().Error("memory limit exceeded: call interrupted",
		"heap_bytes", h, "limit_bytes", m.limit, "charged_bytes", victim.Charged(),
		"running", time.Since(victim.started).Round(time.Millisecond))
	return victim
}

// victim is the running call that was charged most, or, when none was
// charged, the one running longest if it has run memoryMinAge: growth
// that no charge sees (tables, small strings) takes time, and a call that
// just started is not what filled the memory.
func (m *Memory) victim() *Scope {
	m.mu.Lock()
	defer m.mu.Unlock()
	var best *Scope
	var bestCharged int64
	for s := range m.calls {
		c := s.Charged()
		if best == nil || c > bestCharged || (c == bestCharged && s.started.Before(best.started)) {
			best, bestCharged = s, c
		}
	}
	if best != nil && bestCharged == 0 && time.Since(best.started) < memoryMinAge {
		return nil
	}
	return best
}

func (m *Memory) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}

var heapSamples = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/total:bytes"},
	{Name: "/memory/classes/heap/released:bytes"},
	{Name: "/memory/classes/heap/free:bytes"},
}
var heapSampleMu sync.Mutex

// heapInUse is the memory the budget watches: the bytes of heap objects
// (live or not yet swept), or, when more, what the runtime holds in use
// (its total less the free and returned heap) minus its usual slack
// (memorySlackPercent). The runtime's total is what debug.SetMemoryLimit
// bounds: once it nears the limit the collector runs without pause and
// the program crawls, so the budget must act before, also when the
// objects alone are below its threshold (builds whose runtime keeps more
// overhead, such as the race detector's). Free heap is left out: after a
// big call is interrupted it stays until the scavenger returns it, and it
// is no one's.
func heapInUse() int64 {
	heapSampleMu.Lock()
	defer heapSampleMu.Unlock()
	metrics.Read(heapSamples)
	var v [4]int64
	for i, s := range heapSamples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = int64(s.Value.Uint64())
		}
	}
	objects, held := v[0], v[1]-v[2]-v[3]
	return max(objects, held-held/100*memorySlackPercent)
}

// memorySlackPercent is the share of the runtime's memory in use that is
// not objects even when nothing is wrong (spans, stacks, metadata).
const memorySlackPercent = 10

// DefaultMemoryLimit is three quarters of the memory the process may use:
// the machine's, or its cgroup's when that is smaller; 0 when neither can
// be read.
func DefaultMemoryLimit() int64 {
	total := machineMemory()
	if c := cgroupMemory(); c > 0 && (total == 0 || c < total) {
		total = c
	}
	return total / 4 * 3
}

// machineMemory reads MemTotal from /proc/meminfo (0 where there is none).
func machineMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// cgroupMemory reads the cgroup's memory limit (v2, then v1); 0: none.
func cgroupMemory() int64 {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		// v1 reports "no limit" as a huge page-rounded number.
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0
		}
		return n
	}
	return 0
}

// ParseSize reads a byte size: a number with an optional K, M, G or T
// suffix (powers of 1024, "MiB" and "MB" alike).
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	shift := 0
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		case 'T':
			shift = 40
		}
	}
	if shift > 0 {
		t = t[:len(t)-1]
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 || (shift > 0 && n > (1<<62)>>shift) {
		return 0, fmt.Errorf("api: bad size %q: want a number of bytes with an optional K, M, G or T", s)
	}
	return n << shift, nil
}
