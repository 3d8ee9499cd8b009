package main

import (
	"time"

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
	return scripthost.Engines{
		Lua: &lua.Options{PoolSize: pools.lua},
		JS:  &js.Options{PoolSize: pools.js},
		Go:  &gointerp.Options{PoolSize: pools.goInterp},
	}
}
