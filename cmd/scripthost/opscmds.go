package main

import (
	"context"
	"fmt"
	"io"
)

const reloadUsage = `Usage: scripthost reload [--brutal] [--timeout D] OPS_ADDR

Ask a scripthost server to reload its scripts directory now, through its
operations listener (serve --ops-socket). The new scripts are loaded beside
the running ones and swapped in only when every file loaded; the reply says
whether that happened. A graceful reload (modifier1 98) lets calls running
in the old scripts finish; --brutal (97) does not wait for them.
Exit status 1 when the reload failed (the old scripts keep serving).

Examples:
  scripthost reload /run/scripthost-ops.sock
  scripthost reload --brutal /run/scripthost-ops.sock

Flags:
`

const statusUsage = `Usage: scripthost status [--timeout D] OPS_ADDR

Show which scripts generation a scripthost server runs (its files, apps,
RPC functions, signals and timers), how its last reload went, and its
containment: the memory budget (memory_limit, heap_in_use, in bytes) and
the calls interrupted for memory (memory_kills), calls that found no free
interpreter (pool_timeouts), script files that did not load in time
(load_timeouts), signal raises merged into a pending one
(signals_coalesced) and serving processes restarted by the supervisor
(restarts). It asks through the operations listener (modifier1 99).

Example:
  scripthost status /run/scripthost-ops.sock

Flags:
`

func cmdReload(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := clientFlags("reload", reloadUsage, stderr)
	brutal := fs.Bool("brutal", false, "do not wait for calls running in the old scripts")
	timeout := clientTimeout(fs)
	pos, status, ok := clientParse(fs, args)
	if !ok {
		return status
	}
	if len(pos) != 1 {
		return clientUsageError(stderr, "reload", "want exactly one OPS_ADDR")
	}
	c, ctx, done := newCLIClient(ctx, pos[0], *timeout)
	defer done()
	if err := c.Reload(ctx, *brutal); err != nil {
		fmt.Fprintf(stderr, "scripthost reload: %s: %v\n", pos[0], err)
		return 1
	}
	fmt.Fprintln(stdout, "reloaded")
	return 0
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := clientFlags("status", statusUsage, stderr)
	timeout := clientTimeout(fs)
	pos, status, ok := clientParse(fs, args)
	if !ok {
		return status
	}
	if len(pos) != 1 {
		return clientUsageError(stderr, "status", "want exactly one OPS_ADDR")
	}
	c, ctx, done := newCLIClient(ctx, pos[0], *timeout)
	defer done()
	vars, err := c.Status(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "scripthost status: %s: %v\n", pos[0], err)
		return 1
	}
	for _, v := range vars {
		fmt.Fprintf(stdout, "%-19s %s\n", string(v.Key)+":", v.Value)
	}
	return 0
}
