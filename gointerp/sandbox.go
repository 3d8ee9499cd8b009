package gointerp

import (
	"fmt"
	"go/ast"
	"go/scanner"
	"go/token"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"

	"github.com/scripthost/scripthost/api"
)

// UwsgiPath is the import path of the uWSGI API package of scripts.
const UwsgiPath = "scripthost/uwsgi"

// defaultAllowed are the standard packages scripts may import by default:
// computation, encoding, hashing, text and the types of net/http; nothing
// that reaches files, processes, the network, the process's own runtime or
// host memory (no os, os/exec, io/ioutil, path/filepath, net, syscall,
// unsafe, reflect, runtime, runtime/debug, plugin, expvar, flag, testing,
// database/sql).
var defaultAllowed = []string{
	"bufio", "bytes", "cmp", "container/heap", "container/list", "context",
	"crypto/hmac", "crypto/md5", "crypto/rand", "crypto/sha1", "crypto/sha256", "crypto/sha512", "crypto/subtle",
	"encoding/base64", "encoding/binary", "encoding/csv", "encoding/hex", "encoding/json", "encoding/xml",
	"errors", "fmt", "hash", "hash/crc32", "hash/fnv", "html", "io", "log", "maps", "math", "math/bits",
	"math/rand", "net/http", "net/url", "path", "regexp", "slices", "sort", "strconv", "strings",
	"sync", "sync/atomic", "time", "unicode", "unicode/utf16", "unicode/utf8",
}

// DefaultAllowedPackages returns the import paths scripts may import when
// Options.AllowedPackages is nil.
func DefaultAllowedPackages() []string { return slices.Clone(defaultAllowed) }

// trimmed are symbols removed from packages scripts may import, whatever
// Options.AllowedPackages says: net/http keeps its types and helpers for
// handlers but loses its clients, servers, file serving and the global
// mux (shared by every interpreter of the process); callbacks on a timer
// or context goroutine (time.AfterFunc, context.AfterFunc,
// http.TimeoutHandler) would run script code outside any call, like a go
// statement; log.Default is the host's logger.
var trimmed = map[string][]string{
	"net/http": {
		"Client", "DefaultClient", "DefaultTransport", "Transport", "NewFileTransport", "NewFileTransportFS",
		"Get", "Head", "Post", "PostForm", "ProxyFromEnvironment", "ProxyURL",
		"ListenAndServe", "ListenAndServeTLS", "Serve", "ServeTLS", "Server",
		"ServeFile", "ServeFileFS", "FileServer", "FileServerFS", "FS", "Dir",
		"DefaultServeMux", "Handle", "HandleFunc", "TimeoutHandler",
	},
	"time":    {"AfterFunc"},
	"context": {"AfterFunc"},
	"log":     {"Default"},
}

// stdlibKeys maps the import paths of yaegi's standard library symbols
// to their keys ("math/rand/v2" -> "math/rand/v2/rand").
var stdlibKeys = func() map[string]string {
	m := make(map[string]string, len(stdlib.Symbols))
	for k := range stdlib.Symbols {
		if k != "." {
			m[path.Dir(k)] = k
		}
	}
	return m
}()

// sandbox is what an engine lets scripts import.
type sandbox struct {
	allowed map[string]bool // import paths, UwsgiPath included
	exports interp.Exports  // the allowed packages' symbols, trimmed
	err     error           // an unknown package in Options.AllowedPackages
}

func newSandbox(paths []string) *sandbox {
	sb := &sandbox{allowed: map[string]bool{UwsgiPath: true}, exports: interp.Exports{}}
	for _, p := range paths {
		key, ok := stdlibKeys[p]
		if !ok {
			sb.err = fmt.Errorf("gointerp: allowed package %q is not a standard package the interpreter has", p)
			continue
		}
		syms := maps.Clone(stdlib.Symbols[key])
		for _, name := range trimmed[p] {
			delete(syms, name)
		}
		maps.Copy(syms, guardedTypes[p])
		sb.allowed[p] = true
		sb.exports[key] = syms
	}
	// Special wrappers for interface arguments (fmt.Stringer and such).
	sb.exports["."] = stdlib.Symbols["."]
	return sb
}

// checkFile checks a parsed script: package main, allowed imports only,
// no go statements.
func (sb *sandbox) checkFile(name string, f *ast.File, pos func(ast.Node) (int, int)) error {
	fail := func(n ast.Node, cause error, format string, args ...any) error {
		line, col := pos(n)
		return &api.ScriptError{Engine: errEngine, File: name, Line: line, Column: col, Msg: fmt.Sprintf(format, args...), Err: cause}
	}
	if f.Name.Name != "main" {
		return fail(f.Name, nil, "package %s: scripts are package main", f.Name.Name)
	}
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil || !sb.allowed[p] {
			return fail(imp, ErrForbiddenImport, "import %s: package not allowed in scripts", imp.Path.Value)
		}
	}
	var err error
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			err = fail(n, ErrForbidden, "go statement: scripts may not start goroutines (they would outlive the call)")
		case *ast.Ident:
			if reserved(n.Name) {
				err = fail(n, ErrForbidden, "%s: names starting with %s are the engine's", n.Name, reservedPrefix)
			}
		}
		return err == nil
	})
	return err
}

// reservedPrefix starts the names the engine adds to scripts.
const reservedPrefix = "__scripthost"

func reserved(name string) bool { return strings.HasPrefix(name, reservedPrefix) }

// checkTokens refuses the engine's names in code that is not parsed as
// a whole (Eval's chunks).
func checkTokens(name, src string, line0 int) error {
	fset := token.NewFileSet()
	var s scanner.Scanner
	s.Init(fset.AddFile(name, -1, len(src)), []byte(src), nil, 0)
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			return nil
		}
		if tok == token.IDENT && reserved(lit) {
			p := fset.Position(pos)
			return &api.ScriptError{Engine: errEngine, File: name, Line: line0 + p.Line - 1, Column: p.Column, Err: ErrForbidden,
				Msg: fmt.Sprintf("%s: names starting with %s are the engine's", lit, reservedPrefix)}
		}
	}
}

// sleeper is the interruptible time.Sleep of one interpreter: it returns
// early when the interpreter is stopped, so that an interrupted script
// does not sit in a sleep nobody waits for.
func sleeper(stopped <-chan struct{}) func(time.Duration) {
	return func(d time.Duration) {
		if d <= 0 {
			return
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-stopped:
		}
	}
}
