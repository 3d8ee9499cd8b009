package js

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/dop251/goja"

	"github.com/scripthost/scripthost/api"
)

// The event loop of a call. goja runs promise jobs (microtasks) itself
// whenever the outermost JavaScript call returns; the engine adds the
// timers and, when a call's result is a promise, runs them until it
// settles:
//
//  1. the promise settled: its value (or its rejection, as an error) is
//     the result;
//  2. a timer is due or the context ends first: wait for whichever comes
//     first; the context's end fails the call with its cause;
//  3. no timer left: the promise can never settle (ErrUnsettled).
//
// A timer callback that throws fails the call, like an uncaught exception
// in Node. Timers do not outlive the call that set them: those still
// pending when the outermost call returns are dropped, as are timers set
// at load time once the files have run.

// timer is one setTimeout or setInterval.
type timer struct {
	id    int64
	when  time.Time
	every time.Duration // 0 for setTimeout
	fn    goja.Callable
	args  []goja.Value
}

// loop holds the pending timers of a runtime's current call.
type loop struct {
	timers []*timer
	nextID int64
}

func (l *loop) add(t *timer) int64 {
	l.nextID++
	t.id = l.nextID
	l.timers = append(l.timers, t)
	return t.id
}

func (l *loop) remove(id int64) {
	l.timers = slices.DeleteFunc(l.timers, func(t *timer) bool { return t.id == id })
}

// next returns the timer due first (the first set, among equals).
func (l *loop) next() *timer {
	var first *timer
	for _, t := range l.timers {
		if first == nil || t.when.Before(first.when) {
			first = t
		}
	}
	return first
}

func (l *loop) reset() {
	clear(l.timers)
	l.timers = l.timers[:0]
}

// maxDelay is the longest timer delay, as in browsers and Node (2^31-1
// ms); longer ones fire at once, and the call's context bounds them all.
const maxDelay = math.MaxInt32

// openTimers installs setTimeout, setInterval, clearTimeout,
// clearInterval and queueMicrotask.
func (v *vm) openTimers() {
	rt := v.rt
	set := func(name string, repeat bool) {
		fn := rt.ToValue(func(call goja.FunctionCall) goja.Value {
			cb, ok := goja.AssertFunction(call.Argument(0))
			if !ok {
				v.throw(v.typeErrorCtor, name+": the callback must be a function, got "+typeName(call.Argument(0)), nil)
			}
			ms := call.Argument(1).ToFloat()
			if math.IsNaN(ms) || ms < 0 || ms > maxDelay {
				ms = 0
			}
			d := time.Duration(ms * float64(time.Millisecond))
			t := &timer{when: time.Now().Add(d), fn: cb}
			if repeat {
				t.every = max(d, time.Millisecond)
			}
			if len(call.Arguments) > 2 {
				t.args = slices.Clone(call.Arguments[2:])
			}
			return rt.ToValue(v.loop.add(t))
		}).(*goja.Object)
		v.setName(fn, name)
		rt.GlobalObject().DefineDataProperty(name, fn, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	}
	set("setTimeout", false)
	set("setInterval", true)
	for _, name := range []string{"clearTimeout", "clearInterval"} {
		fn := rt.ToValue(func(call goja.FunctionCall) goja.Value {
			if id := call.Argument(0); !goja.IsUndefined(id) && !goja.IsNull(id) {
				v.loop.remove(id.ToInteger())
			}
			return goja.Undefined()
		}).(*goja.Object)
		v.setName(fn, name)
		rt.GlobalObject().DefineDataProperty(name, fn, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	}
	qm := rt.ToValue(func(call goja.FunctionCall) goja.Value {
		if _, ok := goja.AssertFunction(call.Argument(0)); !ok {
			v.throw(v.typeErrorCtor, "queueMicrotask: the callback must be a function, got "+typeName(call.Argument(0)), nil)
		}
		if _, err := v.promiseThen(v.resolved, call.Argument(0)); err != nil {
			panic(err)
		}
		return goja.Undefined()
	}).(*goja.Object)
	v.setName(qm, "queueMicrotask")
	rt.GlobalObject().DefineDataProperty("queueMicrotask", qm, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

// promiseOf returns the promise val is, or nil. (Thenables that are not
// native promises are not awaited; Promise.resolve turns them into one.)
func promiseOf(val goja.Value) *goja.Promise {
	obj, ok := val.(*goja.Object)
	if !ok || obj.ExportType() != typePromise {
		return nil
	}
	p, _ := obj.Export().(*goja.Promise)
	return p
}

// await returns val, or when val is a promise what it settles to,
// running the call's timers meanwhile (see the top of this file).
func (v *vm) await(val goja.Value) (goja.Value, error) {
	p := promiseOf(val)
	if p == nil {
		return val, nil
	}
	ctx := v.context()
	for p.State() == goja.PromiseStatePending {
		if v.depth > 1 {
			return nil, ErrNestedAwait
		}
		t := v.loop.next()
		if t == nil {
			return nil, ErrUnsettled
		}
		if err := wait(ctx, t.when); err != nil {
			return nil, &api.ScriptError{Engine: errEngine, Msg: "call interrupted while awaiting a promise: " + err.Error(), Err: err}
		}
		if t.every > 0 {
			t.when = t.when.Add(t.every)
			if now := time.Now(); t.when.Before(now) {
				t.when = now
			}
		} else {
			v.loop.remove(t.id)
		}
		if _, err := v.callJS(t.fn, goja.Undefined(), t.args...); err != nil {
			return nil, err
		}
	}
	delete(v.rejected, p)
	if p.State() == goja.PromiseStateRejected {
		return nil, v.valueError(p.Result())
	}
	return p.Result(), nil
}

// wait waits until when or until ctx is done, returning its cause.
func wait(ctx context.Context, when time.Time) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	d := time.Until(when)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
