// Command wsbench loads a WebSocket server for tests/bench_ws.sh.
//
//	wsbench -mode echo -c 100 -d 5s ws://127.0.0.1:8080/ws
//	    c connections, each sending a message and waiting for its echo in
//	    a loop: round trips per second and latency percentiles
//	wsbench -mode idle -c 10000 -hold 5s ws://...
//	    opens c sockets, holds them, then checks every one still answers
//	wsbench -mode broadcast -c 1000 -n 20 ws://...
//	    c members of a room whose every message goes to every member (the
//	    chat example): one of them sends n messages carrying their send
//	    time; the delivery latency to every member, percentiles
//
// It prints one JSON object on stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

func main() {
	mode := flag.String("mode", "echo", "echo, idle or broadcast")
	conns := flag.Int("c", 100, "connections")
	dur := flag.Duration("d", 5*time.Second, "echo: duration")
	size := flag.Int("size", 32, "echo: message size in bytes")
	hold := flag.Duration("hold", 5*time.Second, "idle: how long to hold the sockets")
	n := flag.Int("n", 20, "broadcast: messages sent")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: wsbench [flags] ws://HOST:PORT/PATH")
		os.Exit(2)
	}
	url := flag.Arg(0)
	var out map[string]any
	var err error
	switch *mode {
	case "echo":
		out, err = echo(url, *conns, *dur, *size)
	case "idle":
		out, err = idle(url, *conns, *hold)
	case "broadcast":
		out, err = broadcast(url, *conns, *n)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

func dial(ctx context.Context, url string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(16 << 20)
	return c, nil
}

// dialAll opens n sockets, 50 at a time.
func dialAll(ctx context.Context, url string, n int) ([]*websocket.Conn, error) {
	cs := make([]*websocket.Conn, n)
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dial(ctx, url)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			cs[i] = c
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		closeAll(cs)
		return nil, err
	}
	return cs, nil
}

func closeAll(cs []*websocket.Conn) {
	for _, c := range cs {
		if c != nil {
			c.CloseNow()
		}
	}
}

func percentiles(lat []time.Duration) map[string]any {
	slices.Sort(lat)
	at := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())
	}
	return map[string]any{"p50_us": at(0.5), "p90_us": at(0.9), "p99_us": at(0.99), "max_us": at(1)}
}

func echo(url string, conns int, dur time.Duration, size int) (map[string]any, error) {
	ctx := context.Background()
	cs, err := dialAll(ctx, url, conns)
	if err != nil {
		return nil, err
	}
	defer closeAll(cs)
	msg := []byte(strings.Repeat("x", size))
	var ok, errs atomic.Int64
	lats := make([][]time.Duration, conns)
	end := time.Now().Add(dur)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				start := time.Now()
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := c.Write(wctx, websocket.MessageText, msg)
				var got []byte
				if err == nil {
					_, got, err = c.Read(wctx)
				}
				cancel()
				if err != nil || len(got) != len(msg) {
					errs.Add(1)
					return
				}
				ok.Add(1)
				lats[i] = append(lats[i], time.Since(start))
			}
		}()
	}
	wg.Wait()
	out := percentiles(slices.Concat(lats...))
	out["mode"], out["c"], out["ok"], out["errors"] = "echo", conns, ok.Load(), errs.Load()
	out["rps"] = float64(ok.Load()) / dur.Seconds()
	return out, nil
}

func idle(url string, conns int, hold time.Duration) (map[string]any, error) {
	ctx := context.Background()
	start := time.Now()
	cs, err := dialAll(ctx, url, conns)
	if err != nil {
		return nil, err
	}
	defer closeAll(cs)
	opened := time.Since(start)
	for _, c := range cs {
		c.CloseRead(ctx) // a reader, so that pings get their pongs
	}
	// Tell the script holding the sockets that they are all open.
	fmt.Fprintln(os.Stderr, "wsbench: all open")
	time.Sleep(hold)
	// Every socket still answers.
	alive := 0
	for _, c := range cs {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if c.Ping(pctx) == nil {
			alive++
		}
		cancel()
	}
	return map[string]any{"mode": "idle", "c": conns, "open_s": opened.Seconds(), "alive": alive}, nil
}

func broadcast(url string, conns, n int) (map[string]any, error) {
	ctx := context.Background()
	cs, err := dialAll(ctx, url, conns)
	if err != nil {
		return nil, err
	}
	defer closeAll(cs)
	time.Sleep(500 * time.Millisecond) // every member joined the group
	var mu sync.Mutex
	var lat []time.Duration
	var got atomic.Int64
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, data, err := c.Read(rctx)
				cancel()
				if err != nil {
					return
				}
				sent, err := strconv.ParseInt(strings.TrimPrefix(string(data), "t="), 10, 64)
				if err != nil {
					continue
				}
				d := time.Since(time.Unix(0, sent))
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
				got.Add(1)
			}
		}()
	}
	for range n {
		if err := cs[0].Write(ctx, websocket.MessageText, []byte("t="+strconv.FormatInt(time.Now().UnixNano(), 10))); err != nil {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	out := percentiles(lat)
	out["mode"], out["c"], out["sent"], out["delivered"], out["want"] = "broadcast", conns, n, got.Load(), int64(n*conns)
	return out, nil
}
