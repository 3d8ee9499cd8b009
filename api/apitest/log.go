package apitest

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// LogRecord is one record the host's logger received.
type LogRecord struct {
	Level   slog.Level        // the record's level
	Message string            // the record's message, without attributes
	Attrs   map[string]string // values formatted with slog.Value.String
}

// LogRecorder is a slog.Handler keeping every record, at every level.
type LogRecorder struct {
	mu   sync.Mutex
	recs []LogRecord
}

// Records returns the records so far.
func (l *LogRecorder) Records() []LogRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.recs)
}

// Find returns the first record with message msg.
func (l *LogRecorder) Find(msg string) (LogRecord, bool) {
	for _, r := range l.Records() {
		if r.Message == msg {
			return r, true
		}
	}
	return LogRecord{}, false
}

// Count returns the number of records with message msg.
func (l *LogRecorder) Count(msg string) int {
	n := 0
	for _, r := range l.Records() {
		if r.Message == msg {
			n++
		}
	}
	return n
}

// String renders the records one a line, for failure reports.
func (l *LogRecorder) String() string {
	var b strings.Builder
	for _, r := range l.Records() {
		fmt.Fprintf(&b, "%s %q", r.Level, r.Message)
		keys := make([]string, 0, len(r.Attrs))
		for k := range r.Attrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%q", k, r.Attrs[k])
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Enabled implements slog.Handler: everything is recorded.
func (l *LogRecorder) Enabled(context.Context, slog.Level) bool { return true }

// Handle implements slog.Handler.
func (l *LogRecorder) Handle(_ context.Context, r slog.Record) error {
	return attrHandler{rec: l}.Handle(context.Background(), r)
}

// WithAttrs implements slog.Handler.
func (l *LogRecorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return attrHandler{rec: l}.WithAttrs(attrs)
}

// WithGroup implements slog.Handler.
func (l *LogRecorder) WithGroup(name string) slog.Handler {
	return attrHandler{rec: l}.WithGroup(name)
}

// attrHandler records into rec with attributes added by With.
type attrHandler struct {
	rec    *LogRecorder
	prefix string
	attrs  map[string]string
}

func (h attrHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h attrHandler) Handle(_ context.Context, r slog.Record) error {
	attrs := make(map[string]string, len(h.attrs)+r.NumAttrs())
	for k, v := range h.attrs {
		attrs[k] = v
	}
	r.Attrs(func(a slog.Attr) bool {
		flatten(attrs, h.prefix, a)
		return true
	})
	h.rec.mu.Lock()
	h.rec.recs = append(h.rec.recs, LogRecord{Level: r.Level, Message: r.Message, Attrs: attrs})
	h.rec.mu.Unlock()
	return nil
}

func (h attrHandler) WithAttrs(as []slog.Attr) slog.Handler {
	attrs := make(map[string]string, len(h.attrs)+len(as))
	for k, v := range h.attrs {
		attrs[k] = v
	}
	for _, a := range as {
		flatten(attrs, h.prefix, a)
	}
	return attrHandler{rec: h.rec, prefix: h.prefix, attrs: attrs}
}

func (h attrHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return attrHandler{rec: h.rec, prefix: h.prefix + name + ".", attrs: h.attrs}
}

func flatten(dst map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			flatten(dst, p, g)
		}
		return
	}
	dst[prefix+a.Key] = v.String()
}
