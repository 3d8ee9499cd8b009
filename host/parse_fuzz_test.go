package host

import (
	"strconv"
	"strings"
	"testing"

	"github.com/scripthost/scripthost/api/uwsgi"
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

// FuzzUpgradeVars: any vars block parses into an upgrade decision and a
// handshake request without a panic, and the headers built from the
// HTTP_ vars hold no line breaks the 101 could carry.
func FuzzUpgradeVars(f *testing.F) {
	for _, kv := range [][2]string{{"HTTP_UPGRADE", "websocket"}, {"HTTP_CONNECTION", "keep-alive, Upgrade"},
		{"HTTP_SEC_WEBSOCKET_PROTOCOL", "chat, superchat"}, {"SERVER_PROTOCOL", "HTTP/9.9"}, {"HTTP_", ""}} {
		block, _ := uwsgi.Vars{}.Add(kv[0], kv[1]).Add("HTTP_SEC_WEBSOCKET_KEY", "dGhlIHNhbXBsZSBub25jZQ==").Append(nil)
		f.Add(block)
	}
	f.Fuzz(func(t *testing.T, block []byte) {
		vars, err := uwsgi.ParseVars(nil, block, 1024)
		if err != nil {
			return
		}
		isUpgrade(vars)
		r := varsRequest(vars)
		if r.ProtoMajor < 0 || r.ProtoMinor < 0 {
			t.Errorf("protocol %q parsed as %d.%d", r.Proto, r.ProtoMajor, r.ProtoMinor)
		}
		if v := headerValue(r.Header.Get("Origin")); strings.ContainsAny(v, "\r\n") {
			t.Errorf("origin %q keeps a line break", v)
		}
	})
}
