package host_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// TestReloadLoadTimeout: a file whose top level does not end fails the
// reload at the load timeout, naming the file; the count goes up and the
// serving generation stays.
func TestReloadLoadTimeout(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app.fake"), nil, 0o644)
	var calls atomic.Int64
	eng := &fakeEngine{serve: digestApp(&calls), load: func(ctx context.Context, env *api.Registrations, f api.File) error {
		if f.Name != "hang.fake" {
			return nil
		}
		fctx, cancel := env.FileContext(ctx, f.Name)
		defer cancel()
		<-fctx.Done() // an endless top level, interrupted as engines do
		return fmt.Errorf("fake: %s: %w", f.Name, context.Cause(fctx))
	}}
	var rl *host.Reloader
	ts := startServer(t, "tcp", host.Limits{}, func(srv *host.Server) {
		rl = &host.Reloader{Server: srv, Dir: dir, Engines: []api.Engine{eng},
			Logger: quietLogger, LoadTimeout: 100 * time.Millisecond}
		if err := rl.Reload(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	})
	serving := rl.Status().Generation
	os.WriteFile(filepath.Join(dir, "hang.fake"), nil, 0o644)
	err := rl.Reload(context.Background(), false)
	if !errors.Is(err, api.ErrLoadTimeout) || !errors.Is(err, host.ErrReloadFailed) || !strings.Contains(err.Error(), "hang.fake") {
		t.Errorf("reload with a hanging file = %v, want ErrReloadFailed and ErrLoadTimeout naming hang.fake", err)
	}
	if got := ts.state.Counters.LoadTimeouts.Load(); got != 1 {
		t.Errorf("LoadTimeouts = %d, want 1", got)
	}
	if got := rl.Status().Generation; got != serving {
		t.Errorf("serving generation %d after the failed reload, want %d", got, serving)
	}
	c := ts.dial(t)
	mustWrite(t, c, append(appRequest(t, 2), "ok"...))
	if got, want := responseBody(t, c), wantDigest([]byte("ok")); got != want {
		t.Errorf("the old generation answered %q, want %q", got, want)
	}
}

// TestReloadHungLoadDoesNotBlock: while a load hangs (an engine that does
// not watch its context), Changed answers and Close gives up at its
// context instead of waiting for the load.
func TestReloadHungLoadDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app.fake"), nil, 0o644)
	unblock := make(chan struct{})
	loading := make(chan struct{})
	eng := &fakeEngine{serve: digestApp(new(atomic.Int64)), load: func(ctx context.Context, env *api.Registrations, f api.File) error {
		close(loading)
		<-unblock
		return nil
	}}
	srv := &host.Server{State: newState(t), Logger: quietLogger}
	rl := &host.Reloader{Server: srv, Dir: dir, Engines: []api.Engine{eng}, Logger: quietLogger}
	done := make(chan error, 1)
	go func() { done <- rl.Reload(context.Background(), false) }()
	<-loading
	rl.Changed()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := rl.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close during a hung load = %v, want the context's deadline", err)
	}
	if err := rl.Reload(ctx, false); !errors.Is(err, host.ErrReloadFailed) {
		t.Errorf("Reload waiting for a hung one = %v, want ErrReloadFailed at the context's end", err)
	}
	close(unblock)
	if err := <-done; err != nil {
		t.Errorf("the hung reload, unblocked: %v", err)
	}
	if err := rl.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestStatusContainment: the status packet carries the memory budget and
// the containment counters.
func TestStatusContainment(t *testing.T) {
	st, err := api.NewState(api.StateConfig{MemoryLimit: 1 << 30, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	srv := &host.Server{State: st, Logger: quietLogger}
	rl := &host.Reloader{Server: srv, Dir: t.TempDir(), Logger: quietLogger}
	srv.HandleReloads(rl)
	l := listen(t, "unix")
	go srv.ServeOps(l)
	t.Cleanup(func() { srv.Close() })
	st.Counters.PoolTimeouts.Add(1)
	st.Counters.LoadTimeouts.Add(2)
	st.Counters.SignalsCoalesced.Add(3)
	st.Counters.Restarts.Add(4)

	c := uwsgi.NewClient(l.Addr().String())
	defer c.Close()
	var got map[string]string
	waitFor(t, "the memory watch to read the heap", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		vars, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = map[string]string{}
		for _, v := range vars {
			got[string(v.Key)] = string(v.Value)
		}
		return got["heap_in_use"] != "0"
	})
	want := map[string]string{"memory_limit": "1073741824", "memory_kills": "0", "pool_timeouts": "1",
		"load_timeouts": "2", "signals_coalesced": "3", "restarts": "4"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("status %s = %q, want %q", k, got[k], v)
		}
	}
}

// TestCallsCountedInMemory: the calls the server makes run under its
// memory budget (api.NewScope registers them with it).
func TestCallsCountedInMemory(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{}, func(srv *host.Server) {
		srv.State.RPC.Register("calls", func(ctx context.Context, _ [][]byte) ([]byte, error) {
			if api.MemoryOf(ctx) != srv.State.Memory {
				return []byte("no budget in the call's context"), nil
			}
			return []byte(strconv.Itoa(srv.State.Memory.Calls())), nil
		})
	})
	c := uwsgi.NewClient(ts.addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if got, err := c.CallString(ctx, "calls"); got != "1" || err != nil {
		t.Errorf("calls running in the budget during an RPC = %q, %v; want 1", got, err)
	}
}
