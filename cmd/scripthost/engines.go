package main

import (
	"log/slog"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/lua"
)

// engines returns the script engines the host loads, in the order their
// files are loaded.
func engines(log *slog.Logger) []api.Engine {
	return []api.Engine{lua.New(lua.Options{Logger: log})}
}
