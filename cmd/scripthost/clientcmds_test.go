package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// cliServer is a small fake uwsgi server for the client subcommands. A
// plain one behaves like uWSGI (one request per connection, the hello
// answered as a ping, failures as a silent close); an extended one accepts
// the hello, keeps connections open and reports failures in error frames.
type cliServer struct {
	ln  net.Listener
	ext bool

	mu    sync.Mutex
	items map[string][]byte // cache "name/key" -> value
	wg    sync.WaitGroup
}

func startCLIServer(t *testing.T, network string, ext bool) string {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &cliServer{ln: ln, ext: ext, items: map[string][]byte{"/k": []byte("v1"), "other/o": []byte("ov")}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go s.serve(nc)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	if network == "unix" {
		return "unix:" + addr
	}
	return ln.Addr().String()
}

func (s *cliServer) serve(nc net.Conn) {
	defer s.wg.Done()
	defer nc.Close()
	br := bufio.NewReader(nc)
	ext := false
	for {
		p, err := uwsgi.ReadPacket(br, nil, uwsgi.MaxSize)
		if err != nil {
			return
		}
		if uwsgi.IsHello(p) {
			if !s.ext {
				nc.Write([]byte{100, 0, 0, 1})
				return
			}
			nc.Write(uwsgi.AppendHelloReply(nil))
			ext = true
			continue
		}
		reply := s.handle(p, br, ext)
		if reply == nil {
			return
		}
		if _, err := nc.Write(reply); err != nil || !ext {
			return
		}
	}
}

// handle answers one request; nil is a silent close.
func (s *cliServer) handle(p uwsgi.Packet, br *bufio.Reader, ext bool) []byte {
	fail := func(code uwsgi.Code, msg string) []byte {
		if ext {
			return uwsgi.AppendError(nil, code, msg)
		}
		return nil
	}
	switch p.Modifier1 {
	case uwsgi.ModPing:
		if s.ext {
			out, _ := uwsgi.AppendPacket(nil, uwsgi.ModPing, uwsgi.PingPong, []byte("overloaded"))
			return out
		}
		return []byte{100, 0, 0, 1}
	case uwsgi.ModSignal:
		ok := uwsgi.ResponseOK
		switch {
		case p.Modifier2 == 99:
			ok = uwsgi.ResponseFailed
		case p.Modifier2 == 98 && ext:
			// No handler: scripthost says so to extended clients, uWSGI
			// acknowledges the signal and drops it.
			return fail(uwsgi.CodeFailed, "no handler registered for signal 98")
		}
		return uwsgi.Header{Modifier1: uwsgi.ModResponse, Modifier2: ok}.Append(nil)
	case uwsgi.ModRPC:
		items, _ := uwsgi.ParseArray(nil, p.Payload, 255)
		var res []byte
		switch string(items[0]) {
		case "hello":
			res = []byte("Hello World")
		case "join":
			res = bytes.Join(items[1:], []byte(","))
		case "empty":
			if !ext {
				return nil
			}
			res = []byte{}
		case "boom":
			return fail(uwsgi.CodeScript, "boom.lua:1: boom")
		default:
			return fail(uwsgi.CodeNotFound, "no such function")
		}
		if p.Modifier2 == uwsgi.RPCRaw {
			return append([]byte("raw:"), res...)
		}
		return append(uwsgi.AppendRPCHeader(nil, len(res)), res...)
	case uwsgi.ModCache:
		req, err := uwsgi.ParseCacheRequest(p.Payload)
		if err != nil {
			return nil
		}
		value := make([]byte, req.Size)
		if _, err := io.ReadFull(br, value); err != nil {
			return nil
		}
		key := req.Cache + "/" + string(req.Key)
		ok := uwsgi.AppendCacheReply(nil, false, nil, 0)
		s.mu.Lock()
		defer s.mu.Unlock()
		v, found := s.items[key]
		switch req.Cmd {
		case uwsgi.CacheCmdGet, uwsgi.CacheCmdExists, uwsgi.CacheCmdDel:
			if !found {
				return fail(uwsgi.CodeNotFound, "no such key")
			}
			switch req.Cmd {
			case uwsgi.CacheCmdGet:
				return uwsgi.AppendCacheReply(nil, true, v, 0)
			case uwsgi.CacheCmdDel:
				delete(s.items, key)
			}
			return ok
		case uwsgi.CacheCmdSet, uwsgi.CacheCmdUpdate:
			if found && req.Cmd == uwsgi.CacheCmdSet {
				return fail(uwsgi.CodeExists, "key exists")
			}
			if req.Expires > 0 {
				value = append(value, []byte(" ttl="+strconv.FormatInt(req.Expires, 10))...)
			}
			s.items[key] = value
			return ok
		case uwsgi.CacheCmdClear:
			for k := range s.items {
				if strings.HasPrefix(k, req.Cache+"/") {
					delete(s.items, k)
				}
			}
			return ok
		}
	}
	return fail(uwsgi.CodeUnavailable, "no handler")
}

type cliCase struct {
	name       string
	args       []string // "{addr}" in them (and in wantErr) is replaced by the server's address
	stdin      string
	wantStatus int
	wantOut    string // exact stdout
	wantErr    string // substring of stderr ("" : stderr must be empty when status is 0)
}

func runCLICases(t *testing.T, cmd func(context.Context, []string, io.Writer, io.Writer) int, addr string, cases []cliCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "{addr}", addr)
			}
			clientStdin = strings.NewReader(tc.stdin)
			var stdout, stderr bytes.Buffer
			status := cmd(context.Background(), args, &stdout, &stderr)
			if status != tc.wantStatus {
				t.Errorf("exit status %d, want %d (stderr %q)", status, tc.wantStatus, stderr.String())
			}
			if got := stdout.String(); got != tc.wantOut {
				t.Errorf("stdout %q, want %q", got, tc.wantOut)
			}
			wantErr := strings.ReplaceAll(tc.wantErr, "{addr}", addr)
			if wantErr == "" && status == 0 && stderr.Len() > 0 {
				t.Errorf("stderr %q, want nothing", stderr.String())
			}
			if !strings.Contains(stderr.String(), wantErr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), wantErr)
			}
		})
	}
}

func TestCmdRPC(t *testing.T) {
	common := []cliCase{
		{name: "hello", args: []string{"{addr}", "hello"}, wantOut: "Hello World\n"},
		{name: "args", args: []string{"{addr}", "join", "a", "b c"}, wantOut: "a,b c\n"},
		{name: "no newline after", args: []string{"{addr}", "hello", "--no-newline"}, wantOut: "Hello World"},
		{name: "raw before", args: []string{"--raw", "{addr}", "hello"}, wantOut: "raw:Hello World\n"},
		{name: "raw after", args: []string{"{addr}", "join", "x", "--raw", "--timeout", "5s"}, wantOut: "raw:x\n"},
		{name: "dash arg", args: []string{"{addr}", "join", "--", "-5", "--raw"}, wantOut: "-5,--raw\n"},
		{name: "empty arg", args: []string{"{addr}", "join", ""}, wantStatus: 2, wantErr: "argument 1 is empty"},
		{name: "missing func", args: []string{"{addr}"}, wantStatus: 2, wantErr: "want ADDR FUNC"},
		{name: "bad flag", args: []string{"{addr}", "hello", "--bogus"}, wantStatus: 2, wantErr: "flag provided but not defined: -bogus"},
		{name: "help", args: []string{"--help"}, wantErr: "Usage: scripthost rpc"},
		{name: "help after", args: []string{"{addr}", "-h"}, wantErr: "Examples:"},
	}
	plain := []cliCase{
		{name: "unknown", args: []string{"{addr}", "nope"}, wantStatus: 1,
			wantErr: "scripthost rpc: no result from nope on {addr} (unknown function, empty result or script error)\n"},
		{name: "empty", args: []string{"{addr}", "empty"}, wantStatus: 1, wantErr: "no result from empty"},
		{name: "raw unknown", args: []string{"--raw", "{addr}", "nope"}, wantStatus: 1, wantErr: "no result from nope"},
	}
	ext := []cliCase{
		{name: "unknown", args: []string{"{addr}", "nope"}, wantStatus: 1, wantErr: "scripthost rpc: nope on {addr}: not found: no such function\n"},
		{name: "script error", args: []string{"{addr}", "boom"}, wantStatus: 1, wantErr: "script error: boom.lua:1: boom"},
		{name: "empty", args: []string{"{addr}", "empty"}, wantOut: "\n"},
	}
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network+"/plain", func(t *testing.T) {
			runCLICases(t, cmdRPC, startCLIServer(t, network, false), append(common, plain...))
		})
		t.Run(network+"/ext", func(t *testing.T) {
			runCLICases(t, cmdRPC, startCLIServer(t, network, true), append(common, ext...))
		})
	}
}

func TestCmdPing(t *testing.T) {
	runCLICases(t, cmdPing, startCLIServer(t, "tcp", false), []cliCase{
		{name: "pong", args: []string{"{addr}"}, wantOut: "PONG\n"},
		{name: "timeout after", args: []string{"{addr}", "--timeout", "3s"}, wantOut: "PONG\n"},
		{name: "no addr", args: nil, wantStatus: 2, wantErr: "want exactly one ADDR"},
		{name: "two addrs", args: []string{"{addr}", "{addr}"}, wantStatus: 2, wantErr: "want exactly one ADDR"},
		{name: "help", args: []string{"--help"}, wantErr: "Usage: scripthost ping"},
	})
	runCLICases(t, cmdPing, startCLIServer(t, "unix", true), []cliCase{
		{name: "warning", args: []string{"{addr}"}, wantOut: "overloaded\n"},
	})
	runCLICases(t, cmdPing, cliRefusedAddr(t), []cliCase{
		{name: "refused", args: []string{"{addr}"}, wantStatus: 1, wantErr: "connection refused"},
	})
}

func TestCmdSignal(t *testing.T) {
	// A signal without a handler means the same against both servers:
	// taken (exit 0), with scripthost's word for it on stderr.
	runCLICases(t, cmdSignal, startCLIServer(t, "tcp", true), []cliCase{
		{name: "ext ok", args: []string{"{addr}", "17"}},
		{name: "ext no handler", args: []string{"{addr}", "98"},
			wantErr: "scripthost signal: warning: signal 98 on {addr}: no handler registered for signal 98 (uWSGI acknowledges"},
		{name: "ext refused", args: []string{"{addr}", "99"}, wantStatus: 1, wantErr: "signal 99 not delivered"},
	})
	runCLICases(t, cmdSignal, startCLIServer(t, "tcp", false), []cliCase{
		{name: "no handler", args: []string{"{addr}", "98"}},
		{name: "ok", args: []string{"{addr}", "17"}},
		{name: "zero", args: []string{"{addr}", "0"}},
		{name: "max", args: []string{"{addr}", "255", "--timeout", "2s"}},
		{name: "refused", args: []string{"{addr}", "99"}, wantStatus: 1, wantErr: "signal 99 not delivered"},
		{name: "too big", args: []string{"{addr}", "256"}, wantStatus: 2, wantErr: `invalid signal number "256" (want 0..255)`},
		{name: "negative", args: []string{"{addr}", "--", "-1"}, wantStatus: 2, wantErr: "invalid signal number"},
		{name: "not a number", args: []string{"{addr}", "usr1"}, wantStatus: 2, wantErr: "invalid signal number"},
		{name: "missing", args: []string{"{addr}"}, wantStatus: 2, wantErr: "want ADDR NUM"},
		{name: "help", args: []string{"-help"}, wantErr: "Usage: scripthost signal"},
	})
}

func TestCmdCache(t *testing.T) {
	for _, ext := range []bool{false, true} {
		setAgain := "failed"
		if ext {
			setAgain = "exists"
		}
		t.Run("ext="+strconv.FormatBool(ext), func(t *testing.T) {
			runCLICases(t, cmdCache, startCLIServer(t, "tcp", ext), []cliCase{
				{name: "get", args: []string{"{addr}", "get", "k"}, wantOut: "v1\n"},
				{name: "get no newline", args: []string{"{addr}", "get", "k", "--no-newline"}, wantOut: "v1"},
				{name: "get named", args: []string{"{addr}", "get", "o", "--cache", "other"}, wantOut: "ov\n"},
				{name: "get named before", args: []string{"--cache", "other", "{addr}", "get", "o"}, wantOut: "ov\n"},
				{name: "get missing", args: []string{"{addr}", "get", "nope"}, wantStatus: 1,
					wantErr: `scripthost cache: key "nope" not found on {addr}`},
				{name: "exists", args: []string{"{addr}", "exists", "k"}, wantOut: "true\n"},
				{name: "exists missing", args: []string{"{addr}", "exists", "nope"}, wantStatus: 1, wantOut: "false\n"},
				{name: "set", args: []string{"{addr}", "set", "n", "hello", "--expires", "60"}},
				{name: "get set", args: []string{"{addr}", "get", "n"}, wantOut: "hello ttl=60\n"},
				{name: "set again", args: []string{"{addr}", "set", "n", "x"}, wantStatus: 1, wantErr: setAgain},
				{name: "update stdin", args: []string{"{addr}", "update", "n", "-"}, stdin: "from\nstdin"},
				{name: "get updated", args: []string{"{addr}", "get", "n"}, wantOut: "from\nstdin\n"},
				{name: "del", args: []string{"{addr}", "del", "n"}},
				{name: "del missing", args: []string{"{addr}", "del", "n"}, wantStatus: 1, wantErr: `key "n" not found`},
				{name: "clear other", args: []string{"{addr}", "clear", "--cache", "other"}},
				{name: "other cleared", args: []string{"{addr}", "exists", "o", "--cache=other"}, wantStatus: 1, wantOut: "false\n"},
				{name: "default kept", args: []string{"{addr}", "exists", "k"}, wantOut: "true\n"},
				{name: "unknown command", args: []string{"{addr}", "put", "k"}, wantStatus: 2, wantErr: `unknown command "put"`},
				{name: "set without value", args: []string{"{addr}", "set", "k"}, wantStatus: 2, wantErr: "set wants KEY VALUE"},
				{name: "get without key", args: []string{"{addr}", "get"}, wantStatus: 2, wantErr: "get wants KEY"},
				{name: "clear with key", args: []string{"{addr}", "clear", "k"}, wantStatus: 2, wantErr: "clear wants no KEY"},
				{name: "expires on get", args: []string{"{addr}", "get", "k", "--expires", "5"}, wantStatus: 2, wantErr: "--expires only applies"},
				{name: "bad expires", args: []string{"{addr}", "set", "k", "v", "--expires", "soon"}, wantStatus: 2, wantErr: "invalid value"},
				{name: "missing addr", args: nil, wantStatus: 2, wantErr: "want ADDR COMMAND"},
				{name: "num missing", args: []string{"{addr}", "num", "c"}, wantStatus: 1, wantErr: `key "c" not found`},
				{name: "inc", args: []string{"{addr}", "inc", "c"}, wantOut: "1\n"},
				{name: "get counter", args: []string{"{addr}", "get", "c", "--no-newline"}, wantOut: "\x01\x00\x00\x00\x00\x00\x00\x00"},
				{name: "inc n", args: []string{"{addr}", "inc", "c", "41"}, wantOut: "42\n"},
				{name: "dec", args: []string{"{addr}", "dec", "c", "--", "-8"}, wantOut: "50\n"},
				{name: "mul", args: []string{"{addr}", "mul", "c"}, wantOut: "100\n"},
				{name: "div", args: []string{"{addr}", "div", "c", "3"}, wantOut: "33\n"},
				{name: "num", args: []string{"{addr}", "num", "c"}, wantOut: "33\n"},
				{name: "inc named expires", args: []string{"{addr}", "inc", "c", "--cache", "other", "--expires", "9"}, wantOut: "1\n"},
				{name: "get named counter", args: []string{"{addr}", "get", "c", "--cache", "other", "--no-newline"},
					wantOut: "\x01\x00\x00\x00\x00\x00\x00\x00 ttl=9"},
				{name: "num not a counter", args: []string{"{addr}", "num", "k"}, wantStatus: 1, wantErr: "not a counter"},
				{name: "inc not a counter", args: []string{"{addr}", "inc", "k"}, wantStatus: 1,
					wantErr: `scripthost cache: inc "k" on {addr}: uwsgi: cache value is not a counter`},
				{name: "inc bad n", args: []string{"{addr}", "inc", "c", "x"}, wantStatus: 2, wantErr: `inc: N "x" is not an integer`},
				{name: "inc too many", args: []string{"{addr}", "inc", "c", "1", "2"}, wantStatus: 2, wantErr: "inc wants KEY [N]"},
				{name: "inc no key", args: []string{"{addr}", "inc"}, wantStatus: 2, wantErr: "inc wants KEY [N]"},
				{name: "num with n", args: []string{"{addr}", "num", "c", "1"}, wantStatus: 2, wantErr: "num wants KEY"},
				{name: "help", args: []string{"--help"}, wantErr: "Usage: scripthost cache"},
			})
		})
	}
}

// cliRefusedAddr returns a loopback address nobody listens on.
func cliRefusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
