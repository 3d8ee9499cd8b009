package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/scripthost/scripthost/api/uwsgi"
)

const evalUsage = `Usage: scripthost eval ADDR --lang lua|js|go [--key FILE] [--timeout D] (CODE | -)

Run CODE on a scripthost server (raw code evaluation, modifier1 22) and
print what it printed, then its value (lists and maps as JSON). CODE "-"
reads the code from standard input. The code sees the uwsgi API over the
server's state: its caches, RPC functions, signals. Exit status 1 when the
server refused the code or the code failed; the reason goes to stderr.

The server must enable eval on ADDR (serve --eval-socket ADDR); other
listeners refuse it, and servers without eval close the connection. With
serve --eval-key, pass the same key file with --key: requests are signed
(HMAC-SHA256 over the time and the code) and valid for a minute, once.

` + clientAddrHelp + `
Examples:
  # inspect the cache
  scripthost eval /run/scripthost-eval.sock --lang lua 'return uwsgi.cache_get("session:42")'
  scripthost eval /run/scripthost-eval.sock --lang lua 'return uwsgi.cache_keys()'
  # call an RPC function, in any language
  scripthost eval /run/scripthost-eval.sock --lang lua 'return uwsgi.call("hello", "ops")'
  # raise a signal (its handler runs on the server)
  scripthost eval /run/scripthost-eval.sock --lang lua 'uwsgi.signal(17)'
  # dump stats, with a signed request
  scripthost eval /run/scripthost-eval.sock --lang lua --key /etc/scripthost/eval.key \
    'return {version = uwsgi.version, pid = uwsgi.masterpid(), keys = #uwsgi.cache_keys()}'
  # a longer script from a file
  scripthost eval /run/scripthost-eval.sock --lang js - < report.js

Flags:
`

// evalLangs are the --lang values and their modifiers.
var evalLangs = map[string]uwsgi.Modifier{"lua": uwsgi.ModLua, "js": uwsgi.ModV8, "go": uwsgi.ModGo}

func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := clientFlags("eval", evalUsage, stderr)
	lang := fs.String("lang", "", "language of the code: lua, js or go (required)")
	keyFile := fs.String("key", "", "file holding the key to sign the request with (the server's --eval-key)")
	timeout := clientTimeout(fs)
	pos, status, ok := clientParse(fs, args)
	if !ok {
		return status
	}
	if len(pos) != 2 {
		return clientUsageError(stderr, "eval", "want ADDR and CODE (or - to read the code from standard input)")
	}
	mod, known := evalLangs[*lang]
	if !known {
		if *lang == "" {
			return clientUsageError(stderr, "eval", "--lang is required (lua, js or go)")
		}
		return clientUsageError(stderr, "eval", "unknown --lang %q (want lua, js or go)", *lang)
	}
	addr, code := pos[0], pos[1]
	if code == "-" {
		b, err := io.ReadAll(clientStdin)
		if err != nil {
			fmt.Fprintf(stderr, "scripthost eval: reading the code: %v\n", err)
			return 1
		}
		code = string(b)
	}
	if strings.TrimSpace(code) == "" {
		return clientUsageError(stderr, "eval", "no code to run")
	}
	var key []byte
	if *keyFile != "" {
		var err error
		if key, err = readKeyFile(*keyFile); err != nil {
			fmt.Fprintf(stderr, "scripthost eval: --key: %v\n", err)
			return 1
		}
	}
	c, ctx, done := newCLIClient(ctx, addr, *timeout)
	defer done()
	if *timeout <= 0 {
		c.Timeout = -1 // no limit, not the client's default
	}
	rep, err := c.EvalReply(ctx, mod, code, key)
	var re *uwsgi.RemoteError
	switch {
	case err == nil:
		io.WriteString(stdout, rep.Output)
		if rep.Output != "" && !strings.HasSuffix(rep.Output, "\n") {
			io.WriteString(stdout, "\n")
		}
		io.WriteString(stdout, rep.Result+"\n")
		if rep.Truncated {
			fmt.Fprintln(stderr, "scripthost eval: the server cut the output or the result to its limit")
		}
		return 0
	case errors.As(err, &re):
		fmt.Fprintf(stderr, "scripthost eval: %s: %s: %s\n", addr, re.Code, re.Message)
	default:
		fmt.Fprintf(stderr, "scripthost eval: %s: %v\n", addr, err)
	}
	return 1
}

// readKeyFile reads an eval key, without one trailing newline.
func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return b, nil
}
