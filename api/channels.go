package api

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ChannelLayer carries the messages of Daphne's channel standards between
// the host (HTTP requests, WebSockets) and the scripts' consumers: named
// channels holding a bounded queue of messages each, and groups of
// channels that a message can be sent to at once. The in-process
// MemoryLayer is the default; a layer shared by several hosts (Redis)
// implements the same interface. Messages are maps of script-neutral
// values without functions (see CopyMessage); a layer owns what it is
// given and receivers must not change what they get.
type ChannelLayer interface {
	// Send queues msg on channel. A channel holding Capacity messages
	// refuses it with ErrChannelFull.
	Send(ctx context.Context, channel string, msg map[string]Value) error
	// Receive takes the next message of channel, waiting for one until
	// ctx ends. Each message is received exactly once, by one receiver.
	Receive(ctx context.Context, channel string) (map[string]Value, error)
	// NewChannel returns a channel name no one used before: prefix, "!"
	// and a random part (the "reply" or "specific" channels).
	NewChannel(ctx context.Context, prefix string) (string, error)
	// GroupAdd makes channel a member of group (for GroupExpiry).
	GroupAdd(ctx context.Context, group, channel string) error
	// GroupDiscard removes channel from group; a channel that is not a
	// member is no error.
	GroupDiscard(ctx context.Context, group, channel string) error
	// GroupSend sends msg to every member of group. Members whose channel
	// is full miss the message, as with channels_redis; it is no error.
	GroupSend(ctx context.Context, group string, msg map[string]Value) error
	// Close ends the layer: waiting receivers get ErrLayerClosed.
	Close() error
}

// Errors of channel layers.
var (
	ErrChannelFull     = errors.New("api: channel full")
	ErrChannelName     = errors.New("api: invalid channel name")
	ErrGroupName       = errors.New("api: invalid group name")
	ErrMessage         = errors.New("api: invalid channel message")
	ErrMessageTooLarge = errors.New("api: channel message too large")
	// ErrLayerFull: the messages waiting in all channels together, or the
	// group memberships, reached the layer's bound.
	ErrLayerFull   = errors.New("api: channel layer full")
	ErrLayerClosed = errors.New("api: channel layer closed")
)

// Bounds and defaults of a channel layer (ChannelConfig's zero fields).
const (
	// MaxChannelName is the length limit on channel and group names of
	// the message standards.
	MaxChannelName = 200
	// DefaultChannelCapacity is how many messages a channel holds before
	// Send fails with ErrChannelFull (channels_redis's capacity).
	DefaultChannelCapacity = 100
	// DefaultChannelExpiry is how long a message waits to be received
	// before it is dropped (channels_redis's expiry).
	DefaultChannelExpiry = 60 * time.Second
	// DefaultGroupExpiry is how long a channel stays in a group after
	// its GroupAdd (channels_redis's group_expiry).
	DefaultGroupExpiry = 86400 * time.Second
	// DefaultMaxMessage bounds the size of one message (see CopyMessage).
	DefaultMaxMessage = 1 << 20
	// DefaultMaxPending bounds the size of all messages waiting in a
	// MemoryLayer's channels together.
	DefaultMaxPending = 64 << 20
	// DefaultMaxMemberships bounds the memberships of all groups of a
	// MemoryLayer together.
	DefaultMaxMemberships = 100000
	// maxMessageDepth bounds the nesting of lists and maps in a message.
	maxMessageDepth = 32
	// newChannelRandom is the length of NewChannel's random part.
	newChannelRandom = 16
	// DefaultChannelPrefix is NewChannel's prefix when none is given.
	DefaultChannelPrefix = "specific"
)

// ChannelConfig configures a MemoryLayer; zero fields take the defaults.
type ChannelConfig struct {
	Capacity       int           // messages per channel (DefaultChannelCapacity)
	Expiry         time.Duration // message expiry (DefaultChannelExpiry)
	GroupExpiry    time.Duration // membership expiry (DefaultGroupExpiry)
	MaxMessage     int64         // bytes of one message (DefaultMaxMessage)
	MaxPending     int64         // bytes of all waiting messages (DefaultMaxPending)
	MaxMemberships int           // memberships of all groups (DefaultMaxMemberships)
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

func (c ChannelConfig) withDefaults() ChannelConfig {
	if c.Capacity <= 0 {
		c.Capacity = DefaultChannelCapacity
	}
	if c.Expiry <= 0 {
		c.Expiry = DefaultChannelExpiry
	}
	if c.GroupExpiry <= 0 {
		c.GroupExpiry = DefaultGroupExpiry
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.MaxMemberships <= 0 {
		c.MaxMemberships = DefaultMaxMemberships
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func nameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// CheckChannelName reports whether name can name a channel: 1 to 200
// ASCII letters, digits, hyphens, underscores and periods, with at most
// one "!" (which separates the prefix of a NewChannel name from its
// random part) not at the start. The error wraps ErrChannelName.
func CheckChannelName(name string) error {
	if err := checkName(name, true); err != nil {
		return fmt.Errorf("%w %q: %s", ErrChannelName, clip(name), err.Error())
	}
	return nil
}

// CheckGroupName is CheckChannelName for groups, whose names have no
// "!". The error wraps ErrGroupName.
func CheckGroupName(name string) error {
	if err := checkName(name, false); err != nil {
		return fmt.Errorf("%w %q: %s", ErrGroupName, clip(name), err.Error())
	}
	return nil
}

func checkName(name string, bang bool) error {
	if name == "" {
		return errors.New("empty")
	}
	if len(name) > MaxChannelName {
		return fmt.Errorf("%d characters, at most %d allowed", len(name), MaxChannelName)
	}
	bangs := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case nameChar(c):
		case c == '!' && bang && i > 0 && bangs == 0:
			bangs++
		case c == '!' && bang:
			return errors.New(`one "!" at most, after the prefix`)
		default:
			return fmt.Errorf("character %q not allowed (letters, digits, - _ . only)", c)
		}
	}
	return nil
}

// clip shortens a bad name for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// CopyMessage checks that msg is a channel message and returns a deep
// copy of it with its size. Values are nil, booleans, numbers, strings,
// bytes, lists and maps (nested at most 32 deep); functions and other
// values are ErrMessage. The size counts the bytes of strings and keys
// plus 16 for every value; over max (if > 0) it is ErrMessageTooLarge.
func CopyMessage(msg map[string]Value, max int64) (map[string]Value, int64, error) {
	var size int64
	out, err := copyValue(msg, 0, &size, max)
	if err != nil {
		return nil, 0, err
	}
	return out.(map[string]Value), size, nil
}

func copyValue(v Value, depth int, size *int64, max int64) (Value, error) {
	*size += 16
	if max > 0 && *size > max {
		return nil, fmt.Errorf("%w: over %d bytes", ErrMessageTooLarge, max)
	}
	if depth > maxMessageDepth {
		return nil, fmt.Errorf("%w: nested more than %d deep", ErrMessage, maxMessageDepth)
	}
	switch x := v.(type) {
	case nil, bool, int64, float64:
		return x, nil
	case string:
		*size += int64(len(x))
	case []byte:
		*size += int64(len(x))
		if max > 0 && *size > max {
			return nil, fmt.Errorf("%w: over %d bytes", ErrMessageTooLarge, max)
		}
		return append([]byte(nil), x...), nil
	case []Value:
		out := make([]Value, len(x))
		for i, e := range x {
			c, err := copyValue(e, depth+1, size, max)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]Value:
		out := make(map[string]Value, len(x))
		for k, e := range x {
			*size += int64(len(k))
			c, err := copyValue(e, depth+1, size, max)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%w: a %s cannot travel on a channel", ErrMessage, typeName(v))
	}
	if max > 0 && *size > max {
		return nil, fmt.Errorf("%w: over %d bytes", ErrMessageTooLarge, max)
	}
	return v, nil
}

// MemoryLayer is the in-process ChannelLayer. Its memory is bounded by
// its ChannelConfig: every channel holds at most Capacity messages, all
// channels together at most MaxPending bytes of messages (CopyMessage's
// size), all groups together MaxMemberships memberships; a channel's
// entry exists only while it holds messages or has receivers waiting.
// Expired messages and memberships are dropped when their channel or
// group is next used, and by Sweep.
type MemoryLayer struct {
	cfg ChannelConfig

	mu       sync.Mutex
	channels map[string]*channelQueue
	groups   map[string]map[string]time.Time // group -> channel -> expiry
	members  int
	pending  int64
	closed   bool
	done     chan struct{}
}

type channelQueue struct {
	msgs    []queuedMessage
	wake    chan struct{} // closed when a message arrives; nil when no one waits
	waiters int
}

type queuedMessage struct {
	msg     map[string]Value
	size    int64
	expires time.Time
}

var _ ChannelLayer = (*MemoryLayer)(nil)

// NewMemoryLayer returns an empty in-process layer.
func NewMemoryLayer(cfg ChannelConfig) *MemoryLayer {
	return &MemoryLayer{cfg: cfg.withDefaults(), channels: map[string]*channelQueue{},
		groups: map[string]map[string]time.Time{}, done: make(chan struct{})}
}

// Config returns the layer's configuration, defaults applied.
func (l *MemoryLayer) Config() ChannelConfig { return l.cfg }

// Send implements ChannelLayer.
func (l *MemoryLayer) Send(_ context.Context, channel string, msg map[string]Value) error {
	if err := CheckChannelName(channel); err != nil {
		return err
	}
	m, size, err := CopyMessage(msg, l.cfg.MaxMessage)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrLayerClosed
	}
	return l.push(channel, m, size, l.cfg.Now())
}

// push queues an owned message; l.mu is held.
func (l *MemoryLayer) push(channel string, m map[string]Value, size int64, now time.Time) error {
	q := l.channels[channel]
	if q != nil {
		l.expire(q, now)
	}
	if q != nil && len(q.msgs) >= l.cfg.Capacity {
		return fmt.Errorf("%w: %s holds %d messages", ErrChannelFull, channel, len(q.msgs))
	}
	if l.pending+size > l.cfg.MaxPending {
		return fmt.Errorf("%w: %d bytes of messages waiting", ErrLayerFull, l.pending)
	}
	if q == nil {
		q = &channelQueue{}
		l.channels[channel] = q
	}
	q.msgs = append(q.msgs, queuedMessage{msg: m, size: size, expires: now.Add(l.cfg.Expiry)})
	l.pending += size
	if q.wake != nil {
		close(q.wake)
		q.wake = nil
	}
	return nil
}

// expire drops q's expired messages; l.mu is held.
func (l *MemoryLayer) expire(q *channelQueue, now time.Time) {
	n := 0
	for n < len(q.msgs) && !now.Before(q.msgs[n].expires) {
		l.pending -= q.msgs[n].size
		q.msgs[n] = queuedMessage{}
		n++
	}
	if n > 0 {
		q.msgs = q.msgs[n:]
	}
}

// Receive implements ChannelLayer.
func (l *MemoryLayer) Receive(ctx context.Context, channel string) (map[string]Value, error) {
	if err := CheckChannelName(channel); err != nil {
		return nil, err
	}
	l.mu.Lock()
	for {
		if l.closed {
			l.mu.Unlock()
			return nil, ErrLayerClosed
		}
		q := l.channels[channel]
		if q == nil {
			q = &channelQueue{}
			l.channels[channel] = q
		}
		l.expire(q, l.cfg.Now())
		if len(q.msgs) > 0 {
			m := q.msgs[0]
			q.msgs[0] = queuedMessage{}
			q.msgs = q.msgs[1:]
			l.pending -= m.size
			l.release(channel, q)
			l.mu.Unlock()
			return m.msg, nil
		}
		if q.wake == nil {
			q.wake = make(chan struct{})
		}
		wake := q.wake
		q.waiters++
		l.mu.Unlock()
		var err error
		select {
		case <-wake:
		case <-l.done:
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
		l.mu.Lock()
		q.waiters--
		if err != nil {
			l.release(channel, q)
			l.mu.Unlock()
			return nil, err
		}
	}
}

// release forgets q when it holds nothing and no one waits; l.mu is held.
func (l *MemoryLayer) release(channel string, q *channelQueue) {
	if len(q.msgs) == 0 && q.waiters == 0 && l.channels[channel] == q {
		delete(l.channels, channel)
	}
}

// NewChannel implements ChannelLayer: prefix (DefaultChannelPrefix when
// empty), "!" and 16 random letters and digits.
func (l *MemoryLayer) NewChannel(_ context.Context, prefix string) (string, error) {
	return NewChannelName(prefix)
}

// NewChannelName returns prefix + "!" + a random part, unique with
// overwhelming probability (16 characters of 62). The prefix must be a
// group-style name short enough for the result to be a channel name.
func NewChannelName(prefix string) (string, error) {
	if prefix == "" {
		prefix = DefaultChannelPrefix
	}
	if err := checkName(prefix, false); err != nil || len(prefix) > MaxChannelName-1-newChannelRandom {
		if err == nil {
			err = fmt.Errorf("prefix of %d characters, at most %d allowed", len(prefix), MaxChannelName-1-newChannelRandom)
		}
		return "", fmt.Errorf("%w: prefix %q: %s", ErrChannelName, clip(prefix), err.Error())
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [newChannelRandom]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + "!" + string(b[:]), nil
}

// GroupAdd implements ChannelLayer.
func (l *MemoryLayer) GroupAdd(_ context.Context, group, channel string) error {
	if err := CheckGroupName(group); err != nil {
		return err
	}
	if err := CheckChannelName(channel); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrLayerClosed
	}
	now := l.cfg.Now()
	g := l.groups[group]
	if g == nil {
		g = map[string]time.Time{}
		l.groups[group] = g
	}
	if _, ok := g[channel]; !ok {
		if l.members >= l.cfg.MaxMemberships {
			l.sweepGroups(now)
		}
		if l.members >= l.cfg.MaxMemberships {
			if len(g) == 0 {
				delete(l.groups, group)
			}
			return fmt.Errorf("%w: %d group memberships", ErrLayerFull, l.members)
		}
		l.members++
	}
	g[channel] = now.Add(l.cfg.GroupExpiry)
	return nil
}

// GroupDiscard implements ChannelLayer.
func (l *MemoryLayer) GroupDiscard(_ context.Context, group, channel string) error {
	if err := CheckGroupName(group); err != nil {
		return err
	}
	if err := CheckChannelName(channel); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if g := l.groups[group]; g != nil {
		if _, ok := g[channel]; ok {
			delete(g, channel)
			l.members--
		}
		if len(g) == 0 {
			delete(l.groups, group)
		}
	}
	return nil
}

// GroupSend implements ChannelLayer. The message is copied once and
// shared by the members' queues (receivers do not change messages).
func (l *MemoryLayer) GroupSend(_ context.Context, group string, msg map[string]Value) error {
	if err := CheckGroupName(group); err != nil {
		return err
	}
	m, size, err := CopyMessage(msg, l.cfg.MaxMessage)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrLayerClosed
	}
	now := l.cfg.Now()
	g := l.groups[group]
	for ch, exp := range g {
		if !now.Before(exp) {
			delete(g, ch)
			l.members--
			continue
		}
		l.push(ch, m, size, now) // a full member misses the message
	}
	if g != nil && len(g) == 0 {
		delete(l.groups, group)
	}
	return nil
}

// Sweep drops the messages and memberships expired at now and forgets
// the channels and groups left empty. The host calls it periodically.
func (l *MemoryLayer) Sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, q := range l.channels {
		l.expire(q, now)
		l.release(name, q)
	}
	l.sweepGroups(now)
}

func (l *MemoryLayer) sweepGroups(now time.Time) {
	for name, g := range l.groups {
		for ch, exp := range g {
			if !now.Before(exp) {
				delete(g, ch)
				l.members--
			}
		}
		if len(g) == 0 {
			delete(l.groups, name)
		}
	}
}

// LayerStats are a MemoryLayer's counts, for tests and operations.
type LayerStats struct {
	Channels    int   // channels holding messages or with receivers waiting
	Messages    int   // messages waiting (expired ones not yet dropped included)
	Pending     int64 // their size, in bytes (bounded by MaxPending)
	Groups      int   // groups with at least one member (expired ones not yet swept included)
	Memberships int   // channel memberships of all groups (bounded by MaxMemberships)
}

// Stats returns the layer's counts.
func (l *MemoryLayer) Stats() LayerStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := LayerStats{Channels: len(l.channels), Pending: l.pending, Groups: len(l.groups), Memberships: l.members}
	for _, q := range l.channels {
		s.Messages += len(q.msgs)
	}
	return s
}

// Close implements ChannelLayer: waiting receivers return ErrLayerClosed,
// waiting messages are dropped.
func (l *MemoryLayer) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.done)
		l.channels = map[string]*channelQueue{}
		l.groups = map[string]map[string]time.Time{}
		l.pending, l.members = 0, 0
	}
	return nil
}
