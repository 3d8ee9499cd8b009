package api

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestChannelNames(t *testing.T) {
	long := strings.Repeat("a", MaxChannelName)
	tests := []struct {
		name         string
		channel, grp bool // valid as a channel, as a group
	}{
		{"http.request", true, true},
		{"websocket.connect", true, true},
		{"a-b_c.D9", true, true},
		{"http.response!abc123", true, false},
		{"specific!", true, false},
		{long, true, true},
		{long + "a", false, false},
		{"", false, false},
		{"!abc", false, false},
		{"a!b!c", false, false},
		{"with space", false, false},
		{"uni\u00e9", false, false},
		{"a/b", false, false},
	}
	for _, tt := range tests {
		if got := CheckChannelName(tt.name) == nil; got != tt.channel {
			t.Errorf("CheckChannelName(%q) valid = %v, want %v", clip(tt.name), got, tt.channel)
		}
		if got := CheckGroupName(tt.name) == nil; got != tt.grp {
			t.Errorf("CheckGroupName(%q) valid = %v, want %v", clip(tt.name), got, tt.grp)
		}
	}
	if err := CheckChannelName("a b"); !errors.Is(err, ErrChannelName) {
		t.Errorf("CheckChannelName error %v does not match ErrChannelName", err)
	}
	if err := CheckGroupName("a!b"); !errors.Is(err, ErrGroupName) {
		t.Errorf("CheckGroupName error %v does not match ErrGroupName", err)
	}
}

func TestChannelSendReceive(t *testing.T) {
	l := NewMemoryLayer(ChannelConfig{})
	defer l.Close()
	ctx := context.Background()
	in := map[string]Value{"text": "hi", "n": int64(1), "list": []Value{"a", []byte("b")}, "m": map[string]Value{"k": true}}
	if err := l.Send(ctx, "chat", in); err != nil {
		t.Fatal(err)
	}
	in["text"] = "changed after send"
	got, err := l.Receive(ctx, "chat")
	if err != nil {
		t.Fatal(err)
	}
	if got["text"] != "hi" || got["n"] != int64(1) || string(got["list"].([]Value)[1].([]byte)) != "b" {
		t.Errorf("received %v", got)
	}
	if s := l.Stats(); s != (LayerStats{}) {
		t.Errorf("stats after the only message was received: %+v, want zero", s)
	}
}

func TestChannelMessageValues(t *testing.T) {
	l := NewMemoryLayer(ChannelConfig{MaxMessage: 1000})
	defer l.Close()
	ctx := context.Background()
	var fn Callable = callableFunc(func() {})
	if err := l.Send(ctx, "c", map[string]Value{"f": fn}); !errors.Is(err, ErrMessage) {
		t.Errorf("a function in a message: %v, want ErrMessage", err)
	}
	if err := l.Send(ctx, "c", map[string]Value{"s": strings.Repeat("x", 1000)}); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("a message over MaxMessage: %v, want ErrMessageTooLarge", err)
	}
	deep := map[string]Value{}
	for range maxMessageDepth + 2 {
		deep = map[string]Value{"d": deep}
	}
	if err := l.Send(ctx, "c", deep); !errors.Is(err, ErrMessage) {
		t.Errorf("a message nested too deep: %v, want ErrMessage", err)
	}
	if err := l.Send(ctx, "bad name", map[string]Value{}); !errors.Is(err, ErrChannelName) {
		t.Errorf("a bad channel name: %v, want ErrChannelName", err)
	}
}

func TestChannelCapacity(t *testing.T) {
	l := NewMemoryLayer(ChannelConfig{})
	defer l.Close()
	ctx := context.Background()
	for i := range DefaultChannelCapacity {
		if err := l.Send(ctx, "c", map[string]Value{"i": int64(i)}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := l.Send(ctx, "c", map[string]Value{}); !errors.Is(err, ErrChannelFull) {
		t.Fatalf("message over the capacity: %v, want ErrChannelFull", err)
	}
	if err := l.Send(ctx, "other", map[string]Value{}); err != nil {
		t.Errorf("another channel: %v", err)
	}
	m, _ := l.Receive(ctx, "c")
	if m["i"] != int64(0) {
		t.Errorf("first message received %v, want i=0 (FIFO)", m)
	}
	if err := l.Send(ctx, "c", map[string]Value{}); err != nil {
		t.Errorf("after one was received: %v", err)
	}
}

func TestChannelPendingBound(t *testing.T) {
	l := NewMemoryLayer(ChannelConfig{MaxPending: 1000})
	defer l.Close()
	ctx := context.Background()
	msg := map[string]Value{"s": strings.Repeat("x", 300)}
	var err error
	n := 0
	for ; n < 10 && err == nil; n++ {
		err = l.Send(ctx, "c"+string(rune('a'+n)), msg)
	}
	if !errors.Is(err, ErrLayerFull) || n != 4 {
		t.Errorf("send %d: %v, want ErrLayerFull at the 4th", n, err)
	}
	if p := l.Stats().Pending; p > 1000 {
		t.Errorf("pending %d bytes, over the bound 1000", p)
	}
}

func TestChannelExpiry(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	l := NewMemoryLayer(ChannelConfig{Now: clock})
	defer l.Close()
	ctx := context.Background()
	l.Send(ctx, "c", map[string]Value{"old": true})
	now.Add(int64(DefaultChannelExpiry - time.Second))
	l.Send(ctx, "c", map[string]Value{"new": true})
	now.Add(int64(2 * time.Second))
	m, err := l.Receive(ctx, "c")
	if err != nil || m["new"] != true {
		t.Errorf("received %v, %v; want the message that did not expire", m, err)
	}
	// Sweep drops messages of channels no one reads.
	l.Send(ctx, "idle", map[string]Value{})
	l.Sweep(clock().Add(DefaultChannelExpiry))
	if s := l.Stats(); s.Channels != 0 || s.Messages != 0 || s.Pending != 0 {
		t.Errorf("after the sweep: %+v, want nothing left", s)
	}
}

func TestChannelReceiveWaits(t *testing.T) {
	l := NewMemoryLayer(ChannelConfig{})
	ctx := context.Background()
	got := make(chan map[string]Value)
	go func() {
		m, _ := l.Receive(ctx, "c")
		got <- m
	}()
	time.Sleep(10 * time.Millisecond)
	l.Send(ctx, "c", map[string]Value{"x": int64(7)})
	if m := <-got; m["x"] != int64(7) {
		t.Errorf("waiting receiver got %v", m)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.Receive(cctx, "c"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("receive on an empty channel until the deadline: %v", err)
	}
	if s := l.Stats(); s.Channels != 0 {
		t.Errorf("a receiver that gave up left %d channels", s.Channels)
	}
	errc := make(chan error)
	go func() {
		_, err := l.Receive(ctx, "c")
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	l.Close()
	if err := <-errc; !errors.Is(err, ErrLayerClosed) {
		t.Errorf("receive when the layer closed: %v, want ErrLayerClosed", err)
	}
	if err := l.Send(ctx, "c", map[string]Value{}); !errors.Is(err, ErrLayerClosed) {
		t.Errorf("send after Close: %v, want ErrLayerClosed", err)
	}
}

// Every message goes to exactly one of several receivers.
func TestChannelExactlyOnce(t *testing.T) {
	l := NewMemoryLayer(ChannelConfig{})
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	const n, receivers = 500, 8
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range receivers {
		wg.Go(func() {
			for {
				m, err := l.Receive(ctx, "work")
				if err != nil {
					return
				}
				mu.Lock()
				seen[m["i"].(int64)]++
				mu.Unlock()
			}
		})
	}
	for i := range n {
		for l.Send(ctx, "work", map[string]Value{"i": int64(i)}) != nil {
			time.Sleep(time.Millisecond) // full: let the receivers catch up
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		k := len(seen)
		mu.Unlock()
		if k == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	for i := range int64(n) {
		if seen[i] != 1 {
			t.Errorf("message %d received %d times", i, seen[i])
		}
	}
}

func TestChannelGroups(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	l := NewMemoryLayer(ChannelConfig{Now: clock, MaxMemberships: 3})
	defer l.Close()
	ctx := context.Background()
	for _, ch := range []string{"a!1", "b!2"} {
		if err := l.GroupAdd(ctx, "room", ch); err != nil {
			t.Fatal(err)
		}
	}
	l.GroupAdd(ctx, "room", "a!1") // again: still one membership
	if err := l.GroupSend(ctx, "room", map[string]Value{"text": "hello"}); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"a!1", "b!2"} {
		m, err := l.Receive(ctx, ch)
		if err != nil || m["text"] != "hello" {
			t.Errorf("%s received %v, %v", ch, m, err)
		}
	}
	if err := l.GroupDiscard(ctx, "room", "b!2"); err != nil {
		t.Fatal(err)
	}
	if err := l.GroupDiscard(ctx, "room", "never!added"); err != nil {
		t.Errorf("discarding a channel that is no member: %v", err)
	}
	l.GroupSend(ctx, "room", map[string]Value{})
	if s := l.Stats(); s.Messages != 1 || s.Memberships != 1 {
		t.Errorf("after discarding b: %+v, want one message (for a) and one membership", s)
	}
	// The bound on memberships.
	l.GroupAdd(ctx, "g2", "x")
	l.GroupAdd(ctx, "g2", "y")
	if err := l.GroupAdd(ctx, "g2", "z"); !errors.Is(err, ErrLayerFull) {
		t.Errorf("a membership over the bound: %v, want ErrLayerFull", err)
	}
	// Memberships expire after GroupExpiry.
	now.Add(int64(DefaultGroupExpiry))
	l.GroupSend(ctx, "room", map[string]Value{})
	if err := l.GroupAdd(ctx, "g3", "z"); err != nil {
		t.Errorf("a membership once the others expired: %v", err)
	}
	l.Sweep(clock())
	if s := l.Stats(); s != (LayerStats{Memberships: 1, Groups: 1}) {
		t.Errorf("after the expiry: %+v, want only g3's membership, the old messages gone", s)
	}
	// A full member misses a group message; the others get it.
	l.GroupAdd(ctx, "g3", "full")
	for range DefaultChannelCapacity {
		l.Send(ctx, "full", map[string]Value{})
	}
	if err := l.GroupSend(ctx, "g3", map[string]Value{"k": "v"}); err != nil {
		t.Errorf("group send with a full member: %v", err)
	}
	if m, _ := l.Receive(ctx, "z"); m["k"] != "v" {
		t.Errorf("z received %v", m)
	}
}

func TestNewChannelName(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		name, err := NewChannelName("http.response")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "http.response!") || CheckChannelName(name) != nil || seen[name] {
			t.Fatalf("NewChannelName gave %q", name)
		}
		seen[name] = true
	}
	if name, _ := NewChannelName(""); !strings.HasPrefix(name, DefaultChannelPrefix+"!") {
		t.Errorf("default prefix: %q", name)
	}
	for _, bad := range []string{"a!b", "a b", strings.Repeat("p", MaxChannelName)} {
		if _, err := NewChannelName(bad); !errors.Is(err, ErrChannelName) {
			t.Errorf("NewChannelName(%q): %v, want ErrChannelName", clip(bad), err)
		}
	}
}

func TestConsumersFollowGenerations(t *testing.T) {
	st, err := NewState(StateConfig{Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- st.Consumers.Serve(ctx) }()
	got := make(chan string, 10)
	gen := func(tag string) *Registrations {
		r := NewRegistrations(st, "")
		r.RegisterConsumer("work", "f.lua", func(_ context.Context, m map[string]Value) error {
			got <- tag + ":" + m["v"].(string) + ":" + m["channel"].(string)
			return nil
		})
		return r
	}
	g1 := gen("g1")
	if err := g1.Commit(nil); err != nil {
		t.Fatal(err)
	}
	st.Channels.Send(ctx, "work", map[string]Value{"v": "a"})
	if s := <-got; s != "g1:a:work" {
		t.Errorf("first generation's consumer got %q", s)
	}
	g2 := gen("g2")
	g2.Commit(g1)
	g1.Close(ctx)
	st.Channels.Send(ctx, "work", map[string]Value{"v": "b"})
	if s := <-got; s != "g2:b:work" {
		t.Errorf("after the reload the consumer got %q, want the new generation's", s)
	}
	if f, ok := g2.ConsumerFile("work"); !ok || f != "f.lua" {
		t.Errorf("ConsumerFile = %q, %v", f, ok)
	}
	// A generation without the consumer removes it.
	g3 := NewRegistrations(st, "")
	g3.Commit(g2)
	if chans := st.Consumers.Channels(); len(chans) != 0 {
		t.Errorf("consumers after a generation without any: %v", chans)
	}
	cancel()
	if err := <-served; !errors.Is(err, context.Canceled) {
		t.Errorf("Serve returned %v", err)
	}
}

func TestConsumersBoundedWorkers(t *testing.T) {
	st, _ := NewState(StateConfig{Hostname: "h"})
	defer st.Close()
	st.Consumers.Workers = 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var running, peak atomic.Int32
	release := make(chan struct{})
	var done sync.WaitGroup
	r := NewRegistrations(st, "")
	for _, ch := range []string{"a", "b", "c"} {
		r.RegisterConsumer(ch, "", func(context.Context, map[string]Value) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-release
			running.Add(-1)
			done.Done()
			return nil
		})
	}
	r.Commit(nil)
	served := make(chan struct{})
	go func() { st.Consumers.Serve(ctx); close(served) }()
	done.Add(6)
	for _, ch := range []string{"a", "b", "c", "a", "b", "c"} {
		st.Channels.Send(ctx, ch, map[string]Value{})
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	done.Wait()
	if p := peak.Load(); p != 2 {
		t.Errorf("%d consumer calls ran at once, want Workers = 2", p)
	}
	cancel()
	<-served
}

func TestConsumersBound(t *testing.T) {
	st, _ := NewState(StateConfig{Hostname: "h"})
	defer st.Close()
	r := NewRegistrations(st, "")
	fn := func(context.Context, map[string]Value) error { return nil }
	for i := range MaxConsumers {
		if err := r.RegisterConsumer("c"+strings.Repeat("x", i%5)+string(rune('a'+i%26))+strconv.Itoa(i), "", fn); err != nil {
			t.Fatalf("consumer %d: %v", i, err)
		}
	}
	if err := r.RegisterConsumer("one.more", "", fn); !errors.Is(err, ErrTooManyConsumers) {
		t.Errorf("a consumer over the bound: %v, want ErrTooManyConsumers", err)
	}
	if err := r.RegisterConsumer("ca0", "", fn); err != nil {
		t.Errorf("replacing a consumer at the bound: %v", err)
	}
}

// A consumer call runs in a scope of its own with CallTimeout; a failure
// reaches OnError with the message.
func TestConsumersCallScope(t *testing.T) {
	st, _ := NewState(StateConfig{Hostname: "h"})
	defer st.Close()
	st.Consumers.CallTimeout = 50 * time.Millisecond
	failed := make(chan error, 1)
	st.Consumers.OnError = func(_ context.Context, channel string, msg map[string]Value, err error) {
		if channel == "slow" && msg["k"] == "v" {
			failed <- err
		}
	}
	r := NewRegistrations(st, "")
	r.RegisterConsumer("slow", "", func(ctx context.Context, _ map[string]Value) error {
		if ScopeOf(ctx) == nil {
			return errors.New("no scope")
		}
		<-ctx.Done()
		return context.Cause(ctx)
	})
	r.Commit(nil)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { st.Consumers.Serve(ctx); close(served) }()
	defer func() { cancel(); <-served }()
	st.Channels.Send(ctx, "slow", map[string]Value{"k": "v"})
	select {
	case err := <-failed:
		if !errors.Is(err, ErrHarakiri) {
			t.Errorf("consumer failed with %v, want ErrHarakiri", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the consumer was not interrupted")
	}
}
