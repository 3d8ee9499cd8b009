package main

import (
	"log/slog"
	"time"

	"github.com/dlclark/regexp2/v2"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/gointerp"
	"github.com/scripthost/scripthost/js"
	"github.com/scripthost/scripthost/lua"
)

// poolConfig sizes the engines' interpreter pools.
type poolConfig struct {
	lua, js, goInterp int           // interpreters per program (0: the engine's default)
	wait              time.Duration // longest wait for a free interpreter
}

// engines returns the script engines the host loads, in the order their
// files are loaded.
func engines(log *slog.Logger, pools poolConfig) []api.Engine {
	// JavaScript regular expressions that backtrack run in regexp2, which
	// does not see a call's deadline; bound every match instead.
	regexp2.DefaultMatchTimeout = 5 * time.Second
	luaOpts := lua.Options{Logger: log, PoolSize: pools.lua}
	jsOpts := js.Options{Logger: log, PoolSize: pools.js}
	goOpts := gointerp.Options{Logger: log, PoolSize: pools.goInterp}
	// INTEGRATION: enable once the engines' Options have PoolWait.
	luaOpts.PoolWait = pools.wait
	jsOpts.PoolWait = pools.wait
	goOpts.PoolWait = pools.wait
	return []api.Engine{lua.New(luaOpts), js.New(jsOpts), gointerp.New(goOpts)}
}
