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

// engines returns the script engines the host loads, in the order their
// files are loaded.
func engines(log *slog.Logger) []api.Engine {
	// JavaScript regular expressions that backtrack run in regexp2, which
	// does not see a call's deadline; bound every match instead.
	regexp2.DefaultMatchTimeout = 5 * time.Second
	return []api.Engine{
		lua.New(lua.Options{Logger: log}),
		js.New(js.Options{Logger: log}),
		gointerp.New(gointerp.Options{Logger: log}),
	}
}
