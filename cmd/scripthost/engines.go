package main

import (
	"time"

	"github.com/dlclark/regexp2/v2"

	"github.com/scripthost/scripthost"
	"github.com/scripthost/scripthost/gointerp"
	"github.com/scripthost/scripthost/js"
	"github.com/scripthost/scripthost/lua"
)

// poolConfig sizes the engines' interpreter pools.
type poolConfig struct {
	lua, js, goInterp int           // interpreters per program (0: the engine's default)
	wait              time.Duration // longest wait for a free interpreter
}

// engines returns the options of the script engines the host loads: all
// three, with the pool sizes of the flags.
func engines(pools poolConfig) scripthost.Engines {
	// JavaScript regular expressions that backtrack run in regexp2, which
	// does not see a call's deadline; bound every match instead.
	// INTEGRATION: drop once js.Options bounds the matches itself.
	regexp2.DefaultMatchTimeout = 5 * time.Second
	return scripthost.Engines{
		Lua: &lua.Options{PoolSize: pools.lua},
		JS:  &js.Options{PoolSize: pools.js},
		Go:  &gointerp.Options{PoolSize: pools.goInterp},
	}
}
