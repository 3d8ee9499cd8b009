package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// The client subcommands: rpc, ping, signal and cache against any uwsgi
// server (scripthost's or uWSGI's), through api/uwsgi's Client.

// clientStdin is where "cache ... set KEY -" reads the value (tests swap it).
var clientStdin io.Reader = os.Stdin

const clientAddrHelp = `ADDR is host:port or a unix socket: unix:/path, a path with a slash
(/path, ./x, ../x.sock), x.sock or @abstract.
`

const rpcUsage = `Usage: scripthost rpc [--raw] [--timeout D] [--no-newline] ADDR FUNC [ARG...]

Call the RPC function FUNC (modifier1 173) with up to 254 arguments and print
its result. Arguments cannot be empty (uWSGI drops empty items); put -- before
arguments that start with "-". Exit status 1 when there is no result.

` + clientAddrHelp + `
Examples:
  scripthost rpc 127.0.0.1:3031 hello
  scripthost rpc /run/app.sock add 2 3
  scripthost rpc --raw 127.0.0.1:3031 httphello     # raw mode (modifier2 1)
  scripthost rpc 127.0.0.1:3031 neg --timeout 30s -- -5

Flags:
`

const pingUsage = `Usage: scripthost ping [--timeout D] ADDR

Ping a uwsgi server (modifier1 100). Prints PONG, or the server's warning
message when it has one. Exit status 1 when the server does not answer.

` + clientAddrHelp + `
Examples:
  scripthost ping 127.0.0.1:3031
  scripthost ping unix:/run/app.sock --timeout 1s

Flags:
`

const spoolUsage = `Usage: scripthost spool [--timeout D] ADDR KEY=VALUE...

Send a job to a server's spooler (modifier1 17), as a uWSGI node's spool
packet: the pairs are the job's vars (uWSGI's keys: spooler picks the spool
directory, priority a subdirectory, at the earliest Unix time to run). Exit
status 0 when the server stored the job ([255, 0, 1]), 1 when it refused it
(no spooler, a bad job, a full disk) or did not answer.

` + clientAddrHelp + `
Examples:
  scripthost spool 127.0.0.1:3031 task=mail to=a@example.org
  scripthost spool --timeout 2s /run/app.sock task=report at=1767225600
`

const signalUsage = `Usage: scripthost signal [--timeout D] ADDR NUM

Raise uwsgi signal NUM (0..255, modifier1 110) on a server. Exit status 0 when
the server took the signal, which is all uWSGI says: it acknowledges a signal
that no handler is registered for as well, and drops it. A scripthost server
says so instead of queuing it: that is printed as a warning, and the exit
status is 0 all the same, so that it means one thing against both servers.
Exit status 1 when the server refused the signal (uWSGI without a master, a
full queue) or did not answer.

` + clientAddrHelp + `
Examples:
  scripthost signal 127.0.0.1:3031 17
  scripthost signal /run/app.sock 30 --timeout 1s

Flags:
`

const cacheUsage = `Usage: scripthost cache ADDR COMMAND [KEY] [VALUE]
           [--cache NAME] [--expires SECONDS] [--timeout D] [--no-newline]

Use a server's cache through the magic interface (modifier1 111/17):
  get KEY            print the value (exit 1 when missing)
  set KEY VALUE      store VALUE; fails when KEY exists (uWSGI semantics)
  update KEY VALUE   store VALUE, creating or overwriting KEY
  del KEY            remove KEY (exit 1 when missing)
  exists KEY         print true (exit 0) or false (exit 1)
  clear              remove every item of the cache
  num KEY            print the counter KEY in decimal (exit 1 when missing
                     or not a counter)
  inc KEY [N]        add N (default 1) to the counter KEY, print the result;
  dec KEY [N]        subtract N (default 1);
  mul KEY [N]        multiply by N (default 2);
  div KEY [N]        divide by N (default 2; by 0 gives 0, as in uWSGI)
VALUE "-" reads the value from standard input. Counters are uWSGI's
(cache_inc, cache_num): an 8-byte integer, which get prints raw. A missing
counter counts as 0 and is created with --expires; an existing one keeps its
expiry. The magic interface has no counter command, so inc, dec, mul and div
read the item and write the result: another client updating the same key at
that moment can lose its update.

` + clientAddrHelp + `
Examples:
  scripthost cache 127.0.0.1:3031 set greeting hello --expires 60
  scripthost cache 127.0.0.1:3031 get greeting
  scripthost cache /run/app.sock update config - --cache settings < config.json
  scripthost cache 127.0.0.1:3031 clear --cache sessions
  scripthost cache 127.0.0.1:3031 inc requests
  scripthost cache 127.0.0.1:3031 num requests

Flags:
`

// clientFlags returns a FlagSet whose --help prints usage and the flags.
func clientFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// clientParse parses flags that may come before, between or after the
// positional arguments, which it returns; "--" ends the flags. It returns
// the exit status for a parse failure (0 for --help, 2 otherwise).
func clientParse(fs *flag.FlagSet, args []string) (pos []string, status int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0, false
			}
			return nil, 2, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// clientUsageError reports bad usage: exit status 2.
func clientUsageError(stderr io.Writer, name, format string, args ...any) int {
	fmt.Fprintf(stderr, "scripthost %s: %s\nRun 'scripthost %s --help' for usage.\n", name, fmt.Sprintf(format, args...), name)
	return 2
}

// clientTimeout is the --timeout flag shared by the subcommands.
func clientTimeout(fs *flag.FlagSet) *time.Duration {
	return fs.Duration("timeout", 10*time.Second, "time limit of the whole call, including the connect (0: none)")
}

// newCLIClient returns a client for addr and a context bounded by timeout.
func newCLIClient(ctx context.Context, addr string, timeout time.Duration) (*uwsgi.Client, context.Context, context.CancelFunc) {
	c := uwsgi.NewClient(addr)
	cancel := context.CancelFunc(func() {})
	if timeout > 0 {
		c.Timeout = timeout
		ctx, cancel = context.WithTimeout(ctx, timeout)
	}
	return c, ctx, func() {
		cancel()
		c.Close()
	}
}

func writeResult(stdout io.Writer, b []byte, newline bool) {
	stdout.Write(b)
	if newline {
		io.WriteString(stdout, "\n")
	}
}

func cmdRPC(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := clientFlags("rpc", rpcUsage, stderr)
	raw := fs.Bool("raw", false, "raw mode (modifier2 1): the result is every byte until the server closes")
	noNewline := fs.Bool("no-newline", false, "do not print a newline after the result")
	timeout := clientTimeout(fs)
	pos, status, ok := clientParse(fs, args)
	if !ok {
		return status
	}
	if len(pos) < 2 {
		return clientUsageError(stderr, "rpc", "want ADDR FUNC [ARG...]")
	}
	addr, fn, fargs := pos[0], pos[1], pos[2:]
	if len(fargs) > 254 {
		return clientUsageError(stderr, "rpc", "%d arguments, at most 254 are allowed", len(fargs))
	}
	for i, a := range fargs {
		if a == "" {
			return clientUsageError(stderr, "rpc", "argument %d is empty (uwsgi cannot send empty arguments)", i+1)
		}
	}
	c, ctx, done := newCLIClient(ctx, addr, *timeout)
	defer done()
	bargs := make([][]byte, len(fargs))
	for i, a := range fargs {
		bargs[i] = []byte(a)
	}
	var out []byte
	var err error
	if *raw {
		out, err = c.CallRaw(ctx, fn, bargs...)
	} else {
		out, err = c.Call(ctx, fn, bargs...)
	}
	var re *uwsgi.RemoteError
	switch {
	case err == nil:
		writeResult(stdout, out, !*noNewline)
		return 0
	case errors.As(err, &re):
		fmt.Fprintf(stderr, "scripthost rpc: %s on %s: %s: %s\n", fn, addr, re.Code, re.Message)
	case errors.Is(err, uwsgi.ErrNoResult):
		fmt.Fprintf(stderr, "scripthost rpc: no result from %s on %s (unknown function, empty result or script error)\n", fn, addr)
	default:
		fmt.Fprintf(stderr, "scripthost rpc: %s on %s: %v\n", fn, addr, err)
	}
	return 1
}

func cmdPing(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := clientFlags("ping", pingUsage, stderr)
	timeout := clientTimeout(fs)
	pos, status, ok := clientParse(fs, args)
	if !ok {
		return status
	}
	if len(pos) != 1 {
		return clientUsageError(stderr, "ping", "want exactly one ADDR")
	}
	c, ctx, done := newCLIClient(ctx, pos[0], *timeout)
	defer done()
	warning, err := c.Ping(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "scripthost ping: %s: %v\n", pos[0], err)
		return 1
	}
	if warning == "" {
		warning = "PONG"
	}
	fmt.Fprintln(stdout, warning)
	return 0
}

func cmdSignal(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := clientFlags("signal", signalUsage, stderr)
	timeout := clientTimeout(fs)
	pos, status, ok := clientParse(fs, args)
	if !ok {
		return status
	}
	if len(pos) != 2 {
		return clientUsageError(stderr, "signal", "want ADDR NUM")
	}
	num, err := strconv.ParseUint(pos[1], 10, 8)
	if err != nil {
		return clientUsageError(stderr, "signal", "invalid signal number %q (want 0..255)", pos[1])
	}
	c, ctx, done := newCLIClient(ctx, pos[0], *timeout)
	defer done()
	err = c.Signal(ctx, uint8(num))
	if err == nil {
		return 0
	}
	if msg, ok := noSignalHandler(err); ok {
		fmt.Fprintf(stderr, "scripthost signal: warning: signal %d on %s: %s (uWSGI acknowledges such a signal and drops it)\n",
			num, pos[0], msg)
		return 0
	}
	fmt.Fprintf(stderr, "scripthost signal: signal %d on %s: %v\n", num, pos[0], err)
	return 1
}

func cmdSpool(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := clientFlags("spool", spoolUsage, stderr)
	timeout := clientTimeout(fs)
	pos, status, ok := clientParse(fs, args)
	if !ok {
		return status
	}
	if len(pos) < 2 {
		return clientUsageError(stderr, "spool", "want ADDR KEY=VALUE...")
	}
	var vars uwsgi.Vars
	for _, kv := range pos[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return clientUsageError(stderr, "spool", "invalid pair %q (want KEY=VALUE)", kv)
		}
		vars = vars.Add(k, v)
	}
	c, ctx, done := newCLIClient(ctx, pos[0], *timeout)
	defer done()
	if err := c.Spool(ctx, vars); err != nil {
		fmt.Fprintf(stderr, "scripthost spool: %s: %v\n", pos[0], err)
		return 1
	}
	return 0
}

// noSignalHandler reports whether err is a scripthost server saying that
// no handler is registered for the signal (its error frame: not found, or
// a failure saying so), and returns the server's message.
func noSignalHandler(err error) (string, bool) {
	var re *uwsgi.RemoteError
	if !errors.As(err, &re) {
		return "", false
	}
	return re.Message, re.Code == uwsgi.CodeNotFound ||
		re.Code == uwsgi.CodeFailed && strings.Contains(re.Message, "no handler registered")
}

func cmdCache(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := clientFlags("cache", cacheUsage, stderr)
	name := fs.String("cache", "", "name of the cache (default: the server's default cache)")
	expires := fs.Int64("expires", 0, "set/update: time to live in seconds (0: never)")
	noNewline := fs.Bool("no-newline", false, "get: do not print a newline after the value")
	timeout := clientTimeout(fs)
	pos, status, ok := clientParse(fs, args)
	if !ok {
		return status
	}
	if len(pos) < 2 {
		return clientUsageError(stderr, "cache", "want ADDR COMMAND [KEY] [VALUE]")
	}
	addr, op := pos[0], pos[1]
	want := map[string]int{"get": 3, "del": 3, "exists": 3, "set": 4, "update": 4, "clear": 2, "num": 3}
	counterOps := map[string]uwsgi.CounterOp{"inc": uwsgi.CounterInc, "dec": uwsgi.CounterDec,
		"mul": uwsgi.CounterMul, "div": uwsgi.CounterDiv}
	counterOp, counter := counterOps[op]
	n, known := want[op]
	if counter {
		n, known = min(max(len(pos), 3), 4), true // KEY [N]
	}
	switch {
	case !known:
		return clientUsageError(stderr, "cache", "unknown command %q (want get, set, update, del, exists, clear, num, inc, dec, mul or div)", op)
	case len(pos) != n && counter:
		return clientUsageError(stderr, "cache", "%s wants KEY [N]", op)
	case len(pos) != n:
		shape := map[int]string{2: "no KEY", 3: "KEY", 4: "KEY VALUE"}[n]
		return clientUsageError(stderr, "cache", "%s wants %s", op, shape)
	case n > 2 && pos[2] == "":
		return clientUsageError(stderr, "cache", "empty KEY")
	case *expires < 0:
		return clientUsageError(stderr, "cache", "--expires must be 0 or more seconds")
	case *expires > 0 && n != 4 && !counter:
		return clientUsageError(stderr, "cache", "--expires only applies to set, update, inc, dec, mul and div")
	}
	operand := counterOp.DefaultOperand()
	if counter && n == 4 {
		var err error
		if operand, err = strconv.ParseInt(pos[3], 10, 64); err != nil {
			return clientUsageError(stderr, "cache", "%s: N %q is not an integer", op, pos[3])
		}
	}
	var opts []uwsgi.CacheOption
	if *name != "" {
		opts = append(opts, uwsgi.InCache(*name))
	}
	if *expires > 0 {
		opts = append(opts, uwsgi.Expires(time.Duration(*expires)*time.Second))
	}
	var value []byte
	if n == 4 && !counter {
		value = []byte(pos[3])
		if pos[3] == "-" {
			var err error
			if value, err = io.ReadAll(clientStdin); err != nil {
				fmt.Fprintf(stderr, "scripthost cache: reading the value: %v\n", err)
				return 1
			}
		}
	}
	c, ctx, done := newCLIClient(ctx, addr, *timeout)
	defer done()
	where := addr
	if *name != "" {
		where = fmt.Sprintf("cache %q on %s", *name, addr)
	}
	var err error
	switch op {
	case "get":
		var v []byte
		if v, err = c.CacheGet(ctx, pos[2], opts...); err == nil {
			writeResult(stdout, v, !*noNewline)
			return 0
		}
	case "exists":
		var found bool
		if found, err = c.CacheExists(ctx, pos[2], opts...); err == nil {
			fmt.Fprintln(stdout, found)
			if found {
				return 0
			}
			return 1
		}
	case "set":
		err = c.CacheSet(ctx, pos[2], value, opts...)
	case "update":
		err = c.CacheUpdate(ctx, pos[2], value, opts...)
	case "del":
		err = c.CacheDel(ctx, pos[2], opts...)
	case "clear":
		err = c.CacheClear(ctx, opts...)
	case "num":
		var v int64
		if v, err = c.CacheNum(ctx, pos[2], opts...); err == nil {
			fmt.Fprintln(stdout, v)
			return 0
		}
	default:
		var v int64
		if v, err = c.CacheCounter(ctx, counterOp, pos[2], operand, opts...); err == nil {
			fmt.Fprintln(stdout, v)
			return 0
		}
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, uwsgi.ErrNotFound) && n == 3 && !counter:
		fmt.Fprintf(stderr, "scripthost cache: key %q not found on %s\n", pos[2], where)
	case n > 2:
		fmt.Fprintf(stderr, "scripthost cache: %s %q on %s: %v\n", op, pos[2], where, err)
	default:
		fmt.Fprintf(stderr, "scripthost cache: %s on %s: %v\n", op, where, err)
	}
	return 1
}
