package host_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// panicLog counts the handler panics the server recovers and logs; any
// of them fails the fuzz target.
type panicLog struct {
	mu     sync.Mutex
	first  string
	panics atomic.Int64
}

func (p *panicLog) Enabled(context.Context, slog.Level) bool { return true }

func (p *panicLog) Handle(_ context.Context, r slog.Record) error {
	if !strings.Contains(r.Message, "panic") {
		return nil
	}
	if p.panics.Add(1) == 1 {
		var b strings.Builder
		b.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.String())
			return true
		})
		p.mu.Lock()
		p.first = b.String()
		p.mu.Unlock()
	}
	return nil
}

func (p *panicLog) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *panicLog) WithGroup(string) slog.Handler      { return p }

func (p *panicLog) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first
}

// FuzzServeConn feeds arbitrary bytes to a server connection. With
// halfClose the client shuts its write side after the bytes, otherwise it
// just goes silent and the server's (short) timeouts must end the
// connection. Properties: the server never panics, always closes within
// its timeouts, and serves a ping on a new connection afterwards.
func FuzzServeConn(f *testing.F) {
	reqs, err := filepath.Glob(filepath.Join(vectorDir, "*.req.bin"))
	if err != nil || len(reqs) == 0 {
		f.Fatalf("no vector requests in %s: %v", vectorDir, err)
	}
	for _, name := range reqs {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, true)
	}
	set, _ := uwsgi.AppendCacheRequest(nil, uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdSet, Key: []byte("fk")}, []byte("value"))
	for _, silent := range [][]byte{
		pingReq,
		{100, 0},
		append(uwsgi.AppendHello(nil), pingReq...),
		set[:len(set)-3],
		append(uwsgi.AppendHello(nil), 173, 9, 0, 0, 5, 0, 'h', 'e', 'l', 'l', 'o'),
	} {
		f.Add(silent, false)
	}

	log := &panicLog{}
	ts := startServer(f, "tcp", host.Limits{
		HeaderTimeout: 50 * time.Millisecond,
		IdleTimeout:   50 * time.Millisecond,
		BodyTimeout:   50 * time.Millisecond,
		WriteTimeout:  time.Second,
		CallTimeout:   time.Second,
	}, func(s *host.Server) {
		s.Logger = slog.New(log)
		// An engine-like handler, so that request vars and bodies are
		// fuzzed through Request.Vars and Request.Body too.
		s.Handle(uwsgi.ModLua, host.HandlerFunc(func(_ context.Context, w *host.PacketWriter, r *host.Packet) host.Outcome {
			vars, err := r.Vars(nil)
			if err != nil {
				return host.Close
			}
			n := uwsgi.ParseContentLength([]byte(vars.Get("CONTENT_LENGTH")))
			if n > 1<<16 {
				return host.Close
			}
			body := make([]byte, n)
			if _, err := io.ReadFull(r.Body(), body); err != nil {
				return host.Close
			}
			w.WriteString(host.StatusLine(vars.Get("SERVER_PROTOCOL"), 200) + "\r\n")
			w.Write(body)
			return host.Close
		}))
	})

	f.Fuzz(func(t *testing.T, data []byte, halfClose bool) {
		c := ts.dial(t)
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			c.Write(data) // the server may close first
			if halfClose {
				c.(interface{ CloseWrite() error }).CloseWrite()
			}
		}()
		if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
			t.Fatalf("the server neither answered nor closed: %v", err)
		}
		c.Close()
		<-wrote
		// The 50 ms header timeout may legitimately close a probe that a
		// loaded machine (parallel fuzz workers) delays: retry a little.
		var got []byte
		for range 5 {
			if got = ts.exchange(t, pingReq, true); string(got) == string(pongResp) {
				break
			}
		}
		if string(got) != string(pongResp) {
			t.Fatalf("ping on a new connection afterwards = % x, want % x", got, pongResp)
		}
		if log.panics.Load() > 0 {
			t.Fatalf("the server recovered a panic: %s", log)
		}
	})
}
