package js_test

import (
	"testing"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/apitest"
	"github.com/scripthost/scripthost/js"
)

// TestAPI runs the conformance suite of the uWSGI API.
func TestAPI(t *testing.T) {
	apitest.Run(t, func() api.Engine { return js.New(js.Options{}) })
}

func TestWebSocketContainment(t *testing.T) {
	apitest.RunContainment(t, func(n int) api.Engine { return js.New(js.Options{PoolSize: n}) })
}
