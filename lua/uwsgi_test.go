package lua

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/scripthost/scripthost/api"
)

// rpc.lua of uWSGI's reference files, unmodified: the results uWSGI
// 2.0.21 gives (tests/testdata/uwsgi/rpc.lua documents them).
func TestReferenceRPC(t *testing.T) {
	f := newFixture(t, map[string]string{"rpc.lua": readTestdata(t, "rpc.lua")})
	_, p := f.mustLoad(Options{PoolSize: 2})
	if got := len(p.Apps()); got != 0 {
		t.Errorf("rpc.lua defined %d apps, want 0", got)
	}
	tests := []struct {
		name string
		args []string
		want string
		err  error
	}{
		{"hello", nil, "Hello World", nil},
		{"echo", []string{"a", "b", "c"}, "a b c", nil},
		{"echo", []string{"one"}, "one", nil},
		{"echo", nil, "", nil}, // uWSGI then closes without a reply; the host decides
		{"add", []string{"2", "3"}, "5", nil},
		{"add", []string{"1.5", "2"}, "3.5", nil},
		{"add", []string{"0.1", "0.2"}, "0.3", nil},
		{"add", []string{"1e15", "1"}, "1e+15", nil},
		{"add", []string{"x", "1"}, "1", nil},
		{"add", []string{"9007199254740992", "1"}, "9.007199254741e+15", nil},
		{"add", []string{"-7", "2"}, "-5", nil},
		{"big", []string{"5"}, "xxxxx", nil},
		{"big", []string{"0"}, "", nil},
		{"nope", nil, "", api.ErrNoSuchFunction},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+strings.Join(tt.args, ","), func(t *testing.T) {
			got, err := f.rpc(context.Background(), tt.name, tt.args...)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	big, err := f.rpc(context.Background(), "big", "1048576")
	if err != nil || len(big) != 1048576 || strings.Trim(big, "x") != "" {
		t.Errorf("big(1048576): %d bytes, %v", len(big), err)
	}
}

// app.lua of uWSGI's reference files, unmodified, through the App.
func TestReferenceApp(t *testing.T) {
	f := newFixture(t, map[string]string{
		"app.lua": readTestdata(t, "app.lua"),
		"rpc.lua": readTestdata(t, "rpc.lua"),
	})
	_, p := f.mustLoad(Options{PoolSize: 2})
	apps := p.Apps()
	if names := slices.Sorted(maps.Keys(apps)); !slices.Equal(names, []string{"app"}) {
		t.Fatalf("apps %v, want [app]", names)
	}
	app := apps["app"]
	tests := []struct {
		name    string
		method  string
		path    string
		query   string
		body    string
		status  string
		ctype   string
		resBody string
	}{
		{"root", "GET", "/", "", "", "200 OK", "text/plain", "Hello World"},
		{"hello", "GET", "/hello", "", "", "200 OK", "text/plain", "Hello World"},
		{"cache miss", "GET", "/cache", "key=k1", "", "404 Not Found", "text/plain", "miss"},
		{"cache set", "GET", "/cache", "key=k1&value=v%201", "", "200 OK", "text/plain", "v 1"},
		{"cache get", "GET", "/cache", "key=k1", "", "200 OK", "text/plain", "v 1"},
		{"cache overwrite", "GET", "/cache", "key=k1&value=w+2", "", "200 OK", "text/plain", "w 2"},
		{"cache get again", "GET", "/cache", "key=k1", "", "200 OK", "text/plain", "w 2"},
		{"cache no key", "GET", "/cache", "", "", "400 Bad Request", "text/plain", "missing key"},
		{"echo", "POST", "/echo", "", "some body\x00\xff", "200 OK", "application/octet-stream", "some body\x00\xff"},
		{"echo empty", "POST", "/echo", "", "", "200 OK", "application/octet-stream", ""},
		{"nope", "GET", "/nope", "", "", "404 Not Found", "text/plain", "Not Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := []string{"REQUEST_METHOD=" + tt.method, "PATH_INFO=" + tt.path, "QUERY_STRING=" + tt.query,
				"SERVER_PROTOCOL=HTTP/1.1"}
			if tt.body != "" {
				vars = append(vars, "CONTENT_LENGTH="+strconv.Itoa(len(tt.body)))
			}
			var w recorder
			if err := app.ServeRequest(context.Background(), &w, request(tt.body, vars...)); err != nil {
				t.Fatalf("ServeRequest: %v", err)
			}
			if w.status != tt.status {
				t.Errorf("status %q, want %q", w.status, tt.status)
			}
			want := []api.Header{{Name: "Content-Type", Value: tt.ctype}, {Name: "Content-Length", Value: strconv.Itoa(len(tt.resBody))}}
			if !slices.Equal(w.headers, want) {
				t.Errorf("headers %v, want %v", w.headers, want)
			}
			if got := w.body.String(); got != tt.resBody {
				t.Errorf("body %q, want %q", got, tt.resBody)
			}
		})
	}
	// The cache is the shared one: Go sees what the app stored.
	c := f.state.Caches.Default()
	it, err := c.Get(context.Background(), []byte("k1"))
	if err != nil || string(it.Value) != "w 2" {
		t.Errorf("cache k1 = %q, %v; want \"w 2\"", it.Value, err)
	}
}
