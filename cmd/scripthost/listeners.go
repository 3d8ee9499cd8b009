package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// Listeners can come from the process that started this one: systemd
// socket activation (LISTEN_PID, LISTEN_FDS) or scripthost's own graceful
// restart, which starts the new binary with its listeners and sets
// inheritVar. Inherited listeners start at file descriptor 3.
const (
	inheritVar = "SCRIPTHOST_INHERITED_LISTENERS" // set by a restarting scripthost
	readyVar   = "SCRIPTHOST_READY_FD"            // where the new process says it serves
	firstFD    = 3
)

// inherited holds listeners passed by the parent, matched to the
// configured addresses as they are asked for.
type inherited struct {
	byAddr map[string]net.Listener
}

// takeInherited adopts the listeners passed to this process, if any, and
// clears the environment so scripts' children do not see them.
func takeInherited(log *slog.Logger) (*inherited, error) {
	in := &inherited{byAddr: map[string]net.Listener{}}
	n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	pid, _ := strconv.Atoi(os.Getenv("LISTEN_PID"))
	ours := os.Getenv(inheritVar) != ""
	for _, v := range []string{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", inheritVar} {
		os.Unsetenv(v)
	}
	if n <= 0 || (pid != os.Getpid() && !ours) {
		return in, nil
	}
	for fd := firstFD; fd < firstFD+n; fd++ {
		f := os.NewFile(uintptr(fd), "listener-"+strconv.Itoa(fd))
		l, err := net.FileListener(f)
		f.Close() // FileListener made its own copy
		if err != nil {
			return nil, fmt.Errorf("inherited file descriptor %d is not a listening socket: %w", fd, err)
		}
		if ul, ok := l.(*net.UnixListener); ok {
			// This process owns the socket file now, unless a supervisor
			// holds it for the serving processes it starts.
			ul.SetUnlinkOnClose(supervisedBy() == 0)
		}
		in.byAddr[listenerKey(l.Addr())] = l
		log.Info("inherited listener", "addr", l.Addr().String(), "network", l.Addr().Network())
	}
	return in, nil
}

func listenerKey(a net.Addr) string { return a.Network() + " " + a.String() }

// listen returns the inherited listener for addr, or a new one.
func (in *inherited) listen(addr string, unixMode os.FileMode) (net.Listener, error) {
	network, address, err := uwsgi.SplitAddr(addr)
	if err != nil {
		return nil, err
	}
	if network == "tcp" {
		if ta, err := net.ResolveTCPAddr("tcp", address); err == nil {
			if l, ok := in.byAddr[listenerKey(ta)]; ok {
				delete(in.byAddr, listenerKey(ta))
				return l, nil
			}
		}
	} else {
		ua := &net.UnixAddr{Net: "unix", Name: address}
		if l, ok := in.byAddr[listenerKey(ua)]; ok {
			delete(in.byAddr, listenerKey(ua))
			return l, nil
		}
	}
	l, err := host.Listen(addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" && unixMode != 0 && !strings.HasPrefix(address, "@") {
		if err := os.Chmod(address, unixMode); err != nil {
			l.Close()
			return nil, fmt.Errorf("setting the mode of %s: %w", address, err)
		}
	}
	return l, nil
}

// rest returns inherited listeners no configured address asked for.
func (in *inherited) rest() []net.Listener {
	var ls []net.Listener
	for k, l := range in.byAddr {
		ls = append(ls, l)
		delete(in.byAddr, k)
	}
	return ls
}

// signalReady tells a restarting parent that this process serves.
func signalReady() {
	fd, err := strconv.Atoi(os.Getenv(readyVar))
	os.Unsetenv(readyVar)
	if err != nil || fd < firstFD {
		return
	}
	f := os.NewFile(uintptr(fd), "ready")
	f.Write([]byte("ready\n"))
	f.Close()
}

// startServing starts a new scripthost process (the binary on disk, this
// process's arguments) that serves the given listeners, with env added to
// (or replacing entries of) this process's environment and sys as its
// process attributes. ready receives nil once the new process serves, or
// an error if it exits first.
//
// The listeners' descriptors go to the new process by number
// (syscall.ForkExec): turning them into *os.File, as os/exec needs, would
// switch them to blocking mode, a flag the sockets share with this
// process's own listeners, whose accept would then block a thread that
// closing cannot wake.
func startServing(listeners []net.Listener, env map[string]string, sys *syscall.SysProcAttr) (proc *os.Process, ready <-chan error, err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	fds := []uintptr{os.Stdin.Fd(), os.Stdout.Fd(), os.Stderr.Fd()}
	for _, l := range listeners {
		sc, ok := l.(syscall.Conn)
		if !ok {
			return nil, nil, fmt.Errorf("listener %s cannot be passed on", l.Addr())
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return nil, nil, err
		}
		// The descriptor stays valid after Control: the listener is open
		// until this process has handed it over.
		if err := rc.Control(func(fd uintptr) { fds = append(fds, fd) }); err != nil {
			return nil, nil, err
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	fds = append(fds, w.Fd())
	vars := map[string]string{
		"LISTEN_FDS": strconv.Itoa(len(listeners)),
		inheritVar:   "1",
		readyVar:     strconv.Itoa(firstFD + len(listeners)),
	}
	for k, v := range env {
		vars[k] = v
	}
	pid, err := syscall.ForkExec(exe, append([]string{exe}, os.Args[1:]...),
		&syscall.ProcAttr{Env: mergeEnv(os.Environ(), vars), Files: fds, Sys: sys})
	w.Close()
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	if proc, err = os.FindProcess(pid); err != nil {
		r.Close()
		return nil, nil, err
	}
	readyc := make(chan error, 1)
	go func() {
		defer r.Close()
		buf := make([]byte, 16)
		n, err := io.ReadAtLeast(r, buf, 1)
		if n > 0 {
			err = nil
		} else if err == io.EOF {
			err = errors.New("the new process exited before serving")
		}
		readyc <- err
	}()
	return proc, readyc, nil
}

// mergeEnv returns environ with vars set: entries of the same names are
// dropped rather than shadowed (exec keeps the first of duplicates).
func mergeEnv(environ []string, vars map[string]string) []string {
	out := make([]string, 0, len(environ)+len(vars))
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if _, set := vars[k]; !set {
			out = append(out, kv)
		}
	}
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

// errRestartBySupervisor: a supervised process leaves graceful restarts
// to its supervisor, which starts the new process and then stops this one.
var errRestartBySupervisor = errors.New("restarts are the supervisor's: asked it to restart")

// restart starts a new scripthost process with the same arguments and the
// given listeners, and waits (up to timeout) until it serves. On success
// the caller drains and exits; on failure it keeps serving. When ctx ends
// first (SIGTERM), the new process is ended: the caller stops.
func restart(ctx context.Context, listeners []net.Listener, timeout time.Duration, log *slog.Logger) error {
	if sup := supervisedBy(); sup != 0 {
		if err := syscall.Kill(sup, syscall.SIGUSR2); err != nil {
			return fmt.Errorf("asking the supervisor (pid %d) to restart: %w", sup, err)
		}
		return fmt.Errorf("%w (pid %d)", errRestartBySupervisor, sup)
	}
	proc, ready, err := startServing(listeners, nil, nil)
	if err != nil {
		return err
	}
	log.Info("restarting: new process started", "pid", proc.Pid)
	select {
	case err := <-ready:
		if err != nil {
			proc.Kill()
			proc.Wait()
			return err
		}
	case <-time.After(timeout):
		proc.Kill()
		proc.Wait()
		return errors.New("the new process did not start serving in time")
	case <-ctx.Done():
		// Asked to stop meanwhile: stopping wins over restarting.
		proc.Kill()
		proc.Wait()
		return errors.New("stopping: the new process was ended")
	}
	// The new process serves the same sockets: closing ours must not
	// remove their files.
	for _, l := range listeners {
		if ul, ok := l.(interface{ SetUnlinkOnClose(bool) }); ok {
			ul.SetUnlinkOnClose(false)
		}
	}
	// The new process is on its own now; it is not our child to wait for.
	proc.Release()
	return nil
}
