package api

import "testing"

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
		if got := ScriptErrorText("lua", tt.file, tt.line, tt.column, "boom"); got != tt.want {
			t.Errorf("ScriptErrorText(%q, %d, %d) = %q, want %q", tt.file, tt.line, tt.column, got, tt.want)
		}
	}
}
