package gointerp_test

import (
	"testing"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/apitest"
	"github.com/scripthost/scripthost/gointerp"
)

// TestConformance runs the uWSGI API conformance suite against Go scripts.
func TestConformance(t *testing.T) {
	apitest.Run(t, func() api.Engine { return gointerp.New(gointerp.Options{}) })
}

func TestWebSocketContainment(t *testing.T) {
	apitest.RunContainment(t, func(n int) api.Engine { return gointerp.New(gointerp.Options{PoolSize: n}) })
}
