package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// The built-in scripts and the Go functions serve side by side and call
// each other.
func TestEmbed(t *testing.T) {
	dir, err := unpack(builtIn)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	h, err := newHost(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go h.Serve(l)
	c := uwsgi.NewClient(l.Addr().String())
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	calls := []struct {
		fn   string
		args []string
		want string
	}{
		{"hello", nil, "Hello World"},
		{"echo", []string{"a", "b"}, "a b"},
		{"add", []string{"0.1", "0.2"}, "0.3"},
		{"big", []string{"3"}, "xxx"},
		{"sum", []string{"1", "2", "3.5"}, "6.5"},
		{"shout", []string{"go", "team"}, "GO TEAM!"},
	}
	for _, tc := range calls {
		if got, err := c.CallString(ctx, tc.fn, tc.args...); got != tc.want || err != nil {
			t.Errorf("%s(%q) = %q, %v, want %q", tc.fn, tc.args, got, err, tc.want)
		}
	}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://embed/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(ctx, uwsgi.ModLua, 0, req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "Lua here; Go says Hello World\n"; string(body) != want || err != nil {
		t.Errorf("the Lua app answered %q, %v, want %q", body, err, want)
	}
}
