package lua

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/vmpool"
)

// A call that finds no free state within PoolWait fails, is counted, and
// the pool serves again once the state is back.
func TestPoolBusy(t *testing.T) {
	f := newFixture(t, map[string]string{"a.lua": `
uwsgi.register_rpc("hold", function(s) uwsgi.async_sleep(tonumber(s)) return "held" end)
`})
	_, _ = f.mustLoad(Options{PoolSize: 1, PoolWait: 100 * time.Millisecond})
	holding := make(chan error, 1)
	go func() {
		_, err := f.rpc(context.Background(), "hold", "1")
		holding <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	_, err := f.rpc(context.Background(), "hold", "0")
	if waited := time.Since(start); waited < 80*time.Millisecond || waited > 900*time.Millisecond {
		t.Errorf("waited %v, want about 100ms", waited)
	}
	if !errors.Is(err, ErrPoolBusy) || !errors.Is(err, vmpool.ErrBusy) || !strings.Contains(err.Error(), "busy") {
		t.Errorf("error %v, want ErrPoolBusy wrapping vmpool.ErrBusy", err)
	}
	if got := f.state.Counters.PoolTimeouts.Load(); got != 1 {
		t.Errorf("PoolTimeouts %d, want 1", got)
	}
	if err := <-holding; err != nil {
		t.Fatal(err)
	}
	if got, err := f.rpc(context.Background(), "hold", "0"); got != "held" || err != nil {
		t.Errorf("after the wait: %q, %v", got, err)
	}

	// Without counters the timeout is still an error.
	f.state.Counters = nil
	go func() {
		_, err := f.rpc(context.Background(), "hold", "0.5")
		holding <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if _, err := f.rpc(context.Background(), "hold", "0"); !errors.Is(err, ErrPoolBusy) {
		t.Errorf("without counters: %v, want ErrPoolBusy", err)
	}
	if err := <-holding; err != nil {
		t.Fatal(err)
	}
}

func TestPoolDefaults(t *testing.T) {
	e := New(Options{})
	if e.opts.PoolSize < 8 || e.opts.PoolWait != DefaultPoolWait {
		t.Errorf("PoolSize %d, PoolWait %v; want at least 8 and %v", e.opts.PoolSize, e.opts.PoolWait, DefaultPoolWait)
	}
}

// Top-level code that never ends fails the load, in the first state and
// in replicas built later, naming the file.
func TestLoadTimeout(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"first state", map[string]string{"a.lua": "local x = 1", "b.lua": "while true do end"}},
		{"replica", map[string]string{"b.lua": `if uwsgi.cache_inc("n") > 1 then while true do end end`}},
		{"required module", map[string]string{"b.lua": `require("lib.spin")`, "lib/spin.lua": "while true do end"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.files)
			f.env.LoadTimeout = 100 * time.Millisecond
			start := time.Now()
			_, _, err := f.load(Options{PoolSize: 2})
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("load took %v", elapsed)
			}
			var se *ScriptError
			if !errors.As(err, &se) || !errors.Is(err, api.ErrLoadTimeout) {
				t.Fatalf("error %v, want a *ScriptError wrapping api.ErrLoadTimeout", err)
			}
			if !strings.Contains(err.Error(), "b.lua") {
				t.Errorf("error %q does not name b.lua", err)
			}
		})
	}
}
