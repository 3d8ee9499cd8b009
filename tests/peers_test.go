package tests

// Interop harness: starts the real peers scripthost must interoperate with
// (uWSGI 2.0.21 and nginx from Debian 12) as child processes of the test
// binary, on loopback ports or unix sockets of their own, and stops them when
// the test ends.
//
// Facts about the peers this harness relies on:
//   - Debian's uwsgi-core embeds no plugin: every request handler is loaded by
//     name with --plugins (lua51, python3, rpc, ping, ...).
//   - uWSGI 2.0 reloads on SIGTERM unless started with --die-on-term; SIGINT
//     stops it. Without --master, SIGINT to the first worker does not stop the
//     other workers (they are its children and get orphaned), so the harness
//     signals every descendant itself.
//   - nginx resolves a relative `include uwsgi_params;` next to its
//     configuration file, so the harness writes a copy of Debian's file into
//     the nginx prefix. When the tests run as root, the nginx workers run as
//     `nobody` and must be able to reach the prefix.
//
// Processes are found by PID only (the child's PID and its descendants read
// from /proc), never by name.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	// peerStartTimeout bounds how long a peer may take to become ready.
	peerStartTimeout = 15 * time.Second
	// peerStartAttempts is how often a peer is started on a fresh port when
	// the port picked by freeAddr was taken by someone else in between.
	peerStartAttempts = 3
	// logTailLines is how much of a peer's log a failure message shows.
	logTailLines = 40
)

// peerPackages maps the binaries the harness runs to the Debian packages
// that ship them (installed by tests/install-peers.sh).
var peerPackages = map[string]string{
	"uwsgi":    "uwsgi-core (plus uwsgi-plugin-lua5.1 and uwsgi-plugin-python3)",
	"nginx":    "nginx",
	"wrk":      "wrk",
	"chromium": "chromium",
}

// freeAddr returns a loopback TCP address ("127.0.0.1:PORT") that was free a
// moment ago: the kernel picks the port, the listener is closed again.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("freeAddr: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("freeAddr: %v", err)
	}
	return addr
}

// peersVar, set by `make test`, says the peers are installed: a missing
// one then fails the tests that need it. Without it they skip, so that a
// plain `go test ./...` passes on a machine without the peers.
const peersVar = "SCRIPTHOST_PEERS"

// peerSkips counts the tests skipped for a missing peer (see TestMain).
var peerSkips atomic.Int64

// requireBinary returns the path of the named peer binary. A missing peer
// fails the test under `make test` (peersVar), which installs the peers,
// and skips it otherwise.
func requireBinary(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	// nginx lives in /usr/sbin, which is not on every user's PATH.
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv(peersVar) == "" {
		peerSkips.Add(1)
		t.Skip(skipNeedsPeers)
	}
	pkg := "the package that provides it"
	if p, ok := peerPackages[name]; ok {
		pkg = "Debian's " + p
	}
	t.Fatalf("%s not found on PATH: run `make test`, which installs %s "+
		"with tests/install-peers.sh (or run that script as root)", name, pkg)
	return ""
}

const skipNeedsPeers = "needs uWSGI/nginx: run make test"

// testdataFile returns the content of tests/testdata/<rel>.
func testdataFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("reading testdata: %v", err)
	}
	return b
}

// ---------------------------------------------------------------------------
// uWSGI

// uwsgiOptions configures startUWSGI.
type uwsgiOptions struct {
	// Plugins are loaded with --plugins, e.g. {"lua51", "rpc", "ping"}.
	Plugins []string
	// Master adds --master (needed for signals, cache sweeping, respawns).
	Master bool
	// Processes is the number of workers (--processes); 0 means 1.
	Processes int
	// Unix makes uWSGI listen on the unix socket <Dir>/uwsgi.sock instead
	// of a free TCP port on 127.0.0.1.
	Unix bool
	// Files are written into the peer's fresh directory before the start
	// (name relative to that directory -> content). uWSGI runs with that
	// directory as its working directory, so Args can name them relatively.
	Files map[string][]byte
	// Args are extra uWSGI arguments, e.g. {"--lua-load", "rpc.lua"}.
	Args []string
}

// uwsgiPeer is a running uWSGI started by startUWSGI.
type uwsgiPeer struct {
	// Network is "tcp" or "unix"; Addr is "127.0.0.1:PORT" or the socket path.
	Network string
	Addr    string
	// PID is the master's PID (the first worker's without --master).
	PID int
	// Dir is the peer's working directory (Files, pidfile, logs).
	Dir string
	// LogPath is the uWSGI log (--logto); ConsolePath gets its stdout and
	// stderr (messages printed before the log file is opened).
	LogPath     string
	ConsolePath string

	opts  uwsgiOptions
	proc  *childProcess
	ready bool // startup succeeded (else the failure already showed the log)
}

// startUWSGI starts uWSGI as a child process in a fresh t.TempDir(), waits
// until its socket accepts connections and its workers are spawned, and
// stops it (by PID) when the test ends.
func startUWSGI(t testing.TB, opts uwsgiOptions) *uwsgiPeer {
	t.Helper()
	bin := requireBinary(t, "uwsgi")
	if opts.Processes <= 0 {
		opts.Processes = 1
	}
	if len(opts.Plugins) == 0 {
		t.Fatalf("startUWSGI: no plugins: Debian's uwsgi-core embeds none (use e.g. lua51,rpc,ping)")
	}

	var lastErr error
	for attempt := 1; attempt <= peerStartAttempts; attempt++ {
		p := &uwsgiPeer{opts: opts, Dir: t.TempDir()}
		p.LogPath = filepath.Join(p.Dir, "uwsgi.log")
		p.ConsolePath = filepath.Join(p.Dir, "uwsgi.console")
		for name, content := range opts.Files {
			path := filepath.Join(p.Dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatalf("startUWSGI: %v", err)
			}
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatalf("startUWSGI: %v", err)
			}
		}
		if opts.Unix {
			p.Network, p.Addr = "unix", filepath.Join(p.Dir, "uwsgi.sock")
			if len(p.Addr) >= 100 {
				t.Fatalf("startUWSGI: unix socket path too long (%d bytes): %s", len(p.Addr), p.Addr)
			}
		} else {
			p.Network, p.Addr = "tcp", freeAddr(t)
		}

		args := []string{
			"--plugins", strings.Join(opts.Plugins, ","),
			"--socket", p.Addr,
			"--pidfile", filepath.Join(p.Dir, "uwsgi.pid"),
			"--logto", p.LogPath,
			"--die-on-term",
			"--processes", strconv.Itoa(opts.Processes),
		}
		if opts.Master {
			args = append(args, "--master")
		}
		args = append(args, opts.Args...)

		cmd := exec.Command(bin, args...)
		cmd.Dir = p.Dir
		proc, err := startChild("uwsgi", cmd, p.ConsolePath)
		if err != nil {
			t.Fatalf("startUWSGI: %v", err)
		}
		p.proc, p.PID = proc, proc.pid()
		t.Cleanup(func() {
			p.Stop(t)
			if t.Failed() && p.ready {
				t.Logf("uWSGI %s log tail (%s):\n%s", p.Addr, p.LogPath, p.LogTail(logTailLines))
			}
		})

		err = p.waitReady(peerStartTimeout)
		if err == nil {
			p.ready = true
			return p
		}
		lastErr = err
		p.Stop(t)
		if p.Network == "tcp" && strings.Contains(p.LogTail(0), "Address already in use") {
			continue // another process took the port in between: retry
		}
		break
	}
	t.Fatalf("startUWSGI: %v", lastErr)
	return nil
}

// spawnedRe matches the log line of the last worker being spawned.
func (p *uwsgiPeer) spawnedRe() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^spawned uWSGI worker ` + strconv.Itoa(p.opts.Processes) + ` \(`)
}

func (p *uwsgiPeer) waitReady(timeout time.Duration) error {
	spawned := p.spawnedRe()
	deadline := time.Now().Add(timeout)
	for {
		if p.proc.exited() {
			return fmt.Errorf("uwsgi %s exited during startup (%v)\n%s", strings.Join(p.proc.cmd.Args[1:], " "),
				p.proc.exitErr(), p.diagnostics())
		}
		log, _ := os.ReadFile(p.LogPath)
		// uWSGI does not stop when a plugin fails to load (it is loaded before
		// --logto takes effect, so the message is on the console, written
		// before the log that is read just above).
		if console, _ := os.ReadFile(p.ConsolePath); bytes.Contains(console, []byte("UNABLE to load uWSGI plugin")) {
			return fmt.Errorf("uwsgi could not load a plugin of %q (Debian packages uwsgi-plugin-*: "+
				"run `make test` or tests/install-peers.sh)\n%s", strings.Join(p.opts.Plugins, ","), p.diagnostics())
		}
		if spawned.Match(log) && canDial(p.Network, p.Addr) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("uwsgi on %s not ready after %v\n%s", p.Addr, timeout, p.diagnostics())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// canDial reports whether a server accepts connections on addr.
func canDial(network, addr string) bool {
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (p *uwsgiPeer) diagnostics() string {
	var b strings.Builder
	if console := tailFile(p.ConsolePath, 20); strings.TrimSpace(console) != "" {
		fmt.Fprintf(&b, "--- console (%s):\n%s\n", p.ConsolePath, console)
	}
	fmt.Fprintf(&b, "--- log tail (%s):\n%s", p.LogPath, p.LogTail(logTailLines))
	return b.String()
}

// LogTail returns the last n lines of the uWSGI log (all of it when n <= 0).
func (p *uwsgiPeer) LogTail(n int) string { return tailFile(p.LogPath, n) }

// Stop stops uWSGI (idempotent; also done by t.Cleanup): SIGINT to the
// master (and, without --master, to every worker), up to 10 s of grace, then
// SIGKILL to the process and all its descendants.
func (p *uwsgiPeer) Stop(t testing.TB) {
	t.Helper()
	p.proc.stop(t, []stopStep{{syscall.SIGINT, 10 * time.Second}}, !p.opts.Master)
}

// Exchange sends one request packet on a new connection and returns
// everything uWSGI writes until it closes the connection (it answers one
// request per connection). It fails the test on a network error.
func (p *uwsgiPeer) Exchange(t testing.TB, req []byte) []byte {
	t.Helper()
	resp, err := rawExchange(p.Network, p.Addr, req, 10*time.Second)
	if err != nil {
		t.Fatalf("exchange with uWSGI %s: %v (got %d bytes: % x)\n%s", p.Addr, err, len(resp), resp, p.LogTail(20))
	}
	return resp
}

// rawExchange dials addr, writes req, half-closes the write side when it can,
// and reads until EOF, all within timeout.
func rawExchange(network, addr string, req []byte, timeout time.Duration) ([]byte, error) {
	c, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}

// uwsgiPacket frames body with the 4-byte uwsgi header
// (modifier1, u16 little-endian size, modifier2).
func uwsgiPacket(modifier1 byte, body []byte, modifier2 byte) []byte {
	if len(body) > 0xffff {
		panic("uwsgiPacket: body larger than 65535 bytes")
	}
	out := make([]byte, 0, 4+len(body))
	out = append(out, modifier1, byte(len(body)), byte(len(body)>>8), modifier2)
	return append(out, body...)
}

// uwsgiArray encodes items as a uwsgi array (u16 LE length + bytes each),
// the body of an RPC request (function name, then the arguments).
func uwsgiArray(items ...string) []byte {
	var b []byte
	for _, it := range items {
		b = append(b, byte(len(it)), byte(len(it)>>8))
		b = append(b, it...)
	}
	return b
}

// uwsgiVars encodes key/value pairs (k1, v1, k2, v2, ...) as a uwsgi vars
// block; it is the same encoding as uwsgiArray.
func uwsgiVars(kv ...string) []byte {
	if len(kv)%2 != 0 {
		panic("uwsgiVars: odd number of arguments")
	}
	return uwsgiArray(kv...)
}

// ---------------------------------------------------------------------------
// nginx

// debianUWSGIParams reproduces the directives of Debian 12's
// /etc/nginx/uwsgi_params (nginx 1.22.1 with the Debian security update that
// sends HTTP_HOST as $host), in the same order.
const debianUWSGIParams = `
uwsgi_param  QUERY_STRING       $query_string;
uwsgi_param  REQUEST_METHOD     $request_method;
uwsgi_param  CONTENT_TYPE       $content_type;
uwsgi_param  CONTENT_LENGTH     $content_length;

uwsgi_param  REQUEST_URI        $request_uri;
uwsgi_param  PATH_INFO          $document_uri;
uwsgi_param  DOCUMENT_ROOT      $document_root;
uwsgi_param  SERVER_PROTOCOL    $server_protocol;
uwsgi_param  REQUEST_SCHEME     $scheme;
uwsgi_param  HTTPS              $https if_not_empty;

uwsgi_param  REMOTE_ADDR        $remote_addr;
uwsgi_param  REMOTE_PORT        $remote_port;
uwsgi_param  SERVER_PORT        $server_port;
uwsgi_param  SERVER_NAME        $server_name;

# Debian security update: the host without the client's port, not $http_host.
uwsgi_param  HTTP_HOST        $host;
`

// nginxConfTemplate is filled in by startNginx: {{PREFIX}}, {{LISTEN}} and
// {{LOCATIONS}}.
const nginxConfTemplate = `# generated by the scripthost test harness
worker_processes 1;
daemon off;
master_process on;
pid "{{PREFIX}}/nginx.pid";
lock_file "{{PREFIX}}/nginx.lock";
error_log "{{PREFIX}}/error.log" notice;

events {
    worker_connections 1024;
}

http {
    access_log off;
    client_body_temp_path "{{PREFIX}}/client_body_temp";
    proxy_temp_path       "{{PREFIX}}/proxy_temp";
    fastcgi_temp_path     "{{PREFIX}}/fastcgi_temp";
    uwsgi_temp_path       "{{PREFIX}}/uwsgi_temp";
    scgi_temp_path        "{{PREFIX}}/scgi_temp";

    server {
        listen {{LISTEN}};
        server_name localhost;

{{LOCATIONS}}
    }
}
`

// nginxPeer is a running nginx started by startNginx.
type nginxPeer struct {
	// HTTPAddr is the "127.0.0.1:PORT" nginx listens on.
	HTTPAddr string
	// PID is the nginx master's PID.
	PID int
	// Prefix holds the configuration, uwsgi_params, pid, logs and temp dirs.
	Prefix       string
	ConfPath     string
	ErrorLogPath string
	ConsolePath  string

	proc  *childProcess
	ready bool
}

// startNginx starts nginx (one worker, in the foreground as a child process)
// on a free 127.0.0.1 port with a server block holding locations, e.g.
//
//	location / { include uwsgi_params; uwsgi_pass 127.0.0.1:3031; uwsgi_modifier1 6; }
//
// It checks the configuration with `nginx -t` first, waits until the port
// accepts connections, and stops nginx (by PID) when the test ends.
func startNginx(t testing.TB, locations string) *nginxPeer {
	t.Helper()
	bin := requireBinary(t, "nginx")

	var lastErr error
	for attempt := 1; attempt <= peerStartAttempts; attempt++ {
		p := &nginxPeer{HTTPAddr: freeAddr(t), Prefix: nginxPrefix(t)}
		p.ConfPath = filepath.Join(p.Prefix, "nginx.conf")
		p.ErrorLogPath = filepath.Join(p.Prefix, "error.log")
		p.ConsolePath = filepath.Join(p.Prefix, "console.log")

		conf := strings.NewReplacer(
			"{{PREFIX}}", p.Prefix,
			"{{LISTEN}}", p.HTTPAddr,
			"{{LOCATIONS}}", locations,
		).Replace(nginxConfTemplate)
		if err := os.WriteFile(p.ConfPath, []byte(conf), 0o644); err != nil {
			t.Fatalf("startNginx: %v", err)
		}
		if err := os.WriteFile(filepath.Join(p.Prefix, "uwsgi_params"), []byte(debianUWSGIParams), 0o644); err != nil {
			t.Fatalf("startNginx: %v", err)
		}
		// -p: relative paths (include uwsgi_params) resolve in the prefix;
		// -e: the startup error log, before the configuration is read, goes
		// there too instead of the packaged log directory.
		base := []string{"-p", p.Prefix + "/", "-e", p.ErrorLogPath, "-c", p.ConfPath}

		check := exec.Command(bin, append([]string{"-t"}, base...)...)
		if out, err := check.CombinedOutput(); err != nil {
			t.Fatalf("startNginx: nginx -t failed: %v\n%s\n--- %s:\n%s", err, out, p.ConfPath, conf)
		}

		proc, err := startChild("nginx", exec.Command(bin, base...), p.ConsolePath)
		if err != nil {
			t.Fatalf("startNginx: %v", err)
		}
		p.proc, p.PID = proc, proc.pid()
		t.Cleanup(func() {
			p.Stop(t)
			if t.Failed() && p.ready {
				t.Logf("nginx %s error log tail (%s):\n%s", p.HTTPAddr, p.ErrorLogPath, p.LogTail(logTailLines))
			}
		})

		err = p.waitReady(peerStartTimeout)
		if err == nil {
			p.ready = true
			return p
		}
		lastErr = err
		p.Stop(t)
		if strings.Contains(p.LogTail(0), "Address already in use") {
			continue
		}
		break
	}
	t.Fatalf("startNginx: %v", lastErr)
	return nil
}

// nginxPrefix creates the nginx prefix directory. It is not a t.TempDir():
// those are 0700 and, when the tests run as root, the nginx workers run as
// nobody and must reach their temp dirs. It is removed when the test ends
// (after nginx is stopped: cleanups run last-registered first).
func nginxPrefix(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "scripthost-nginx-")
	if err != nil {
		t.Fatalf("nginx prefix: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing nginx prefix: %v", err)
		}
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("nginx prefix: %v", err)
	}
	if os.Geteuid() == 0 {
		// Every ancestor must be searchable by the unprivileged workers.
		for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err != nil {
				t.Fatalf("nginx prefix: %v", err)
			}
			if fi.Mode().Perm()&0o001 == 0 {
				t.Fatalf("nginx prefix %s: ancestor %s is not searchable by others (mode %v), but the "+
					"nginx workers run as nobody when the tests run as root: set TMPDIR to a "+
					"world-searchable directory", dir, d, fi.Mode().Perm())
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return dir
}

func (p *nginxPeer) waitReady(timeout time.Duration) error {
	pidfile := filepath.Join(p.Prefix, "nginx.pid")
	deadline := time.Now().Add(timeout)
	for {
		if p.proc.exited() {
			return fmt.Errorf("nginx exited during startup (%v)\n%s", p.proc.exitErr(), p.diagnostics())
		}
		if b, err := os.ReadFile(pidfile); err == nil && len(bytes.TrimSpace(b)) > 0 && canDial("tcp", p.HTTPAddr) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nginx on %s not ready after %v\n%s", p.HTTPAddr, timeout, p.diagnostics())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (p *nginxPeer) diagnostics() string {
	var b strings.Builder
	if console := tailFile(p.ConsolePath, 20); strings.TrimSpace(console) != "" {
		fmt.Fprintf(&b, "--- console (%s):\n%s\n", p.ConsolePath, console)
	}
	fmt.Fprintf(&b, "--- error log tail (%s):\n%s", p.ErrorLogPath, p.LogTail(logTailLines))
	return b.String()
}

// URL returns "http://HTTPAddr" + path.
func (p *nginxPeer) URL(path string) string { return "http://" + p.HTTPAddr + path }

// LogTail returns the last n lines of nginx's error log (all when n <= 0).
func (p *nginxPeer) LogTail(n int) string { return tailFile(p.ErrorLogPath, n) }

// Stop stops nginx (idempotent; also done by t.Cleanup): SIGQUIT (graceful),
// then SIGTERM (fast), then SIGKILL to the master and its workers.
func (p *nginxPeer) Stop(t testing.TB) {
	t.Helper()
	p.proc.stop(t, []stopStep{{syscall.SIGQUIT, 5 * time.Second}, {syscall.SIGTERM, 5 * time.Second}}, false)
}

// ---------------------------------------------------------------------------
// child processes

// childProcess is a peer started with os/exec and reaped by a goroutine.
type childProcess struct {
	name     string
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd.Wait returned
	waitErr  error
	console  *os.File
	stopOnce sync.Once

	watchdog     *exec.Cmd
	watchdogPipe *os.File // write end; closed (EOF) = kill the group
}

type stopStep struct {
	sig   syscall.Signal
	grace time.Duration
}

var subreaperOnce sync.Once

// startChild starts cmd with stdout and stderr going to consolePath.
func startChild(name string, cmd *exec.Cmd, consolePath string) (*childProcess, error) {
	// Make this test binary the reaper of orphaned descendants (e.g. the
	// other workers of a uWSGI without --master when the first one exits),
	// so that they can be found, killed and reaped instead of lingering as
	// zombies. Best effort.
	subreaperOnce.Do(becomeSubreaper)
	console, err := os.Create(consolePath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = console, console
	// If the test binary dies without running its cleanups (a timeout
	// panic, SIGKILL), the kernel kills the peer's main process
	// (Pdeathsig) and the watchdog kills the rest of its process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		console.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &childProcess{name: name, cmd: cmd, done: make(chan struct{}), console: console}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	c.startWatchdog()
	return c, nil
}

// startWatchdog starts a bash that SIGKILLs the peer's process group once
// this test binary is gone: it waits for EOF on a pipe whose only writer is
// this process, and ignores the signals a terminal or `go test` sends. stop
// kills it first in the normal case. Best effort: without bash, no watchdog.
func (c *childProcess) startWatchdog() {
	bash, err := exec.LookPath("bash")
	if err != nil {
		return
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return
	}
	defer pr.Close()
	wd := exec.Command(bash, "-c", `trap "" INT TERM HUP QUIT; read -r _; kill -KILL -- -"$1" 2>/dev/null`,
		"peer-watchdog", strconv.Itoa(c.pid()))
	wd.Stdin = pr
	if err := wd.Start(); err != nil {
		pw.Close()
		return
	}
	c.watchdog, c.watchdogPipe = wd, pw
}

func (c *childProcess) stopWatchdog() {
	if c.watchdog == nil {
		return
	}
	_ = c.watchdog.Process.Kill()
	_ = c.watchdog.Wait()
	c.watchdogPipe.Close()
}

func (c *childProcess) pid() int { return c.cmd.Process.Pid }

func (c *childProcess) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// exitErr is cmd.Wait's result; only valid once exited() is true.
func (c *childProcess) exitErr() error {
	<-c.done
	if c.waitErr == nil {
		return errors.New("exit status 0")
	}
	return c.waitErr
}

// stop signals the process (and, with signalDescendants, every descendant)
// step by step, waiting each step's grace period for the process and all its
// descendants to end, then SIGKILLs whatever is left and reaps the process.
func (c *childProcess) stop(t testing.TB, steps []stopStep, signalDescendants bool) {
	c.stopOnce.Do(func() {
		defer c.console.Close()
		defer c.stopWatchdog()
		root := c.pid()
		known := map[int]procInfo{}
		collect := func() {
			if c.exited() {
				return
			}
			for _, d := range descendants(root) {
				if _, ok := known[d.pid]; !ok {
					known[d.pid] = d
				}
			}
		}
		allGone := func() bool {
			if !c.exited() {
				return false
			}
			for _, d := range known {
				if d.alive() {
					return false
				}
			}
			return true
		}
		collect()
		for _, st := range steps {
			if !c.exited() {
				_ = c.cmd.Process.Signal(st.sig)
			}
			if signalDescendants {
				for _, d := range known {
					d.signal(st.sig)
				}
			}
			deadline := time.Now().Add(st.grace)
			for !allGone() && time.Now().Before(deadline) {
				collect()
				time.Sleep(20 * time.Millisecond)
			}
			if allGone() {
				break
			}
		}
		if !allGone() {
			collect()
			var tried []string
			for _, st := range steps {
				tried = append(tried, fmt.Sprintf("%v + %v", st.sig, st.grace))
			}
			t.Logf("%s (PID %d) still running after %s: sending SIGKILL", c.name, root, strings.Join(tried, ", "))
			if !c.exited() {
				_ = c.cmd.Process.Kill()
			}
			for _, d := range known {
				d.signal(syscall.SIGKILL)
			}
		}
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (PID %d) not reaped 10 s after SIGKILL", c.name, root)
		}
		// Reap descendants that were orphaned to this process (subreaper).
		deadline := time.Now().Add(5 * time.Second)
		for _, d := range known {
			for d.alive() || d.isZombie() { // same PID and start time: not recycled
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(d.pid, &ws, syscall.WNOHANG, nil)
				if err != nil || pid == d.pid {
					break // not our child (its parent reaps it), or reaped
				}
				if time.Now().After(deadline) {
					t.Errorf("%s descendant PID %d still not gone", c.name, d.pid)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
}

// procInfo identifies a process by PID and start time, so that a recycled
// PID is never mistaken for it.
type procInfo struct {
	pid   int
	start uint64
}

// readStat parses /proc/PID/stat: state, parent PID and start time.
func readStat(pid int) (state byte, ppid int, start uint64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, 0, false
	}
	// The command name (field 2) is in parentheses and may contain spaces
	// or parentheses: the fields after the last ')' are unambiguous.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[19] field 22 (starttime).
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, 0, false
	}
	return f[0][0], ppid, start, true
}

// alive reports whether the process still runs (a zombie does not).
func (p procInfo) alive() bool {
	state, _, start, ok := readStat(p.pid)
	return ok && start == p.start && state != 'Z' && state != 'X'
}

func (p procInfo) isZombie() bool {
	state, _, start, ok := readStat(p.pid)
	return ok && start == p.start && state == 'Z'
}

func (p procInfo) signal(sig syscall.Signal) {
	if p.alive() {
		_ = syscall.Kill(p.pid, sig)
	}
}

// descendants lists the living descendants of pid, found through the parent
// PIDs in /proc.
func descendants(pid int) []procInfo {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]procInfo{}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, ppid, start, ok := readStat(n)
		if !ok || state == 'Z' || state == 'X' {
			continue
		}
		children[ppid] = append(children[ppid], procInfo{pid: n, start: start})
	}
	var out []procInfo
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// tailFile returns the last n lines of a file (all of it when n <= 0), or a
// note when it cannot be read.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	s := strings.TrimRight(string(b), "\n")
	if n <= 0 {
		return s
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
