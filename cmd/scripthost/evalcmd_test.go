package main

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// startEvalFake serves eval requests the way a scripthost eval listener
// does, on loopback: the hello accepted, error frames, the connection kept.
// With a key it requires signed requests. The code names what happens:
// "boom" raises, "print" and "print-nl" print, "big" is truncated, "drop"
// closes without a reply; anything else is its own result, prefixed with
// the language.
func startEvalFake(t *testing.T, key []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(nc)
				for {
					p, err := uwsgi.ReadPacket(br, nil, uwsgi.MaxSize)
					if err != nil {
						return
					}
					var reply []byte
					if uwsgi.IsHello(p) {
						reply = uwsgi.AppendHelloReply(nil)
					} else if reply = evalFakeReply(p, key); reply == nil {
						return
					}
					if _, err := nc.Write(reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

func evalFakeReply(p uwsgi.Packet, key []byte) []byte {
	fail := func(code uwsgi.Code, msg string) []byte { return uwsgi.AppendError(nil, code, msg) }
	if p.Modifier1 != uwsgi.ModEval {
		return fail(uwsgi.CodeUnavailable, "not eval")
	}
	code := string(p.Payload)
	if key != nil {
		vs, err := uwsgi.ParseVars(nil, p.Payload, 0)
		if err != nil || vs.Get("sig") == "" {
			return fail(uwsgi.CodeRefused, "this server requires signed eval requests")
		}
		code = vs.Get("code")
		if vs.Get("sig") != uwsgi.EvalSignature(key, vs.Get("ts"), uwsgi.Modifier(p.Modifier2), code) {
			return fail(uwsgi.CodeRefused, "bad eval signature")
		}
	}
	vars := func(kv ...string) []byte {
		var vs uwsgi.Vars
		for i := 0; i+1 < len(kv); i += 2 {
			vs = vs.Add(kv[i], kv[i+1])
		}
		block, _ := vs.Append(nil)
		out, _ := uwsgi.AppendPacket(nil, uwsgi.ModEval, 0, block)
		return out
	}
	switch code {
	case "boom":
		return fail(uwsgi.CodeScript, "lua: eval:1: boom")
	case "print":
		return vars("result", "nil", "output", "hi")
	case "print-nl":
		return vars("result", "2", "output", "one\ntwo\n")
	case "big":
		return vars("result", "1", "output", "cut", "truncated", "1")
	case "drop":
		return nil
	}
	return vars("result", strconv.Itoa(int(p.Modifier2))+":"+code, "output", "")
}

func writeKey(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "eval.key")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCmdEval(t *testing.T) {
	runCLICases(t, cmdEval, startEvalFake(t, nil), []cliCase{
		{name: "lua", args: []string{"{addr}", "--lang", "lua", "return 1+1"}, wantOut: "6:return 1+1\n"},
		{name: "js flags first", args: []string{"--lang", "js", "--timeout", "5s", "{addr}", "1+1"}, wantOut: "24:1+1\n"},
		{name: "go", args: []string{"{addr}", "1+1", "--lang=go"}, wantOut: "11:1+1\n"},
		{name: "output then result", args: []string{"{addr}", "--lang", "lua", "print"}, wantOut: "hi\nnil\n"},
		{name: "output ending in a newline", args: []string{"{addr}", "--lang", "lua", "print-nl"}, wantOut: "one\ntwo\n2\n"},
		{name: "stdin", args: []string{"{addr}", "--lang", "lua", "-"}, stdin: "local x = 1\nreturn x", wantOut: "6:local x = 1\nreturn x\n"},
		{name: "code starting with a dash", args: []string{"{addr}", "--lang", "lua", "--", "-1"}, wantOut: "6:-1\n"},
		{name: "no timeout", args: []string{"{addr}", "--lang", "lua", "--timeout", "0", "x"}, wantOut: "6:x\n"},
		{name: "truncated", args: []string{"{addr}", "--lang", "lua", "big"}, wantOut: "cut\n1\n",
			wantErr: "scripthost eval: the server cut the output or the result to its limit"},
		{name: "script error", args: []string{"{addr}", "--lang", "lua", "boom"}, wantStatus: 1,
			wantErr: "scripthost eval: {addr}: script error: lua: eval:1: boom\n"},
		{name: "dropped", args: []string{"{addr}", "--lang", "lua", "drop"}, wantStatus: 1, wantErr: "modifier1 22"},
		{name: "no lang", args: []string{"{addr}", "x"}, wantStatus: 2, wantErr: "--lang is required"},
		{name: "unknown lang", args: []string{"{addr}", "--lang", "python", "x"}, wantStatus: 2, wantErr: `unknown --lang "python"`},
		{name: "no code", args: []string{"{addr}", "--lang", "lua"}, wantStatus: 2, wantErr: "want ADDR and CODE"},
		{name: "empty code", args: []string{"{addr}", "--lang", "lua", " "}, wantStatus: 2, wantErr: "no code to run"},
		{name: "empty stdin", args: []string{"{addr}", "--lang", "lua", "-"}, wantStatus: 2, wantErr: "no code to run"},
		{name: "too large", args: []string{"{addr}", "--lang", "lua", string(make([]byte, 70000))}, wantStatus: 1, wantErr: "too large"},
		{name: "missing key file", args: []string{"{addr}", "--lang", "lua", "--key", "/nonexistent/eval.key", "x"}, wantStatus: 1,
			wantErr: "scripthost eval: --key: open /nonexistent/eval.key"},
		{name: "help", args: []string{"--help"}, wantErr: "Usage: scripthost eval ADDR --lang lua|js|go"},
		{name: "help examples", args: []string{"{addr}", "-h"}, wantErr: `uwsgi.call("hello", "ops")`},
	})

	key := "0123456789abcdef0123456789abcdef"
	good, goodCRLF := writeKey(t, key+"\n"), writeKey(t, key+"\r\n")
	wrong, empty := writeKey(t, "another key, long enough\n"), writeKey(t, "\n")
	runCLICases(t, cmdEval, startEvalFake(t, []byte(key)), []cliCase{
		{name: "signed", args: []string{"{addr}", "--lang", "lua", "--key", good, "return 1"}, wantOut: "6:return 1\n"},
		{name: "signed crlf", args: []string{"{addr}", "--key", goodCRLF, "--lang", "js", "1"}, wantOut: "24:1\n"},
		{name: "unsigned", args: []string{"{addr}", "--lang", "lua", "return 1"}, wantStatus: 1,
			wantErr: "scripthost eval: {addr}: refused: this server requires signed eval requests\n"},
		{name: "wrong key", args: []string{"{addr}", "--lang", "lua", "--key", wrong, "return 1"}, wantStatus: 1,
			wantErr: "refused: bad eval signature"},
		{name: "empty key file", args: []string{"{addr}", "--lang", "lua", "--key", empty, "return 1"}, wantStatus: 1,
			wantErr: "is empty"},
	})
	runCLICases(t, cmdEval, cliRefusedAddr(t), []cliCase{
		{name: "connection refused", args: []string{"{addr}", "--lang", "lua", "x"}, wantStatus: 1, wantErr: "connection refused"},
	})
}

func TestReadKeyFile(t *testing.T) {
	for _, tc := range []struct{ content, want string }{
		{"secret", "secret"},
		{"secret\n", "secret"},
		{"secret\r\n", "secret"},
		{"secret\n\n", "secret\n"},
		{" secret \n", " secret "},
	} {
		got, err := readKeyFile(writeKey(t, tc.content))
		if err != nil || string(got) != tc.want {
			t.Errorf("readKeyFile(%q) = %q, %v; want %q", tc.content, got, err, tc.want)
		}
	}
}
