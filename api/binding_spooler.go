package api

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// spoolerFuncs are the spooler's part of the table: enqueue jobs, register
// the function that runs them, and uWSGI's answer constants.
var spoolerFuncs = []Func{
	{Name: "register_spooler", Registers: true, Params: "func",
		Doc: "run the host's spool jobs with func(job), which answers SPOOL_OK, SPOOL_RETRY or SPOOL_IGNORE (one per script file; also `uwsgi.spooler = func` in Lua and JavaScript)",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			fn, err := a.Callable(0)
			if err != nil {
				return nil, err
			}
			if _, bound := fn.(BoundCallable); bound {
				return nil, fmt.Errorf("uwsgi.register_spooler: %w: register a function defined at the top level of a script", ErrFuncGone)
			}
			return ok, env.RegisterSpooler(LoadingFile(ctx), spoolFunc(fn))
		}},
	{Name: "spool", Params: "job", Doc: "store job (a map of strings; keys spooler, priority, at and body are uWSGI's) for the spooler; the job file's path (true when sent to a remote node)",
		Call: callSpool},
	{Name: "send_to_spooler", Params: "job", Doc: "the same as spool", Call: callSpool},
	{Name: "spooler_jobs", Params: "[spooler]", Doc: "the paths of the jobs waiting in a spool directory (the first by default), at most 10000",
		Call: func(_ context.Context, env *Registrations, a Args) (Value, error) {
			name, err := a.OptString(0, "")
			if err != nil {
				return nil, err
			}
			sp := env.State.Spooler
			if sp == nil {
				return nil, ErrNoSpooler
			}
			jobs, err := sp.Jobs(name)
			if err != nil {
				return nil, err
			}
			out := make([]Value, len(jobs))
			for i, j := range jobs {
				out[i] = j
			}
			return out, nil
		}},
	{Name: "SPOOL_OK", Doc: "a spooler function's answer: done, remove the job (-2)",
		Value: func(*Registrations) Value { return int64(SpoolOK) }},
	{Name: "SPOOL_RETRY", Doc: "a spooler function's answer: keep the job and run it again later (-1)",
		Value: func(*Registrations) Value { return int64(SpoolRetry) }},
	{Name: "SPOOL_IGNORE", Doc: "a spooler function's answer: not this function's job (0)",
		Value: func(*Registrations) Value { return int64(SpoolIgnore) }},
}

// spoolFunc adapts a script function: the job goes in as a map of
// strings, the answer must be an integer.
func spoolFunc(fn Callable) SpoolFunc {
	return func(ctx context.Context, job map[string]Value) (int, error) {
		res, err := fn.Call(ctx, []Value{job})
		if err != nil {
			return 0, err
		}
		switch n := res.(type) {
		case int64:
			return int(max(min(n, math.MaxInt32), math.MinInt32)), nil
		case float64:
			if n == math.Trunc(n) && math.Abs(n) < math.MaxInt32 {
				return int(n), nil
			}
		}
		return 0, fmt.Errorf("the spooler function returned %s, want uwsgi.SPOOL_OK, SPOOL_RETRY or SPOOL_IGNORE", FormatValue(res))
	}
}

// callSpool is spool and send_to_spooler.
func callSpool(ctx context.Context, env *Registrations, a Args) (Value, error) {
	vars, body, target, err := spoolArgs(a)
	if err != nil {
		return nil, err
	}
	sp := env.State.Spooler
	if target != "" && strings.Contains(target, ":") && (sp == nil || !sp.Has(target)) {
		// Another node's spooler: the job goes as a packet 17, its body
		// as a var (the packet has no body).
		if len(body) > 0 {
			vars = vars.Add("body", string(body))
		}
		if err := env.State.Node(target).Spool(ctx, vars); err != nil {
			return nil, fmt.Errorf("uwsgi.spool: %w", err)
		}
		return true, nil
	}
	if sp == nil {
		return nil, fmt.Errorf("uwsgi.spool: %w", ErrNoSpooler)
	}
	if err := Charge(ctx, int64(vars.Size()+len(body))); err != nil {
		return nil, err
	}
	block, err := vars.Append(nil)
	if err != nil {
		return nil, fmt.Errorf("uwsgi.spool: %w", err)
	}
	path, err := sp.Enqueue(block, body)
	if err != nil {
		return nil, fmt.Errorf("uwsgi.spool: %w", err)
	}
	return path, nil
}

// spoolArgs reads a job map: string, number and boolean values become
// strings (as uWSGI's Python plugin does with str()), body is taken out,
// spooler is returned as the target. Keys are sorted so that a job's file
// does not depend on map order.
func spoolArgs(a Args) (vars uwsgi.Vars, body []byte, target string, err error) {
	var m map[string]Value
	var arg Value
	if a.Len() > 0 {
		arg = a.Vals[0]
	}
	switch v := arg.(type) {
	case map[string]Value:
		m = v
	case []Value: // an empty Lua table
		if len(v) != 0 {
			return nil, nil, "", a.err(0, "map of strings expected, got a list")
		}
	default:
		return nil, nil, "", a.err(0, "map expected, got %s", typeName(v))
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var s string
		switch v := m[k].(type) {
		case string:
			s = v
		case []byte:
			s = string(v)
		case int64, float64, bool:
			s = FormatValue(v)
		default:
			return nil, nil, "", a.err(0, "the value of %q must be a string or a number, got %s", k, typeName(v))
		}
		switch k {
		case "body":
			body = []byte(s)
			continue
		case "spooler":
			target = s
		}
		if k == "" || len(k) > math.MaxUint16 || len(s) > math.MaxUint16 {
			return nil, nil, "", a.err(0, "key %q or its value is too long for a vars block", k)
		}
		vars = vars.Add(k, s)
	}
	return vars, body, target, nil
}
