package api

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// ConsumerFunc handles one message of a channel; msg carries the key
// "channel" with the channel's name, as Daphne's consumers get it.
type ConsumerFunc func(ctx context.Context, msg map[string]Value) error

// MaxConsumers bounds the channels one generation registers consumers
// for: each has a reader goroutine while it is registered.
const MaxConsumers = 1024

// ErrTooManyConsumers: a registration over MaxConsumers.
var ErrTooManyConsumers = errors.New("api: too many consumers")

// DefaultConsumerWorkers is how many consumer calls run at once when
// Consumers.Workers is not set.
const DefaultConsumerWorkers = 16

// Consumers runs the consumers the scripts registered: one goroutine per
// channel with a consumer receives its messages from the layer, and at
// most Workers calls run at once; a message waits in its reader (one per
// channel) while every worker is busy, the others in the layer, within
// its bounds. Each message goes to the consumer registered for its
// channel when it is delivered, so after a reload new messages reach the
// new generation's consumer. The host runs Serve; registrations go
// through Registrations.RegisterConsumer and Commit.
type Consumers struct {
	// Layer is the channel layer the consumers' messages come from.
	Layer ChannelLayer
	// Workers bounds the consumer calls running at once
	// (DefaultConsumerWorkers when <= 0).
	Workers int
	// CallTimeout is each call's time limit (0: none).
	CallTimeout time.Duration
	// Logger receives failed consumer calls and dropped or unreceivable
	// messages; nil means slog.Default(). NewState sets the State's.
	Logger *slog.Logger
	// OnError, when set, is told about a consumer call that failed, after
	// it was logged (the host answers an http.request with a 500).
	OnError func(ctx context.Context, channel string, msg map[string]Value, err error)

	mu      sync.Mutex
	entries map[string]consumerEntry
	changed chan struct{}
}

type consumerEntry struct {
	fn   ConsumerFunc
	file string
}

// NewConsumers returns the consumers of layer, none registered.
func NewConsumers(layer ChannelLayer) *Consumers {
	return &Consumers{Layer: layer, entries: map[string]consumerEntry{}, changed: make(chan struct{})}
}

// update removes and adds consumers in one step.
func (c *Consumers) update(remove []string, add map[string]consumerEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range remove {
		delete(c.entries, ch)
	}
	maps.Copy(c.entries, add)
	close(c.changed)
	c.changed = make(chan struct{})
}

// Lookup returns the consumer of channel now, and the file that
// registered it.
func (c *Consumers) Lookup(channel string) (ConsumerFunc, string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[channel]
	return e.fn, e.file, ok
}

// Channels returns the channels that have a consumer, sorted.
func (c *Consumers) Channels() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.entries))
}

func (c *Consumers) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// Serve delivers messages to consumers until ctx ends; it returns
// ctx's error once the calls it started have returned. Calls run under
// ctx (its memory budget) in scopes of their own.
func (c *Consumers) Serve(ctx context.Context) error {
	workers := c.Workers
	if workers <= 0 {
		workers = DefaultConsumerWorkers
	}
	slots := make(chan struct{}, workers)
	readers := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	defer func() {
		for _, stop := range readers {
			stop()
		}
		wg.Wait()
	}()
	for {
		c.mu.Lock()
		chans := slices.Collect(maps.Keys(c.entries))
		changed := c.changed
		c.mu.Unlock()
		for ch, stop := range readers {
			if !slices.Contains(chans, ch) {
				stop()
				delete(readers, ch)
			}
		}
		for _, ch := range chans {
			if readers[ch] == nil {
				rctx, stop := context.WithCancel(ctx)
				readers[ch] = stop
				wg.Go(func() { c.read(ctx, rctx, ch, slots, &wg) })
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// read receives channel's messages until rctx ends, handing each to a
// worker slot; the calls run under ctx, so that a reader stopped because
// its consumer went away does not stop calls already running.
func (c *Consumers) read(ctx, rctx context.Context, channel string, slots chan struct{}, wg *sync.WaitGroup) {
	for {
		msg, err := c.Layer.Receive(rctx, channel)
		if err != nil {
			if rctx.Err() != nil || errors.Is(err, ErrLayerClosed) {
				return
			}
			c.logger().Error("channel receive failed", "channel", channel, "err", err)
			select {
			case <-rctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-rctx.Done():
			c.logger().Warn("channel message dropped: its consumer stopped", "channel", channel)
			return
		}
		wg.Go(func() {
			defer func() { <-slots }()
			c.Deliver(ctx, channel, msg)
		})
	}
}

// Deliver calls the consumer of channel now with a copy of msg carrying
// the key "channel", in a scope of its own; a message whose channel has
// no consumer any more is dropped. Failures are logged and reported to
// OnError.
func (c *Consumers) Deliver(ctx context.Context, channel string, msg map[string]Value) {
	fn, file, ok := c.Lookup(channel)
	if !ok {
		c.logger().Warn("channel message dropped: no consumer", "channel", channel)
		return
	}
	m, _, err := CopyMessage(msg, 0)
	if err != nil {
		c.logger().Error("channel message dropped", "channel", channel, "err", err)
		return
	}
	m["channel"] = channel
	cctx, _, done := NewScope(ctx, nil, c.CallTimeout)
	err = fn(cctx, m)
	done()
	if err != nil {
		c.logger().Error("consumer failed", "channel", channel, "file", file, "err", err)
		if c.OnError != nil {
			c.OnError(ctx, channel, msg, err)
		}
	}
}
