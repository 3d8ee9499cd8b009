package host

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/scripthost/scripthost/api"
)

// Reloader keeps the generations of a scripts directory: a reload builds a
// new generation beside the running one (every script compiled and
// loaded) and swaps it in only when it is whole; the old one finishes its
// calls and is freed. A reload that fails leaves the running generation
// untouched and is reported by Status.
//
// The scripts share the state of Server (Server.State).
type Reloader struct {
	Server  *Server      // serves the generations, into whose State they load
	Dir     string       // the scripts directory
	Engines []api.Engine // each loads the files of its extension
	Routes  Routes       // modifier mappings and mounts applied to each generation
	Logger  *slog.Logger // default slog.Default()
	// DrainTimeout bounds how long a replaced generation may take to
	// finish its calls before its VMs are freed anyway (default 30 s).
	DrainTimeout time.Duration
	// LoadTimeout bounds the top level of each script file (the new
	// generation's api.Registrations.LoadTimeout; 0: api.DefaultLoadTimeout). A
	// file over it fails the reload, counted in Server.State.Counters.LoadTimeouts.
	LoadTimeout time.Duration

	lock     chan struct{} // one reload at a time; see acquire
	lockOnce sync.Once
	status   atomic.Pointer[ReloadStatus]
	draining sync.WaitGroup

	printedMu sync.Mutex
	printed   string // fingerprint of the directory at the last reload
}

// acquire takes the reload lock, or gives up when ctx is done (a reload
// whose script hangs must not hang its waiters too).
func (r *Reloader) acquire(ctx context.Context) error {
	r.lockOnce.Do(func() { r.lock = make(chan struct{}, 1) })
	select {
	case r.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("host: waiting for the reload under way: %w", context.Cause(ctx))
	}
}

func (r *Reloader) release() { <-r.lock }

func (r *Reloader) setPrinted(p string) {
	r.printedMu.Lock()
	r.printed = p
	r.printedMu.Unlock()
}

// ReloadStatus says which generation serves and how the last reload went.
type ReloadStatus struct {
	Generation int64         // serving generation (0: none)
	LoadedAt   time.Time     // when it was loaded
	Files      []string      // its script files
	Apps       []string      // "name (engine)"
	RPC        []string      // the RPC functions its scripts registered
	Signals    []uint8       // the signals they registered handlers for
	Timers     int           // their timers and cron entries
	Reloads    int           // generations swapped in, the first load included
	Failures   int           // reloads that failed
	LastError  string        // why the last reload failed ("" when it worked)
	LastTry    time.Time     // when the last reload was tried
	Latency    time.Duration // how long the last successful reload took to build and swap
}

var (
	// ErrReloadFailed wraps the cause of a failed reload.
	ErrReloadFailed = errors.New("host: reload failed")
)

func (r *Reloader) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// Status returns the reloader's status.
func (r *Reloader) Status() ReloadStatus {
	if s := r.status.Load(); s != nil {
		return *s
	}
	return ReloadStatus{}
}

// Reload builds a generation from the directory and swaps it in. On
// failure the serving generation stays and the error is returned (and kept
// in Status). With brutal, the replaced generation's running calls are cut
// short (their contexts are not waited for) instead of drained.
func (r *Reloader) Reload(ctx context.Context, brutal bool) error {
	if err := r.acquire(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrReloadFailed, err)
	}
	defer r.release()
	ctx = r.Server.Context(ctx) // the server's State is set from here on
	state := r.Server.State
	start := time.Now()
	st := r.Status()
	st.LastTry = start
	printed, _ := fingerprint(r.Dir)
	gen, err := loadScripts(ctx, state, r.Dir, r.Engines, r.LoadTimeout)
	if errors.Is(err, api.ErrLoadTimeout) {
		state.Counters.LoadTimeouts.Add(1)
		// The error names the file (api.Registrations.FileContext's cause).
		r.log().Error("script load timed out; the serving generation stays", "dir", r.Dir,
			"timeout", loadTimeout(r.LoadTimeout), "err", err)
	}
	var prev *Generation
	if err == nil {
		if prev, err = r.Server.SetScripts(gen, r.Routes); err != nil {
			gen.Close(ctx)
		}
	}
	if err != nil {
		st.Failures++
		st.LastError = err.Error()
		r.status.Store(&st)
		r.setPrinted(printed)
		r.log().Error("scripts reload failed; the serving generation stays", "dir", r.Dir,
			"generation", st.Generation, "err", err)
		return fmt.Errorf("%w: %w", ErrReloadFailed, err)
	}
	r.setPrinted(printed)
	st = ReloadStatus{Generation: gen.ID, LoadedAt: gen.LoadedAt, Files: gen.Files, RPC: gen.Registrations.RPCNames(),
		Signals: gen.Registrations.SignalNums(), Timers: gen.Registrations.TimerCount(), Reloads: st.Reloads + 1,
		Failures: st.Failures, LastTry: start, Latency: time.Since(start)}
	for _, a := range gen.Apps {
		st.Apps = append(st.Apps, a.Name+" ("+a.Engine+")")
	}
	r.status.Store(&st)
	r.log().Info("scripts loaded", "dir", r.Dir, "generation", gen.ID, "apps", st.Apps, "rpc", st.RPC, "took", st.Latency)
	if prev != nil {
		r.retire(prev, brutal)
	}
	return nil
}

// retire drains and frees a replaced generation in the background.
func (r *Reloader) retire(prev *Generation, brutal bool) {
	timeout := r.DrainTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if brutal {
		timeout = 0
	}
	r.draining.Add(1)
	go func() {
		defer r.draining.Done()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := prev.Close(ctx); err != nil {
			r.log().Warn("replaced generation closed with calls still running", "generation", prev.ID, "err", err)
		}
	}()
}

// Close drains and frees the serving generation and waits for replaced
// ones; call it after the server stopped.
func (r *Reloader) Close(ctx context.Context) error {
	if err := r.acquire(ctx); err != nil {
		return err
	}
	defer r.release()
	var err error
	if gen := r.Server.Generation(); gen != nil {
		err = gen.Close(ctx)
	}
	r.draining.Wait()
	return err
}

// Changed reports whether the directory differs from what the last reload
// saw (names, sizes and modification times of its files).
func (r *Reloader) Changed() bool {
	printed, err := fingerprint(r.Dir)
	r.printedMu.Lock()
	defer r.printedMu.Unlock()
	return err == nil && printed != r.printed
}

// Watch reloads when the directory changes, until ctx is done: it follows
// file system events (fsnotify), waits for quiet before reloading (editors
// save in bursts), and rescans every rescan interval in case events were
// missed (network file systems, overflowing queues).
func (r *Reloader) Watch(ctx context.Context, debounce, rescan time.Duration) error {
	if debounce <= 0 {
		debounce = 200 * time.Millisecond
	}
	if rescan <= 0 {
		rescan = 5 * time.Second
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("host: watching %s: %w", r.Dir, err)
	}
	defer w.Close()
	watchTree := func() {
		filepath.WalkDir(r.Dir+string(filepath.Separator), func(path string, d fs.DirEntry, err error) error { // the separator follows a symlinked directory
			if err == nil && d.IsDir() {
				w.Add(path) // re-adding a watched directory is harmless
			}
			return nil
		})
	}
	watchTree()
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	scan := time.NewTicker(rescan)
	defer scan.Stop()
	// settle waits for quiet, but never longer than rescan after the first
	// change, so a directory written without pause still gets reloaded.
	var pending time.Time
	settle := func() {
		now := time.Now()
		if pending.IsZero() {
			pending = now
		}
		quiet.Reset(max(min(debounce, pending.Add(rescan).Sub(now)), 0))
	}
	for {
		select {
		case <-ctx.Done():
			quiet.Stop()
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op&fsnotify.Create != 0 {
				watchTree() // a new subdirectory of modules
			}
			settle()
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.log().Warn("watching the scripts directory", "err", err)
			settle()
		case <-scan.C:
			watchTree() // the directory may have been replaced (a symlink switched)
			if r.Changed() {
				settle()
			}
		case <-quiet.C:
			pending = time.Time{}
			if r.Changed() {
				r.Reload(ctx, false)
			}
		}
	}
}

func loadTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return api.DefaultLoadTimeout
	}
	return d
}

// fingerprint sums the names, sizes and modification times of the files
// below dir.
func fingerprint(dir string) (string, error) {
	type entry struct {
		path string
		size int64
		mod  time.Time
	}
	var entries []entry
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real // a symlinked scripts directory: its target's files (and a new target differs)
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		entries = append(entries, entry{path, info.Size(), info.ModTime()})
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].path < entries[j].path })
	h := sha256.New()
	for _, e := range entries {
		fmt.Fprintf(h, "%s\x00%d\x00%d\n", e.path, e.size, e.mod.UnixNano())
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}
