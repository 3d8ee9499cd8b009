package api

import (
	"errors"
	"testing"
)

func TestScriptErrorText(t *testing.T) {
	for _, tt := range []struct {
		file         string
		line, column int
		want         string
	}{
		{"app.lua", 3, 0, "lua: app.lua:3: boom"},
		{"app.lua", 3, 7, "lua: app.lua:3:7: boom"},
		{"app.lua", 0, 7, "lua: app.lua: boom"},
		{"", 3, 7, "lua: boom"},
	} {
		err := &ScriptError{Engine: "lua", File: tt.file, Line: tt.line, Column: tt.column, Msg: "boom"}
		if got := err.Error(); got != tt.want {
			t.Errorf("ScriptError{%q, %d, %d}.Error() = %q, want %q", tt.file, tt.line, tt.column, got, tt.want)
		}
	}
}

func TestScriptErrorUnwraps(t *testing.T) {
	var err error = &ScriptError{Engine: "js", File: "app.js", Msg: "interrupted", Err: ErrHarakiri}
	if !errors.Is(err, ErrHarakiri) {
		t.Errorf("errors.Is(%v, ErrHarakiri) = false, want true", err)
	}
}
