package host

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseStatus: an app's status string either parses to a code of
// three digits and a status line without line breaks, or is an error.
func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"200", "200 OK", "404 Not Found", "999", "99", "1000", " 201 Created ", "abc", "", "200 a\r\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, line, err := ParseStatus(s)
		if err != nil {
			return
		}
		if code < 100 || code > 999 || !strings.HasPrefix(line, strconv.Itoa(code)+" ") || strings.ContainsAny(line, "\r\n") {
			t.Errorf("ParseStatus(%q) = %d, %q", s, code, line)
		}
	})
}

// FuzzParseRoutes: --map and --mount values never panic and what they
// accept is well formed.
func FuzzParseRoutes(f *testing.F) {
	for _, s := range []string{"0=app", "6=lua", "256=x", "-1=x", "=app", "5=", "/api=api", "/=root", "api=x", "/a/b/=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, app, err := ParseMap(s); err == nil && app == "" {
			t.Errorf("ParseMap(%q) accepted an empty app", s)
		}
		if path, app, err := ParseMount(s); err == nil && (app == "" || strings.HasSuffix(path, "/")) {
			t.Errorf("ParseMount(%q) = %q, %q", s, path, app)
		}
	})
}
