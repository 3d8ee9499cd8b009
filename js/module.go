package js

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"
)

// A module is compiled as a function of CommonJS's five variables. The
// prefix shares the source's first line, so line numbers stay right;
// columns on line 1 are corrected where the engine reports positions.
const (
	modulePrefix = "(function (exports, require, module, __filename, __dirname) {"
	moduleSuffix = "\n})"
	// maxModuleSize bounds a file read by require.
	maxModuleSize = 16 << 20
)

// compileModule compiles a script as a strict-mode CommonJS module.
func compileModule(name string, src []byte) (*goja.Program, error) {
	text := string(src)
	if strings.HasPrefix(text, "#!") { // a shebang line, as Node allows
		text = "//" + text[2:]
	}
	ast, err := parser.ParseFile(nil, name, modulePrefix+text+moduleSuffix, 0, parser.WithDisableSourceMaps)
	if err != nil {
		return nil, compileError(name, err, len(modulePrefix))
	}
	prg, err := goja.CompileAST(ast, true)
	if err != nil {
		return nil, compileError(name, err, len(modulePrefix))
	}
	return prg, nil
}

// compileScript compiles code as a plain (sloppy-mode) script, whose
// completion value is its result: Eval's code.
func compileScript(name, code string) (*goja.Program, error) {
	ast, err := parser.ParseFile(nil, name, code, 0, parser.WithDisableSourceMaps)
	if err != nil {
		return nil, compileError(name, err, 0)
	}
	prg, err := goja.CompileAST(ast, false)
	if err != nil {
		return nil, compileError(name, err, 0)
	}
	return prg, nil
}

// modules are the compiled modules of a program, shared by its runtimes:
// the loaded files, and the files require found in the scripts
// directory, each compiled once. (Running them is per runtime: see
// vm.loadModule.)
type modules struct {
	dir string

	mu    sync.Mutex
	progs map[string]*goja.Program // by name relative to dir, "lib/x.js"
}

func newModules(dir string) *modules {
	return &modules{dir: dir, progs: map[string]*goja.Program{}}
}

// add records a compiled file.
func (m *modules) add(name string, prg *goja.Program) {
	m.mu.Lock()
	m.progs[name] = prg
	m.mu.Unlock()
}

// isModule reports whether name is a module compiled with the wrapper.
func (m *modules) isModule(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.progs[name]
	return ok
}

// resolve finds the module id required from the module directory from
// ("." is the scripts directory): "./x" and "../x" are relative to from,
// other ids to the scripts directory; "x" is x.js, or x/index.js. Only
// .js files inside the scripts directory (also after symbolic links) are
// found; absolute paths and ".." leaving the directory are refused.
func (m *modules) resolve(from, id string) (string, error) {
	switch {
	case id == "":
		return "", fmt.Errorf("%w: empty module name", ErrModule)
	case strings.HasPrefix(id, "/") || filepath.IsAbs(id) || strings.ContainsAny(id, "\\\x00"):
		return "", fmt.Errorf("%w %q: absolute paths are not allowed", ErrModule, id)
	}
	base := "."
	if id == "." || id == ".." || strings.HasPrefix(id, "./") || strings.HasPrefix(id, "../") {
		base = from
	}
	name := path.Join(base, id)
	if name == "." || name == ".." || strings.HasPrefix(name, "../") {
		return "", fmt.Errorf("%w %q: outside the scripts directory", ErrModule, id)
	}
	cands := []string{name + ".js", name + "/index.js"}
	if strings.HasSuffix(name, ".js") {
		cands = []string{name}
	}
	for _, c := range cands {
		if m.isModule(c) || m.exists(c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w %q: not found in the scripts directory", ErrModule, id)
}

// exists reports whether name is a regular file inside the directory.
func (m *modules) exists(name string) bool {
	full := filepath.Join(m.dir, filepath.FromSlash(name))
	fi, err := os.Stat(full)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	root, err1 := filepath.EvalSymlinks(m.dir)
	real, err2 := filepath.EvalSymlinks(full)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(root, real)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// program returns the compiled module name, compiling it on first use.
func (m *modules) program(name string) (*goja.Program, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if prg, ok := m.progs[name]; ok {
		return prg, nil
	}
	f, err := os.Open(filepath.Join(m.dir, filepath.FromSlash(name)))
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrModule, name, err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, maxModuleSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrModule, name, err)
	}
	if len(src) > maxModuleSize {
		return nil, fmt.Errorf("%w %q: larger than %d bytes", ErrModule, name, maxModuleSize)
	}
	prg, err := compileModule(name, src)
	if err != nil {
		return nil, err
	}
	m.progs[name] = prg
	return prg, nil
}

// loadModule runs module name in v once and returns its module object
// (a module being loaded returns its partial exports, as in Node). The
// error is goja's, so that require can rethrow it as it is.
func (v *vm) loadModule(name string) (*goja.Object, error) {
	if mod, ok := v.modCache[name]; ok {
		return mod, nil
	}
	prg, err := v.mods.program(name)
	if err != nil {
		return nil, err
	}
	rt := v.rt
	mod, exports := rt.NewObject(), rt.NewObject()
	mod.Set("id", name)
	mod.Set("filename", name)
	mod.Set("exports", exports)
	mod.Set("loaded", false)
	v.modCache[name] = mod
	wrapper, err := rt.RunProgram(prg)
	if err == nil {
		fn, ok := goja.AssertFunction(wrapper)
		if !ok {
			err = fmt.Errorf("js: module %s did not compile to a function", name)
		} else {
			_, err = fn(exports, exports, v.requireFunc(name), mod, rt.ToValue(name), rt.ToValue(path.Dir(name)))
		}
	}
	if err != nil {
		delete(v.modCache, name)
		return nil, err
	}
	mod.Set("loaded", true)
	return mod, nil
}

// requireFunc is the require function of module from ("" for Eval).
func (v *vm) requireFunc(from string) goja.Value {
	dir := "."
	if from != "" {
		dir = path.Dir(from)
	}
	fn := v.rt.ToValue(func(call goja.FunctionCall) goja.Value {
		arg := call.Argument(0)
		if _, ok := arg.Export().(string); !ok {
			v.throw(v.typeErrorCtor, "require: the module name must be a string, got "+typeName(arg), ErrModule)
		}
		id := arg.String()
		if id == "uwsgi" {
			return v.uwsgi
		}
		name, err := v.mods.resolve(dir, id)
		if err != nil {
			e := v.newError(v.errorCtor, fmt.Sprintf("Cannot find module '%s' (from %s): %v", id, from, err), err)
			e.Set("code", "MODULE_NOT_FOUND")
			panic(e)
		}
		mod, err := v.loadModule(name)
		if err != nil {
			if isGojaError(err) {
				panic(err)
			}
			v.throw(v.errorCtor, err.Error(), err)
		}
		return mod.Get("exports")
	}).(*goja.Object)
	v.setName(fn, "require")
	return fn
}
