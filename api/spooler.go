package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// The spooler: durable jobs, run later by the scripts' spooler functions,
// as uWSGI's spooler (modifier1 17) runs them for Python, Perl and Ruby.
//
// A job is a vars block and an optional body, stored as one file in a
// spool directory in uWSGI's format (the request packet: header
// [17, size, 0], the vars, then the body) and under uWSGI's file names
// (uwsgi_spoolfile_on_HOST_PID_N_RAND_SEC_USEC). Enqueue writes it to a
// temporary file, fsyncs it, renames it into place and fsyncs the
// directory before it returns, so an acknowledged job survives a crash or
// a power cut; the file stays until the job is done. Delivery is at least
// once: a job that was running when the process died runs again.
//
// A job's modification time is when it may run: `at` sets it into the
// future, and retries push it forward. Jobs in a priority subdirectory
// (the `priority` key, a name of letters, digits, '-' and '_') run before
// the jobs of the directory itself, subdirectories in name order.
//
// The spooler functions answer SpoolOK (done: the file is removed),
// SpoolRetry (kept, run again after Frequency) or SpoolIgnore (not mine:
// the next function is asked; when none takes it, it is kept like a
// retry). An error, or an answer that is not one of the three, counts as
// a failed attempt: the job runs again after a backoff that doubles from
// Backoff, and after MaxAttempts failures moves to the directory's
// "failed" subdirectory, with the last error beside it in NAME.error.

// The answers of a spooler function (uWSGI's uwsgi.SPOOL_OK,
// uwsgi.SPOOL_RETRY and uwsgi.SPOOL_IGNORE).
const (
	SpoolOK     = -2
	SpoolRetry  = -1
	SpoolIgnore = 0
)

// Spooler defaults.
const (
	DefaultSpoolFrequency   = 30 * time.Second // uWSGI's spooler-frequency
	DefaultSpoolWorkers     = 2
	DefaultSpoolMaxAttempts = 5
	DefaultSpoolBackoff     = time.Second
	DefaultSpoolMaxBody     = 16 << 20
	maxSpoolBackoff         = time.Hour
	// MaxSpoolVars is uWSGI's limit on a job's vars block.
	MaxSpoolVars = 0xffff
)

const (
	spoolPrefix   = "uwsgi_spoolfile_on_"
	spoolTempPre  = ".tmp_"
	spoolIncoming = ".incoming" // where job files are written before the rename
	spoolFailed   = "failed"
	spoolAttempts = ".attempts"
)

// Errors of the spooler.
var (
	ErrNoSpooler       = errors.New("api: no spooler is configured (serve --spooler DIR)")
	ErrUnknownSpooler  = errors.New("api: no such spooler")
	ErrSpoolJobTooBig  = errors.New("api: spool job too big")
	ErrSpoolerClosed   = errors.New("api: spooler closed")
	ErrBadSpoolJob     = errors.New("api: not a spool job")
	ErrBadSpoolPayload = errors.New("api: bad spool priority")
)

// SpoolerConfig configures NewSpooler; zero fields take the defaults.
type SpoolerConfig struct {
	// Dirs are the spool directories (created if missing); the first is
	// where jobs go when they name none. A job's `spooler` key picks
	// another by its path as given here or by its base name.
	Dirs []string
	// Workers is how many jobs run at once, over all directories.
	Workers int
	// Frequency is how often the directories are scanned for jobs whose
	// time came (new jobs of this process run at once), and how long a
	// job that asked for a retry waits.
	Frequency time.Duration
	// MaxAttempts is how many failures a job gets before it moves to
	// "failed".
	MaxAttempts int
	// Backoff is the wait after a job's first failure, doubling with
	// each further one up to an hour.
	Backoff time.Duration
	// Timeout bounds one run of a spooler function (0: none).
	Timeout time.Duration
	// MaxBody bounds a job's body.
	MaxBody int
	// Hostname goes into job file names (default: os.Hostname).
	Hostname string
	// Logger receives the jobs' failures and the spool directories'
	// problems; nil means slog.Default().
	Logger *slog.Logger
}

// SpoolFunc is a registered spooler function: it runs job and answers
// SpoolOK, SpoolRetry or SpoolIgnore.
type SpoolFunc func(ctx context.Context, job map[string]Value) (int, error)

// SpoolerStats counts the spooler's jobs since it started.
type SpoolerStats struct {
	Spooled int64 // jobs written to a spool directory by this process
	Done    int64 // jobs a function answered SpoolOK for (their files removed)
	Retried int64 // SpoolRetry answers (the job runs again after Frequency)
	Errors  int64 // failed attempts: errors, panics, other answers, unreadable jobs
	Failed  int64 // jobs moved to "failed" after their last attempt
	Running int64 // jobs running now (not a count since the start)
}

// Spooler runs the jobs of its spool directories on a bounded pool of
// workers with the functions the scripts registered.
type Spooler struct {
	cfg   SpoolerConfig
	log   *slog.Logger
	dirs  []string
	funcs atomic.Pointer[[]SpoolFunc]

	counter atomic.Uint64
	wake    chan struct{}
	jobs    chan string
	commits chan pendingCommit
	stop    chan struct{}
	done    sync.WaitGroup
	closing sync.Once

	mu      sync.Mutex
	running map[string]bool // job paths queued or running

	spooled, finished, retried, errs, failed, active atomic.Int64
}

// NewSpooler creates the directories and starts the workers.
func NewSpooler(cfg SpoolerConfig) (*Spooler, error) {
	if len(cfg.Dirs) == 0 {
		return nil, errors.New("api: a spooler needs a directory")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultSpoolWorkers
	}
	if cfg.Frequency <= 0 {
		cfg.Frequency = DefaultSpoolFrequency
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultSpoolMaxAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultSpoolBackoff
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultSpoolMaxBody
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	s := &Spooler{
		cfg:     cfg,
		log:     cfg.Logger,
		wake:    make(chan struct{}, 1),
		jobs:    make(chan string),
		commits: make(chan pendingCommit),
		stop:    make(chan struct{}),
		running: map[string]bool{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	for _, d := range cfg.Dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("api: spooler %s: %w", d, err)
		}
		for _, sub := range []string{abs, filepath.Join(abs, spoolFailed), filepath.Join(abs, spoolAttempts), filepath.Join(abs, spoolIncoming)} {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return nil, fmt.Errorf("api: spooler: %w", err)
			}
		}
		if slices.Contains(s.dirs, abs) {
			return nil, fmt.Errorf("api: spooler %s given twice", d)
		}
		s.dirs = append(s.dirs, abs)
		s.cleanTemps(abs)
	}
	s.done.Add(2 + cfg.Workers)
	go s.commit()
	go s.scan()
	for range cfg.Workers {
		go s.work()
	}
	s.kick()
	return s, nil
}

// Dirs returns the spool directories, absolute.
func (s *Spooler) Dirs() []string { return slices.Clone(s.dirs) }

// SetFuncs replaces the spooler functions (a new scripts generation).
func (s *Spooler) SetFuncs(fns []SpoolFunc) {
	fns = slices.Clone(fns)
	s.funcs.Store(&fns)
	s.kick() // jobs kept for want of a function may run now
}

// Stats returns the counters.
func (s *Spooler) Stats() SpoolerStats {
	return SpoolerStats{Spooled: s.spooled.Load(), Done: s.finished.Load(), Retried: s.retried.Load(),
		Errors: s.errs.Load(), Failed: s.failed.Load(), Running: s.active.Load()}
}

// Close stops taking jobs and waits for the running ones until ctx ends.
// Jobs not done stay in their directories for the next start.
func (s *Spooler) Close(ctx context.Context) error {
	s.closing.Do(func() { close(s.stop) })
	ended := make(chan struct{})
	go func() { s.done.Wait(); close(ended) }()
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Spooler) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Dir returns the directory a job's `spooler` value names ("" is the
// first): a configured path, its absolute form or its base name.
func (s *Spooler) Dir(name string) (string, error) {
	if name == "" {
		return s.dirs[0], nil
	}
	for i, d := range s.dirs {
		if name == s.cfg.Dirs[i] || name == d || name == filepath.Base(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w %q", ErrUnknownSpooler, name)
}

// Has reports whether name names one of the spool directories (see Dir).
func (s *Spooler) Has(name string) bool {
	_, err := s.Dir(name)
	return err == nil && name != ""
}

// MaxListedJobs bounds what Jobs returns: a backlog of a million jobs
// must not become a million strings in a script.
const MaxListedJobs = 10000

// Jobs returns the paths of the jobs of a spool directory (see Dir),
// priority subdirectories first, in the order they would run; at most
// MaxListedJobs of them.
func (s *Spooler) Jobs(name string) ([]string, error) {
	dir, err := s.Dir(name)
	if err != nil {
		return nil, err
	}
	var out []string
	s.eachJob(dir, func(p string) {
		if len(out) < MaxListedJobs {
			out = append(out, p)
		}
	})
	return out, nil
}

// eachJob calls fn for the job files of dir, priority subdirectories
// first (in name order), then dir's own, in name order.
func (s *Spooler) eachJob(dir string, fn func(path string)) {
	var visit func(dir string, top bool)
	visit = func(dir string, top bool) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			s.log.Error("spooler: cannot read the spool directory", "dir", dir, "err", err)
			return
		}
		for _, e := range entries {
			if name := e.Name(); e.IsDir() && top && name != spoolFailed && name != spoolAttempts && validPriority(name) {
				visit(filepath.Join(dir, name), false)
			}
		}
		for _, e := range entries {
			if e.Type().IsRegular() && strings.HasPrefix(e.Name(), spoolPrefix) {
				fn(filepath.Join(dir, e.Name()))
			}
		}
	}
	visit(dir, true)
}

// Enqueue stores a job durably and returns its file's path. vars is an
// encoded vars block (at most MaxSpoolVars bytes); its keys `spooler`,
// `priority` and `at` choose the directory, the priority subdirectory and
// the earliest run time (Unix seconds; a fraction is ignored).
func (s *Spooler) Enqueue(vars []byte, body []byte) (string, error) {
	select {
	case <-s.stop:
		return "", ErrSpoolerClosed
	default:
	}
	if len(vars) > MaxSpoolVars {
		return "", fmt.Errorf("%w: the vars take %d bytes, uWSGI's limit is %d (put big values in the body)",
			ErrSpoolJobTooBig, len(vars), MaxSpoolVars)
	}
	if len(body) > s.cfg.MaxBody {
		return "", fmt.Errorf("%w: a body of %d bytes, the limit is %d", ErrSpoolJobTooBig, len(body), s.cfg.MaxBody)
	}
	var spooler, priority, at string
	if err := uwsgi.EachVar(vars, func(k, v []byte) bool {
		switch string(k) {
		case "spooler":
			spooler = string(v)
		case "priority":
			priority = string(v)
		case "at":
			at = string(v)
		}
		return true
	}); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadSpoolJob, err)
	}
	dir, err := s.Dir(spooler)
	if err != nil {
		return "", err
	}
	if priority != "" {
		if !validPriority(priority) {
			return "", fmt.Errorf("%w %q: use letters, digits, '-' and '_' (at most 64)", ErrBadSpoolPayload, priority)
		}
		dir = filepath.Join(dir, priority)
		if err := os.MkdirAll(filepath.Join(dir, spoolIncoming), 0o755); err != nil {
			return "", fmt.Errorf("api: spooler: %w", err)
		}
	}
	var runAt time.Time
	if at != "" {
		whole, _, _ := strings.Cut(at, ".")
		sec, err := strconv.ParseInt(whole, 10, 64)
		if err != nil || sec < 0 {
			return "", fmt.Errorf("%w: at %q is not a Unix time", ErrBadSpoolJob, at)
		}
		// File systems with 32-bit times (ext4 with small inodes) end in
		// January 2038: later times are held at that end.
		runAt = time.Unix(min(sec, math.MaxInt32), 0)
	}
	now := time.Now()
	name := fmt.Sprintf("%s%s_%d_%d_%d_%d_%d", spoolPrefix, s.cfg.Hostname, os.Getpid(), s.counter.Add(1),
		rand.Int32(), now.Unix(), now.Nanosecond()/1000)
	path := filepath.Join(dir, name)
	if err := s.store(dir, name, spoolFile(vars, body), runAt); err != nil {
		return "", fmt.Errorf("api: spooler: %w", err)
	}
	s.spooled.Add(1)
	s.kick()
	return path, nil
}

func validPriority(p string) bool {
	if len(p) > 64 || p == spoolFailed {
		return false
	}
	for _, c := range []byte(p) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// spoolFile is a job file's content: the request packet, then the body.
func spoolFile(vars, body []byte) []byte {
	b := make([]byte, 0, 4+len(vars)+len(body))
	b = uwsgi.Header{Modifier1: uwsgi.ModSpooler, Size: uint16(len(vars))}.Append(b)
	b = append(b, vars...)
	return append(b, body...)
}

// store writes a job file durably: written to a temporary file and synced
// (concurrent syncs share the file system's journal commits), then handed
// to the committer, which renames it into place and syncs the directory
// for every job waiting at that moment at once (a group commit). A zero
// runAt leaves the modification time at now.
func (s *Spooler) store(dir, name string, data []byte, runAt time.Time) (err error) {
	// Written beside, not in, the spool directory (NewSpooler and Enqueue
	// make it): creating files there would contend with the renames and
	// syncs of the group commit.
	tmp := filepath.Join(dir, spoolIncoming, spoolTempPre+name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if !runAt.IsZero() {
		if err = os.Chtimes(tmp, runAt, runAt); err != nil {
			return err
		}
	}
	done := make(chan error, 1)
	select {
	case s.commits <- pendingCommit{dir: dir, tmp: tmp, final: filepath.Join(dir, name), done: done}:
	case <-s.stop:
		return ErrSpoolerClosed
	}
	return <-done
}

// pendingCommit is a job file waiting for the committer.
type pendingCommit struct {
	dir, tmp, final string
	done            chan error
}

// maxCommitBatch bounds the jobs of one group commit.
const maxCommitBatch = 256

// commit is the committer: it takes every job file waiting, renames them
// into place and syncs their directories.
func (s *Spooler) commit() {
	defer s.done.Done()
	for {
		var batch []pendingCommit
		select {
		case c := <-s.commits:
			batch = append(batch, c)
		case <-s.stop:
			return
		}
	more:
		for len(batch) < maxCommitBatch {
			select {
			case c := <-s.commits:
				batch = append(batch, c)
			default:
				break more
			}
		}
		s.flush(batch)
	}
}

func (s *Spooler) flush(batch []pendingCommit) {
	errs := make([]error, len(batch))
	dirs := map[string]bool{}
	for i, c := range batch {
		if errs[i] == nil {
			if errs[i] = os.Rename(c.tmp, c.final); errs[i] == nil {
				dirs[c.dir] = true
			}
		}
	}
	synced := map[string]error{}
	for d := range dirs {
		synced[d] = syncDir(d)
	}
	for i, c := range batch {
		if errs[i] == nil {
			errs[i] = synced[c.dir]
		}
		if errs[i] != nil {
			os.Remove(c.tmp)
			os.Remove(c.final)
		}
		c.done <- errs[i]
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	return nil
}

// cleanTemps removes what a crash left half written: those jobs were
// never acknowledged.
func (s *Spooler) cleanTemps(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && p != dir && (d.Name() == spoolFailed || d.Name() == spoolAttempts) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), spoolTempPre) {
			os.Remove(p)
		}
		return nil
	})
}

// scan hands the jobs whose time came to the workers: when woken by a new
// job or a change of functions, and every Frequency.
func (s *Spooler) scan() {
	defer s.done.Done()
	defer close(s.jobs)
	tick := time.NewTicker(s.cfg.Frequency)
	defer tick.Stop()
	var next *time.Timer
	for {
		due, soonest := s.ready()
		for _, p := range due {
			select {
			case s.jobs <- p:
			case <-s.stop:
				s.unmark(p)
				for _, rest := range due {
					s.unmark(rest)
				}
				return
			}
		}
		// A retry due before the next tick gets its own timer.
		var soon <-chan time.Time
		if !soonest.IsZero() {
			if next != nil {
				next.Stop()
			}
			next = time.NewTimer(max(time.Until(soonest), 10*time.Millisecond))
			soon = next.C
		}
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-tick.C:
		case <-soon:
		}
	}
}

// ready lists the jobs that may run now and are not queued or running,
// marking them, and the earliest later run time within a Frequency.
func (s *Spooler) ready() (due []string, soonest time.Time) {
	now := time.Now()
	horizon := now.Add(s.cfg.Frequency)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.dirs {
		s.eachJob(d, func(p string) {
			if s.running[p] {
				return
			}
			info, err := os.Stat(p)
			if err != nil {
				return // done meanwhile
			}
			if t := info.ModTime(); t.After(now) {
				if t.Before(horizon) && (soonest.IsZero() || t.Before(soonest)) {
					soonest = t
				}
				return
			}
			s.running[p] = true
			due = append(due, p)
		})
	}
	return due, soonest
}

func (s *Spooler) unmark(p string) {
	s.mu.Lock()
	delete(s.running, p)
	s.mu.Unlock()
}

func (s *Spooler) work() {
	defer s.done.Done()
	for p := range s.jobs {
		s.active.Add(1)
		again := s.run(p)
		s.active.Add(-1)
		s.unmark(p)
		if again {
			s.kick()
		}
	}
}

// run runs one job with the registered functions and settles its file;
// again reports a job handed back to run at once (the scripts were
// reloaded while it started).
func (s *Spooler) run(path string) (again bool) {
	unlock, ok, err := lockJob(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("spooler: cannot open a job", "job", path, "err", err)
		}
		return
	}
	if !ok {
		return // another process runs it
	}
	defer unlock()
	if _, err := os.Stat(path); err != nil {
		return // settled by another process between our scan and the lock
	}
	job, err := readJob(path)
	if err != nil {
		s.fail(path, err, true)
		return
	}
	fns := s.funcs.Load()
	if fns == nil || len(*fns) == 0 {
		s.log.Warn("spooler: no spooler function is registered; the job waits", "job", path)
		s.postpone(path, s.cfg.Frequency)
		return
	}
	for _, fn := range *fns {
		code, err := s.call(fn, job)
		if errors.Is(err, ErrGenerationClosed) {
			return true
		}
		if err != nil {
			s.fail(path, err, false)
			return
		}
		switch code {
		case SpoolOK:
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Error("spooler: cannot remove a done job", "job", path, "err", err)
			}
			os.Remove(s.attemptsPath(path))
			s.finished.Add(1)
			return
		case SpoolRetry:
			s.retried.Add(1)
			s.postpone(path, s.cfg.Frequency)
			return
		case SpoolIgnore:
			continue
		default:
			s.fail(path, fmt.Errorf("the spooler function answered %d: want SPOOL_OK (-2), SPOOL_RETRY (-1) or SPOOL_IGNORE (0)", code), false)
			return
		}
	}
	s.log.Warn("spooler: every spooler function ignored the job; it waits", "job", path)
	s.postpone(path, s.cfg.Frequency)
	return false
}

// call runs fn under its own scope, a panic becoming an error.
func (s *Spooler) call(fn SpoolFunc, job map[string]Value) (code int, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("spooler function panicked: %v", p)
		}
	}()
	ctx, _, done := NewScope(context.Background(), nil, s.cfg.Timeout)
	defer done()
	return fn(ctx, maps.Clone(job))
}

// readJob parses a job file into what the functions get: the vars as
// strings, spooler_task_name (the file's path) and body when there is one.
func readJob(path string) (map[string]Value, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < 4 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadSpoolJob, len(data))
	}
	h := uwsgi.Header{Modifier1: uwsgi.Modifier(data[0]), Size: binary.LittleEndian.Uint16(data[1:3]), Modifier2: data[3]}
	if h.Modifier1 != uwsgi.ModSpooler || 4+int(h.Size) > len(data) {
		return nil, fmt.Errorf("%w: header %v in a file of %d bytes", ErrBadSpoolJob, h, len(data))
	}
	job := map[string]Value{}
	if err := uwsgi.EachVar(data[4:4+int(h.Size)], func(k, v []byte) bool {
		job[string(k)] = string(v)
		return true
	}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSpoolJob, err)
	}
	job["spooler_task_name"] = path
	if body := data[4+int(h.Size):]; len(body) > 0 {
		job["body"] = string(bytes.Clone(body))
	}
	return job, nil
}

// postpone sets the job's run time d from now.
func (s *Spooler) postpone(path string, d time.Duration) {
	t := time.Now().Add(d)
	if err := os.Chtimes(path, t, t); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Error("spooler: cannot postpone a job", "job", path, "err", err)
	}
}

func (s *Spooler) attemptsPath(job string) string {
	dir, name := filepath.Split(job)
	top := filepath.Clean(dir)
	if !slices.Contains(s.dirs, top) { // a priority subdirectory
		return filepath.Join(filepath.Dir(top), spoolAttempts, filepath.Base(top)+"_"+name)
	}
	return filepath.Join(top, spoolAttempts, name)
}

// fail counts a failed attempt: the job waits its backoff, or moves to
// "failed" after MaxAttempts (at once when it cannot be read).
func (s *Spooler) fail(path string, cause error, unreadable bool) {
	s.errs.Add(1)
	ap := s.attemptsPath(path)
	n := 1
	if b, err := os.ReadFile(ap); err == nil {
		if prev, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			n = prev + 1
		}
	}
	if !unreadable && n < s.cfg.MaxAttempts {
		if err := os.WriteFile(ap, []byte(strconv.Itoa(n)), 0o600); err != nil {
			s.log.Error("spooler: cannot count a failed attempt", "job", path, "err", err)
		}
		wait := min(s.cfg.Backoff<<(n-1), maxSpoolBackoff)
		s.log.Warn("spooler: job failed; it runs again", "job", path, "attempt", n, "of", s.cfg.MaxAttempts,
			"retry_in", wait.String(), "err", cause)
		s.postpone(path, wait)
		return
	}
	s.failed.Add(1)
	top := filepath.Clean(filepath.Dir(path))
	if !slices.Contains(s.dirs, top) {
		top = filepath.Dir(top)
	}
	dest := filepath.Join(top, spoolFailed, filepath.Base(path))
	note := fmt.Sprintf("%s\nattempts: %d\nat: %s\n", cause, n, time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(dest+".error", []byte(note), 0o600); err != nil {
		s.log.Error("spooler: cannot write a failed job's error", "job", path, "err", err)
	}
	if err := os.Rename(path, dest); err != nil {
		s.log.Error("spooler: cannot move a failed job", "job", path, "err", err)
		s.postpone(path, s.cfg.Frequency)
		return
	}
	os.Remove(ap)
	s.log.Error("spooler: job failed for good; moved to failed", "job", dest, "attempts", n, "err", cause)
}
