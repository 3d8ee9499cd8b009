package lua_test

import (
	"testing"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/apitest"
	"github.com/scripthost/scripthost/lua"
)

// TestConformance runs the uWSGI API conformance suite against Lua.
func TestConformance(t *testing.T) {
	apitest.Run(t, func() api.Engine { return lua.New(lua.Options{}) })
}

func TestWebSocketContainment(t *testing.T) {
	apitest.RunContainment(t, func(n int) api.Engine { return lua.New(lua.Options{PoolSize: n}) })
}
