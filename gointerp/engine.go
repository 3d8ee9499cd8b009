package gointerp

import (
	"context"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/api/vmpool"
)

// Options configure an Engine. Zero fields take the defaults.
type Options struct {
	// PoolSize is the most interpreters per file, built when calls need
	// them. The default is max(4, 2*runtime.NumCPU()): the number of CPUs,
	// not GOMAXPROCS, which the server may hold at 1 until it is busy;
	// two per CPU because calls often wait (API calls, the client).
	PoolSize int
	// PoolWait bounds how long a call waits for an interpreter of its
	// file when all PoolSize are busy (default DefaultPoolWait). The call
	// then fails with an error wrapping ErrPoolBusy and vmpool.ErrBusy,
	// is counted in the State's Counters.PoolTimeouts and logged.
	PoolWait time.Duration
	// AllowedPackages are the standard packages scripts may import
	// besides "scripthost/uwsgi"; nil means DefaultAllowedPackages().
	// Each must be one the interpreter has symbols for.
	AllowedPackages []string
	// Logger receives what scripts print and the engine's notices; nil
	// means the Registrations' logger.
	Logger *slog.Logger
}

// DefaultPoolWait is Options.PoolWait's default.
const DefaultPoolWait = vmpool.DefaultWait

// Engine is the Go engine. It is safe for concurrent use.
type Engine struct {
	opts       Options
	sandbox    *sandbox
	exports    []export
	exportsErr error
}

var (
	_ api.Engine    = (*Engine)(nil)
	_ api.Evaluator = (*Engine)(nil)
)

// New returns a Go engine. A bad option (an unknown allowed package)
// fails every Load and Eval.
func New(opts Options) *Engine {
	if opts.PoolSize <= 0 {
		opts.PoolSize = vmpool.DefaultSize()
	}
	if opts.PoolWait <= 0 {
		opts.PoolWait = DefaultPoolWait
	}
	allowed := opts.AllowedPackages
	if allowed == nil {
		allowed = defaultAllowed
	}
	e := &Engine{opts: opts, sandbox: newSandbox(allowed)}
	e.exports, e.exportsErr = newExports(api.Funcs())
	return e
}

// Name returns "go".
func (e *Engine) Name() string { return "go" }

// Extensions returns [".go"].
func (e *Engine) Extensions() []string { return []string{".go"} }

// Modifier returns uwsgi.ModGo (11).
func (e *Engine) Modifier() uwsgi.Modifier { return uwsgi.ModGo }

func (e *Engine) logger(env *api.Registrations) *slog.Logger {
	return api.EngineLogger(e.opts.Logger, env)
}

func (e *Engine) usable() error {
	if e.sandbox.err != nil {
		return e.sandbox.err
	}
	return e.exportsErr
}

// program is what Load made of the files. It implements api.Program.
type program struct {
	eng     *Engine
	env     *api.Registrations
	log     *slog.Logger
	scripts []*script
	apps    map[string]api.App
	// maxAlloc is the largest allocation of the budget at load.
	maxAlloc int64
	// life is the generation's lifetime: replicas are built under it,
	// and Close ends it.
	life context.Context
	stop context.CancelFunc
}

// Load checks and loads every file in one interpreter each, in name
// order (see the package comment). A file that does not parse or
// type-check, imports a package outside the sandbox, panics or fails
// while it initializes fails the whole load with a *api.ScriptError.
func (e *Engine) Load(ctx context.Context, env *api.Registrations, files []api.File) (api.Program, error) {
	if err := e.usable(); err != nil {
		return nil, err
	}
	sorted := api.SortedFiles(files)
	p := &program{eng: e, env: env, log: e.logger(env), apps: map[string]api.App{}, maxAlloc: maxAllocOf(ctx)}
	p.life, p.stop = context.WithCancel(context.WithoutCancel(ctx))
	for _, f := range sorted {
		sc := &script{p: p, name: f.Name, app: strings.TrimSuffix(f.Name, ".go"), src: f.Source}
		sc.pool = newPool(e.opts.PoolSize, e.opts.PoolWait, env.Counters())
		if err := sc.analyze(); err != nil {
			p.Close()
			return nil, err
		}
		p.scripts = append(p.scripts, sc)
	}
	for _, sc := range p.scripts {
		v, err := newVM(ctx, sc, false)
		if err != nil {
			p.Close()
			return nil, err
		}
		sc.shape = v.shape()
		sc.pool.Add(v)
		if sc.hasHandler {
			p.apps[sc.app] = &app{sc: sc}
		}
	}
	return p, nil
}

// Apps returns the apps the files defined.
func (p *program) Apps() map[string]api.App { return maps.Clone(p.apps) }

// Close closes the idle interpreters now and the borrowed ones when their
// calls end. Calls after Close fail with ErrClosed.
func (p *program) Close() error {
	p.stop()
	for _, sc := range p.scripts {
		sc.pool.Close()
	}
	return nil
}
