package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Timer errors.
var (
	ErrTimerInterval = errors.New("api: timer interval must be positive")
	ErrCronField     = errors.New("api: cron field out of range")
	ErrTimersServing = errors.New("api: timers already served")
)

// TimerID identifies a timer or cron entry for removal.
type TimerID uint64

// Cron is a uWSGI cron entry: each field is a value, -1 for "any", or
// -N for "every N" (the field's value is a multiple of N, like */N).
// Month is 1-12, Weekday 0-6 with 0 (or 7) Sunday. When both Day and
// Weekday are set (>= 0) either may match, as in crontab.
type Cron struct {
	// Minute is 0-59, Hour 0-23, Day (of the month) 1-31; each, like
	// Month and Weekday, may be -1 or -N instead.
	Minute, Hour, Day, Month, Weekday int
}

// Validate checks the fields' ranges.
func (c Cron) Validate() error {
	fields := []struct {
		name      string
		v, lo, hi int
	}{
		{"minute", c.Minute, 0, 59}, {"hour", c.Hour, 0, 23}, {"day", c.Day, 1, 31},
		{"month", c.Month, 1, 12}, {"weekday", c.Weekday, 0, 7},
	}
	for _, f := range fields {
		if f.v < 0 && -f.v <= f.hi+1 || f.v >= f.lo && f.v <= f.hi {
			continue
		}
		return fmt.Errorf("%w: %s %d (want %d..%d, -1 for any, -N for every N)", ErrCronField, f.name, f.v, f.lo, f.hi)
	}
	return nil
}

// Matches reports whether the entry runs in the minute of t (local time).
func (c Cron) Matches(t time.Time) bool {
	match := func(field, v int) bool {
		if field < 0 {
			return v%(-field) == 0
		}
		return field == v
	}
	week := c.Weekday
	if week == 7 {
		week = 0
	}
	wd := int(t.Weekday())
	dayOK, weekOK := match(c.Day, t.Day()), match(week, wd)
	days := dayOK && weekOK
	if c.Day >= 0 && c.Weekday >= 0 {
		days = dayOK || weekOK
	}
	return match(c.Minute, t.Minute()) && match(c.Hour, t.Hour()) && match(c.Month, int(t.Month())) && days
}

type timerEntry struct {
	signal    uint8
	every     time.Duration // 0 for cron entries
	left      int           // iterations left, 0 = unlimited
	next      time.Time
	cron      Cron
	isCron    bool
	lastMinut time.Time
}

// Timers raise signals on schedule: uWSGI's timers, rb-timers and cron.
// Entries can be added before or while Serve runs; Serve, run by the
// owner in a goroutine of its own, fires them.
type Timers struct {
	signals *Signals
	// Logger receives the signals a timer could not raise; nil means
	// slog.Default(). Set it before Serve.
	Logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	entries map[TimerID]*timerEntry
	lastID  TimerID
	wake    chan struct{}
	serving bool
}

// NewTimers returns timers raising signals on sigs.
func NewTimers(sigs *Signals) *Timers {
	return &Timers{signals: sigs, now: time.Now, entries: make(map[TimerID]*timerEntry), wake: make(chan struct{}, 1)}
}

// AddTimer raises signal num every interval, iterations times (0 =
// forever). uWSGI's add_timer is AddTimer(num, d, 0); add_rb_timer takes
// the iterations.
func (t *Timers) AddTimer(num uint8, every time.Duration, iterations int) (TimerID, error) {
	if every <= 0 {
		return 0, fmt.Errorf("%w: %v", ErrTimerInterval, every)
	}
	if iterations < 0 {
		return 0, fmt.Errorf("api: timer iterations must not be negative: %d", iterations)
	}
	return t.add(&timerEntry{signal: num, every: every, left: iterations, next: t.now().Add(every)}), nil
}

// AddCron raises signal num in every minute c matches.
func (t *Timers) AddCron(num uint8, c Cron) (TimerID, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	now := t.now()
	return t.add(&timerEntry{signal: num, cron: c, isCron: true, next: now.Truncate(time.Minute).Add(time.Minute)}), nil
}

func (t *Timers) add(e *timerEntry) TimerID {
	t.mu.Lock()
	t.lastID++
	id := t.lastID
	t.entries[id] = e
	t.mu.Unlock()
	t.poke()
	return id
}

// Remove deletes an entry; it reports whether it existed.
func (t *Timers) Remove(id TimerID) bool {
	t.mu.Lock()
	_, ok := t.entries[id]
	delete(t.entries, id)
	t.mu.Unlock()
	if ok {
		t.poke()
	}
	return ok
}

// Len returns the number of entries.
func (t *Timers) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

func (t *Timers) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Serve fires entries until ctx is done. A signal that cannot be queued
// is logged and the entry keeps its schedule.
func (t *Timers) Serve(ctx context.Context) error {
	t.mu.Lock()
	if t.serving {
		t.mu.Unlock()
		return ErrTimersServing
	}
	t.serving = true
	t.mu.Unlock()
	log := t.Logger
	if log == nil {
		log = slog.Default()
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due := t.fire(log)
		wait := time.Hour
		if !due.IsZero() {
			wait = max(due.Sub(t.now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-t.wake:
		case <-timer.C:
		}
	}
}

// fire raises every due entry and returns when the next one is due.
func (t *Timers) fire(log *slog.Logger) time.Time {
	now := t.now()
	var raise []uint8
	var next time.Time
	t.mu.Lock()
	for id, e := range t.entries {
		if !now.Before(e.next) {
			if e.isCron {
				minute := now.Truncate(time.Minute)
				if e.cron.Matches(now) && !minute.Equal(e.lastMinut) {
					e.lastMinut = minute
					raise = append(raise, e.signal)
				}
				e.next = minute.Add(time.Minute)
			} else {
				raise = append(raise, e.signal)
				// Skip missed beats rather than firing a burst.
				for !now.Before(e.next) {
					e.next = e.next.Add(e.every)
				}
				if e.left > 0 {
					if e.left--; e.left == 0 {
						delete(t.entries, id)
						continue
					}
				}
			}
		}
		if next.IsZero() || e.next.Before(next) {
			next = e.next
		}
	}
	t.mu.Unlock()
	for _, num := range raise {
		if err := t.signals.Raise(num); err != nil {
			log.Warn("timer could not raise its signal", "signal", num, "err", err)
		}
	}
	return next
}
