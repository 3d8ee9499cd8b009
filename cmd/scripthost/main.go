// Command scripthost serves Lua, JavaScript and Go scripts behind the uwsgi
// protocol, and talks to uwsgi servers (scripthost's and uWSGI's) from the
// command line.
//
//	scripthost serve [--socket ADDR]... [flags]   run the server
//	scripthost rpc [--raw] ADDR FUNC [ARG...]     call an RPC function
//	scripthost ping ADDR                          ping a server
//	scripthost signal ADDR NUM                    raise a uwsgi signal
//	scripthost cache ADDR CMD KEY [VALUE]         use a server's cache
//	scripthost bench [flags] ADDR                 load-test a server
//	scripthost reload [--brutal] OPS_ADDR         reload a server's scripts
//	scripthost eval ADDR --lang lua|js|go CODE|-  run code through an eval listener
//	scripthost status OPS_ADDR                    show the scripts it runs
//	scripthost version                            print the version
//
// Every subcommand has --help.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"syscall"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/cmd/scripthost/internal/bench"
)

// command is one subcommand; run returns the process exit status.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"serve":   {"run the server", cmdServe},
	"rpc":     {"call an RPC function on a uwsgi server", cmdRPC},
	"ping":    {"ping a uwsgi server", cmdPing},
	"signal":  {"raise a uwsgi signal on a server", cmdSignal},
	"spool":   {"send a job to a server's spooler", cmdSpool},
	"cache":   {"get, set, update, delete, test or clear cache items on a server", cmdCache},
	"bench":   {"load-test a uwsgi server and report throughput and latency", bench.Main},
	"reload":  {"reload a server's scripts through its operations listener", cmdReload},
	"eval":    {"run code on a server through its eval listener", cmdEval},
	"status":  {"show a server's scripts generation and last reload", cmdStatus},
	"version": {"print the version", cmdVersion},
}

func main() {
	// A request allocates little and briefly; collecting less often trades
	// some memory for a fifth less CPU per request. GOGC still overrides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "scripthost: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "scripthost %s: Lua, JavaScript and Go scripts behind the uwsgi protocol\n\nUsage: scripthost COMMAND [ARGS]\n\nCommands:\n", api.Version)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'scripthost COMMAND --help' for a command's flags.\n")
}

func cmdVersion(_ context.Context, _ []string, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "scripthost %s\n", api.Version)
	return 0
}
