package main

// The supervisor is uWSGI's master, kept small: `scripthost serve` opens
// the listening sockets in a parent process that runs no script engine,
// and serves from a child process (the same binary and arguments) that
// inherits them the way a graceful restart passes them on (startServing).
// When the child dies without being asked to (a Go runtime fatal such as
// running out of memory, SIGKILL), the parent starts another: clients
// wait in the listen backlog meanwhile, never refused, and the caches come
// back from their journals, which live in a private directory the parent
// keeps. Requests in flight in the dead child are lost.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/scripthost/scripthost/api"
)

// The environment of a supervised serving process.
const (
	supervisorVar = "SCRIPTHOST_SUPERVISOR" // the supervisor's pid; its presence turns supervision off
	restartsVar   = "SCRIPTHOST_RESTARTS"   // serving processes started after one died
	cacheDirVar   = "SCRIPTHOST_CACHE_DIR"  // where the caches keep their journals
)

// Restart backoff: a serving process that dies soon after it started is
// replaced after a delay that doubles up to the cap; one that lived past
// backoffReset is replaced after the first delay again.
const (
	backoffFirst = 100 * time.Millisecond
	backoffCap   = 5 * time.Second
	backoffReset = 10 * time.Second
)

// supervisedBy returns the pid of this process's supervisor, or 0 when
// it serves on its own.
func supervisedBy() int {
	pid, err := strconv.Atoi(os.Getenv(supervisorVar))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// supervisedRestarts returns how many serving processes the supervisor
// started after one died, before this one.
func supervisedRestarts() int64 {
	n, _ := strconv.ParseInt(os.Getenv(restartsVar), 10, 64)
	return max(n, 0)
}

// journalCaches gives each cache without a store= a journal in the
// supervisor's directory, so that the next serving process replays it.
// Outside supervision it returns caches unchanged.
func journalCaches(caches []api.CacheConfig) []api.CacheConfig {
	dir := os.Getenv(cacheDirVar)
	if dir == "" || supervisedBy() == 0 {
		return caches
	}
	if len(caches) == 0 {
		caches = []api.CacheConfig{{}} // NewCaches's default cache
	}
	caches = slices.Clone(caches)
	for i := range caches {
		if caches[i].Store != "" || caches[i].Backend != "" {
			continue // its own journal, or kept by its backend
		}
		name := caches[i].Name
		if name == "" {
			name = api.DefaultCacheName
		}
		// Hex keeps any cache name a plain file name.
		caches[i].Store = filepath.Join(dir, "cache-"+hex.EncodeToString([]byte(name))+".journal")
	}
	return caches
}

// backoff computes restart delays.
type backoff struct{ next time.Duration }

// delay returns how long to wait before replacing a serving process that
// lived for lived.
func (b *backoff) delay(lived time.Duration) time.Duration {
	if b.next == 0 || lived >= backoffReset {
		b.next = backoffFirst
	}
	d := b.next
	b.next = min(2*b.next, backoffCap)
	return d
}

// listenAll opens every listener serve would open (openListeners), taking
// inherited ones first, so that the supervisor holds them all.
func listenAll(cfg *serveConfig, in *inherited) ([]net.Listener, error) {
	var ls []net.Listener
	open := func(flag, addr string, mode os.FileMode) error {
		l, err := in.listen(addr, mode)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return fmt.Errorf("%s %s: %w", flag, addr, err)
		}
		ls = append(ls, l)
		return nil
	}
	sockets := cfg.sockets
	if len(sockets) == 0 && len(in.byAddr) == 0 {
		sockets = listFlag{"127.0.0.1:3031"}
	}
	kinds := []struct {
		flag  string
		addrs []string
		mode  os.FileMode
	}{
		{"--socket", sockets, 0},
		{"--ops-socket", cfg.opsSockets, 0o600},
		{"--eval-socket", cfg.evalSockets, 0o600},
		{"--http", cfg.https, 0},
	}
	for _, k := range kinds {
		for _, addr := range k.addrs {
			if err := open(k.flag, addr, k.mode); err != nil {
				return nil, err
			}
		}
	}
	return append(ls, in.rest()...), nil
}

// child is a serving process the supervisor started.
type child struct {
	proc    *os.Process
	started time.Time
	ready   <-chan error // nil once read
	serving bool
	asked   bool // asked to stop: its exit is no crash
	status  int  // exit status, once it exited
}

type supervisor struct {
	listeners    []net.Listener
	cacheDir     string
	readyTimeout time.Duration // for a graceful restart's new process
	log          *slog.Logger
	restarts     int64
	backoff      backoff
	exits        chan *child
}

// supervise runs serve's supervisor until it is told to stop and its
// serving process exited, and returns the exit status.
func supervise(ctx context.Context, cfg *serveConfig, log *slog.Logger) int {
	log = log.With("supervisor", os.Getpid())
	in, err := takeInherited(log)
	if err != nil {
		log.Error("scripthost stopped", "err", err)
		return 1
	}
	ls, err := listenAll(cfg, in)
	if err != nil {
		log.Error("scripthost stopped", "err", err)
		return 1
	}
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	dir, err := cacheRuntimeDir()
	if err != nil {
		log.Error("scripthost stopped", "err", err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, l := range ls {
		log.Info("supervisor listening", "addr", l.Addr().String(), "network", l.Addr().Network())
	}
	s := &supervisor{listeners: ls, cacheDir: dir, readyTimeout: cfg.shutdownTimeout, log: log,
		exits: make(chan *child, 4)}
	return s.run(ctx)
}

// cacheRuntimeDir creates the private directory of the caches' journals:
// under XDG_RUNTIME_DIR (memory-backed, per user) when there is one.
func cacheRuntimeDir() (string, error) {
	base := os.Getenv("XDG_RUNTIME_DIR")
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "scripthost-"+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", fmt.Errorf("creating the caches' runtime directory: %w", err)
	}
	return dir, nil // MkdirTemp makes it 0700
}

// start starts a serving process.
func (s *supervisor) start() (*child, error) {
	env := map[string]string{
		supervisorVar: strconv.Itoa(os.Getpid()),
		restartsVar:   strconv.FormatInt(s.restarts, 10),
		cacheDirVar:   s.cacheDir,
	}
	proc, ready, err := startServing(s.listeners, env, servingProcAttr())
	if err != nil {
		return nil, fmt.Errorf("starting a serving process: %w", err)
	}
	c := &child{proc: proc, started: time.Now(), ready: ready}
	go func() {
		ps, err := proc.Wait()
		c.status = exitStatus(ps, err)
		s.exits <- c
	}()
	s.log.Info("serving process started", "pid", proc.Pid, "restarts", s.restarts)
	return c, nil
}

func exitStatus(ps *os.ProcessState, err error) int {
	if err != nil || ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// stop asks c, if any, to stop with sig: its exit is then no crash.
func (s *supervisor) stop(c *child, sig os.Signal) {
	if c == nil {
		return
	}
	c.asked = true
	s.signal(c, sig)
}

func (s *supervisor) signal(c *child, sig os.Signal) {
	if err := c.proc.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.log.Warn("signalling the serving process", "pid", c.proc.Pid, "signal", sig, "err", err)
	}
}

// readyOf returns c's ready channel, or nil (never ready) without c.
func readyOf(c *child) <-chan error {
	if c == nil {
		return nil
	}
	return c.ready
}

// run is the supervisor's loop: it owns every child and timer.
func (s *supervisor) run(ctx context.Context) int {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR2, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	cur, err := s.start()
	if err != nil {
		s.log.Error("scripthost stopped", "err", err)
		return 1
	}
	alive := 1
	var (
		next          *child // a graceful restart's process, until it serves
		nextDeadline  <-chan time.Time
		restartTimer  <-chan time.Time
		stopping      bool
		status        int
		everServed    bool
		done          = ctx.Done()
		signalledInit bool
		// reloadWhenServing: a HUP came while the process was starting.
		reloadWhenServing bool
	)
	beginStop := func(sig os.Signal) {
		s.log.Info("stopping: passing the signal on", "signal", sig)
		stopping, restartTimer, nextDeadline = true, nil, nil
		s.stop(cur, sig)
		s.stop(next, sig)
	}
	for !stopping || alive > 0 {
		select {
		case <-done:
			done = nil
			if !stopping {
				beginStop(syscall.SIGTERM)
			}
		case sig := <-sigs:
			switch {
			case stopping:
			case sig == syscall.SIGINT || sig == syscall.SIGTERM:
				beginStop(sig)
			case sig == syscall.SIGHUP:
				if cur == nil || !cur.serving {
					// It may have read the directory already: reload
					// once it serves.
					s.log.Info("reload deferred until the serving process serves")
					reloadWhenServing = true
					continue
				}
				s.log.Info("reload: passing SIGHUP on", "pid", cur.proc.Pid)
				s.signal(cur, syscall.SIGHUP)
			case sig == syscall.SIGUSR2:
				if cur == nil || next != nil {
					s.log.Info("graceful restart skipped: a serving process is already starting")
					continue
				}
				s.log.Info("graceful restart requested")
				if next, err = s.start(); err != nil {
					s.log.Error("restart failed; the serving process keeps serving", "err", err)
					continue
				}
				alive++
				nextDeadline = time.After(s.readyTimeout)
			}
		case err := <-readyOf(cur):
			cur.ready = nil
			if err == nil {
				cur.serving, everServed = true, true
				if reloadWhenServing {
					reloadWhenServing = false
					s.log.Info("reload: passing SIGHUP on", "pid", cur.proc.Pid)
					s.signal(cur, syscall.SIGHUP)
				}
				if !signalledInit {
					signalledInit = true
					signalReady() // to a scripthost that handed us its listeners
				}
			}
		case err := <-readyOf(next):
			next.ready, nextDeadline = nil, nil
			if err != nil {
				continue // its exit reports the failure
			}
			s.log.Info("the new serving process serves; stopping the old one", "pid", next.proc.Pid, "old", cur.proc.Pid)
			next.serving = true
			s.stop(cur, syscall.SIGTERM)
			cur, next = next, nil
		case <-nextDeadline:
			nextDeadline = nil
			s.log.Error("restart failed; the serving process keeps serving", "err", "the new process did not start serving in time")
			next.asked = true
			next.proc.Kill()
			next = nil
		case c := <-s.exits:
			alive--
			switch {
			case c == next:
				next, nextDeadline = nil, nil
				if !stopping {
					s.log.Error("restart failed; the serving process keeps serving",
						"err", "the new process exited before serving", "pid", c.proc.Pid, "status", c.status)
				}
			case c != cur:
				s.log.Info("old serving process exited", "pid", c.proc.Pid, "status", c.status)
			case c.asked || stopping:
				s.log.Info("serving process exited", "pid", c.proc.Pid, "status", c.status)
				cur, status = nil, c.status
			case !everServed:
				// Never served: a configuration or script error that
				// another try would repeat.
				s.log.Error("the serving process exited before serving; stopping", "pid", c.proc.Pid, "status", c.status)
				cur, status, stopping = nil, c.status, true
				s.stop(next, syscall.SIGTERM)
			default:
				s.restarts++
				lived := time.Since(c.started)
				if next != nil {
					s.log.Error("serving process died; the graceful restart's process takes over",
						"pid", c.proc.Pid, "status", c.status, "lived", lived.Round(time.Millisecond), "restarts", s.restarts)
					cur, next, nextDeadline = next, nil, nil
					continue
				}
				delay := s.backoff.delay(lived)
				s.log.Error("serving process died; starting another", "pid", c.proc.Pid, "status", c.status,
					"lived", lived.Round(time.Millisecond), "restarts", s.restarts, "delay", delay)
				cur = nil
				restartTimer = time.After(delay)
			}
		case <-restartTimer:
			restartTimer = nil
			if cur, err = s.start(); err != nil {
				delay := s.backoff.delay(0)
				s.log.Error("starting a serving process failed; trying again", "err", err, "delay", delay)
				restartTimer = time.After(delay)
				continue
			}
			alive++
		}
	}
	s.log.Info("supervisor exiting", "status", status)
	return status
}
