package tests

// Tests of the interop harness itself, against the real peers.

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rpcPeer starts uWSGI with the reference RPC functions (testdata/uwsgi/rpc.lua).
func rpcPeer(t *testing.T, unix bool) *uwsgiPeer {
	t.Helper()
	return startUWSGI(t, uwsgiOptions{
		Plugins: []string{"lua51", "rpc", "ping"},
		Master:  true,
		Unix:    unix,
		Files:   map[string][]byte{"rpc.lua": testdataFile(t, "uwsgi/rpc.lua")},
		Args:    []string{"--lua-load", "rpc.lua"},
	})
}

func TestPeerUWSGIRPC(t *testing.T) {
	p := rpcPeer(t, false)
	tests := []struct {
		name string
		req  []byte
		want []byte
	}{
		{
			name: "hello",
			req:  []byte("\xad\x07\x00\x00\x05\x00hello"),
			want: []byte("\xad\x0b\x00\x00Hello World"),
		},
		{
			name: "echo",
			req:  uwsgiPacket(173, uwsgiArray("echo", "a", "bc"), 0),
			want: uwsgiPacket(173, []byte("a bc"), 0),
		},
		{
			name: "add formats like Lua 5.1",
			req:  uwsgiPacket(173, uwsgiArray("add", "0.1", "0.2"), 0),
			want: uwsgiPacket(173, []byte("0.3"), 0),
		},
		{
			// uWSGI closes the connection without a byte.
			name: "unknown function",
			req:  uwsgiPacket(173, uwsgiArray("nope"), 0),
			want: []byte{},
		},
		{
			name: "ping",
			req:  []byte{0x64, 0x00, 0x00, 0x00},
			want: []byte{0x64, 0x00, 0x00, 0x01},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := p.Exchange(t, tc.req)
			if !bytes.Equal(got, tc.want) {
				t.Errorf("reply\n got % x (%q)\nwant % x (%q)", got, got, tc.want, tc.want)
			}
		})
	}
}

func TestPeerUWSGIUnixSocket(t *testing.T) {
	p := rpcPeer(t, true)
	if p.Network != "unix" {
		t.Fatalf("Network = %q, want unix", p.Network)
	}
	got := p.Exchange(t, uwsgiPacket(173, uwsgiArray("hello"), 0))
	if want := uwsgiPacket(173, []byte("Hello World"), 0); !bytes.Equal(got, want) {
		t.Errorf("reply % x, want % x", got, want)
	}
}

// TestPeerUWSGIStop checks that Stop leaves no process behind, with and
// without the master (without it, SIGINT to the first worker alone would
// orphan the others).
func TestPeerUWSGIStop(t *testing.T) {
	tests := []struct {
		name      string
		master    bool
		processes int
	}{
		{"master 1 worker", true, 1},
		{"master 2 workers", true, 2},
		{"no master 1 worker", false, 1},
		{"no master 2 workers", false, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startUWSGI(t, uwsgiOptions{
				Plugins:   []string{"ping"},
				Master:    tc.master,
				Processes: tc.processes,
			})
			root := procInfo{pid: p.PID}
			if _, _, start, ok := readStat(p.PID); ok {
				root.start = start
			}
			procs := append(descendants(p.PID), root)
			// with --master: master + N workers; without: worker 1 + N-1
			want := tc.processes
			if tc.master {
				want++
			}
			if len(procs) != want {
				t.Errorf("%d processes running, want %d", len(procs), want)
			}
			if got := p.Exchange(t, []byte{0x64, 0, 0, 0}); !bytes.Equal(got, []byte{0x64, 0, 0, 1}) {
				t.Errorf("ping reply % x", got)
			}
			start := time.Now()
			p.Stop(t)
			for _, pi := range procs {
				if pi.alive() || pi.isZombie() {
					t.Errorf("PID %d still there after Stop", pi.pid)
				}
			}
			t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestPeerNginx runs the reference apps (Lua WSAPI, Python WSGI) in uWSGI
// behind nginx and talks HTTP to nginx.
func TestPeerNginx(t *testing.T) {
	apps := []struct {
		name      string
		plugins   []string
		file      string
		args      []string
		modifier1 string
	}{
		{"lua", []string{"lua51"}, "app.lua", []string{"--lua", "app.lua"}, "6"},
		{"python", []string{"python3"}, "app.py", []string{"--wsgi-file", "app.py"}, "0"},
	}
	requests := []struct {
		method, path, body string
		wantStatus         int
		wantBody           string
	}{
		{"GET", "/hello", "", 200, "Hello World"},
		{"GET", "/", "", 200, "Hello World"},
		{"GET", "/missing", "", 404, "Not Found"},
		{"POST", "/echo", "ping\x00pong", 200, "ping\x00pong"},
		{"GET", "/cache?key=k1&value=v%201", "", 200, "v 1"},
		{"GET", "/cache?key=k1", "", 200, "v 1"},
		{"GET", "/cache?key=absent", "", 404, "miss"},
	}
	for _, app := range apps {
		t.Run(app.name, func(t *testing.T) {
			u := startUWSGI(t, uwsgiOptions{
				Plugins:   app.plugins,
				Master:    true,
				Processes: 2,
				Files:     map[string][]byte{app.file: testdataFile(t, "uwsgi/"+app.file)},
				Args:      append([]string{"--cache2", "name=default,items=100"}, app.args...),
			})
			n := startNginx(t, `
        location / {
            include uwsgi_params;
            uwsgi_pass `+u.Addr+`;
            uwsgi_modifier1 `+app.modifier1+`;
        }`)
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for _, r := range requests {
				req, err := http.NewRequest(r.method, n.URL(r.path), strings.NewReader(r.body))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", r.method, r.path, err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("%s %s: reading body: %v", r.method, r.path, err)
				}
				if resp.StatusCode != r.wantStatus || string(body) != r.wantBody {
					t.Errorf("%s %s: got %d %q, want %d %q", r.method, r.path,
						resp.StatusCode, body, r.wantStatus, r.wantBody)
				}
			}
		})
	}
}
