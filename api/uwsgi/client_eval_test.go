package uwsgi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

var evalTestKey = []byte("0123456789abcdef0123456789abcdef")

// evalReplyPacket builds a success reply.
func evalReplyPacket(kv ...string) []byte {
	var vs Vars
	for i := 0; i+1 < len(kv); i += 2 {
		vs = vs.Add(kv[i], kv[i+1])
	}
	block, _ := vs.Append(nil)
	out, _ := AppendPacket(nil, ModEval, 0, block)
	return out
}

// fakeEvalServer answers eval requests: code "print" prints, "boom"
// raises, "big" is truncated, anything else is its own result. With key
// set, it requires valid signatures.
func fakeEvalServer(key []byte) func(r *fakeRequest) fakeReply {
	return func(r *fakeRequest) fakeReply {
		fail := func(code Code, msg string) fakeReply { return fakeReply{Bytes: AppendError(nil, code, msg)} }
		if r.Modifier1 != ModEval {
			return fail(CodeUnavailable, "not eval")
		}
		code := string(r.Payload)
		if key != nil {
			vs, err := ParseVars(nil, r.Payload, 0)
			if err != nil {
				return fail(CodeRefused, "unsigned")
			}
			code = vs.Get("code")
			ts := vs.Get("ts")
			secs, err := strconv.ParseFloat(ts, 64)
			if err != nil || time.Since(time.Unix(int64(secs), 0)).Abs() > 10*time.Second {
				return fail(CodeRefused, "ts "+ts+" is not now")
			}
			if vs.Get("sig") != EvalSignature(key, ts, Modifier(r.Modifier2), code) {
				return fail(CodeRefused, "bad signature")
			}
		}
		switch code {
		case "print":
			return fakeReply{Bytes: evalReplyPacket("result", "nil", "output", "hello\n")}
		case "boom":
			return fail(CodeScript, "lua: eval:1: boom")
		case "big":
			return fakeReply{Bytes: evalReplyPacket("result", "1", "output", "abc", "truncated", "1")}
		case "bad reply":
			return fakeReply{Bytes: []byte{173, 2, 0, 0, 'h', 'i'}}
		case "bad block":
			return fakeReply{Bytes: []byte{22, 3, 0, 0, 1, 0, 'k'}}
		}
		return fakeReply{Bytes: evalReplyPacket("result", Modifier(r.Modifier2).String()+":"+code, "output", "")}
	}
}

func TestClientEval(t *testing.T) {
	ctx := context.Background()
	for _, network := range []string{"tcp", "unix"} {
		for _, ext := range []bool{false, true} {
			for _, signed := range []bool{false, true} {
				var key []byte
				if signed {
					key = evalTestKey
				}
				name := network
				if ext {
					name += "/ext"
				}
				if signed {
					name += "/signed"
				}
				t.Run(name, func(t *testing.T) {
					s := newFakeServer(t, network, ext, fakeEvalServer(key))
					c := NewClient(s.addr)
					defer c.Close()
					res, out, err := c.Eval(ctx, ModLua, "return 1+1", key)
					if err != nil || res != "lua(6):return 1+1" || out != "" {
						t.Errorf("Eval = %q, %q, %v", res, out, err)
					}
					res, out, err = c.Eval(ctx, ModV8, "print", key)
					if err != nil || res != "nil" || out != "hello\n" {
						t.Errorf("Eval(print) = %q, %q, %v", res, out, err)
					}
					rep, err := c.EvalReply(ctx, ModGo, "big", key)
					if err != nil || rep != (EvalReply{Result: "1", Output: "abc", Truncated: true}) {
						t.Errorf("EvalReply(big) = %+v, %v", rep, err)
					}
					if !ext {
						return // a plain server reports nothing but a close
					}
					_, _, err = c.Eval(ctx, ModLua, "boom", key)
					var re *RemoteError
					if !errors.As(err, &re) || re.Code != CodeScript || re.Message != "lua: eval:1: boom" || !errors.Is(err, ErrScript) {
						t.Errorf("Eval(boom) error = %v, want a remote script error", err)
					}
					_, _, err = c.Eval(ctx, ModLua, "boom", []byte("a wrong key of 16+ bytes"))
					if signed && !errors.Is(err, ErrRefused) {
						t.Errorf("Eval with the wrong key: %v, want ErrRefused", err)
					}
				})
			}
		}
	}
}

func TestClientEvalFailures(t *testing.T) {
	ctx := context.Background()
	for _, ext := range []bool{false, true} {
		// A server without eval drops modifier1 22 without a byte.
		s := newFakeServer(t, "tcp", ext, func(*fakeRequest) fakeReply { return fakeReply{} })
		c := NewClient(s.addr)
		_, _, err := c.Eval(ctx, ModLua, "return 1", nil)
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrNoResult) || !strings.Contains(err.Error(), "modifier1 22") {
			t.Errorf("ext=%v: eval on a server without eval: %v, want ErrUnavailable", ext, err)
		}
		c.Close()
	}
	s := newFakeServer(t, "tcp", true, fakeEvalServer(nil))
	c := NewClient(s.addr)
	defer c.Close()
	for _, code := range []string{"bad reply", "bad block"} {
		if _, _, err := c.Eval(ctx, ModLua, code, nil); !errors.Is(err, ErrProtocol) {
			t.Errorf("Eval(%q) = %v, want ErrProtocol", code, err)
		}
	}
	before := s.dials.Load()
	if _, _, err := c.Eval(ctx, ModLua, strings.Repeat("x", MaxSize+1), nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("unsigned code of MaxSize+1 bytes: %v, want ErrTooLarge", err)
	}
	if _, _, err := c.Eval(ctx, ModLua, strings.Repeat("x", MaxSize-10), evalTestKey); !errors.Is(err, ErrTooLarge) {
		t.Errorf("signed block over MaxSize bytes: %v, want ErrTooLarge", err)
	}
	if got := s.dials.Load() - before; got != 0 {
		t.Errorf("%d dials for requests too large to send", got)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := c.Eval(cctx, ModLua, "x", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Eval with a canceled context: %v", err)
	}
}

func TestAppendEvalRequest(t *testing.T) {
	got, err := AppendEvalRequest([]byte("prefix"), ModLua, "return 1", nil, time.Now())
	want := append([]byte("prefix"), 22, 8, 0, 6, 'r', 'e', 't', 'u', 'r', 'n', ' ', '1')
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("unsigned request = % x, %v\nwant % x", got, err, want)
	}

	at := time.Unix(1700000000, 5)
	got, err = AppendEvalRequest(nil, ModV8, "1+1", evalTestKey, at)
	if err != nil {
		t.Fatal(err)
	}
	// The signature computed here, independently of EvalSignature.
	mac := hmac.New(sha256.New, evalTestKey)
	mac.Write([]byte("1700000000.000000005\n24\n1+1"))
	sig := hex.EncodeToString(mac.Sum(nil))
	block, _ := Vars{}.Add("code", "1+1").Add("ts", "1700000000.000000005").Add("sig", sig).Append(nil)
	want, _ = AppendPacket(nil, ModEval, 24, block)
	if !bytes.Equal(got, want) {
		t.Errorf("signed request\n got %q\nwant %q", got, want)
	}
	if s := EvalSignature(evalTestKey, "1700000000.000000005", ModV8, "1+1"); s != sig {
		t.Errorf("EvalSignature = %s, want %s", s, sig)
	}
	if len(sig) != 64 || strings.ToLower(sig) != sig {
		t.Errorf("signature %q is not 64 lowercase hex digits", sig)
	}

	before := []byte("keep")
	if out, err := AppendEvalRequest(before, ModLua, strings.Repeat("x", MaxSize-10), evalTestKey, at); !errors.Is(err, ErrTooLarge) || !bytes.Equal(out, before) {
		t.Errorf("oversized signed request: % .8x, %v; want dst unchanged and ErrTooLarge", out, err)
	}
}

func TestFormatEvalTime(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Unix(0, 0), "0.000000000"},
		{time.Unix(1700000000, 123456789), "1700000000.123456789"},
		{time.Unix(1700000000, 1), "1700000000.000000001"},
	} {
		if got := FormatEvalTime(tc.t); got != tc.want {
			t.Errorf("FormatEvalTime(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}
