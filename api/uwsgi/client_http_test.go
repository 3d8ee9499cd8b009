package uwsgi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func newHTTPRequest(method, url, body string) *http.Request {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		panic(err)
	}
	return req
}

func TestClientDo(t *testing.T) {
	_, luaResp := clientVector(t, "lua_mod6_get")
	_, bridgeResp := clientVector(t, "rpc_mod2_2_http")
	luaBody := luaResp[bytes.Index(luaResp, []byte("\r\n\r\n"))+4:]
	echoBody := func(r *fakeRequest) fakeReply {
		return fakeReply{Bytes: append([]byte("HTTP/1.1 201 Created\r\nX-Len: "+
			ParseVars2(r.Payload, "CONTENT_LENGTH")+"\r\n\r\n"), r.Value...)}
	}
	tests := []struct {
		name       string
		ext        bool
		m1         Modifier
		m2         uint8
		req        *http.Request
		reply      func(*fakeRequest) fakeReply
		wantStatus int
		wantHeader map[string]string
		wantBody   string
		wantVars   map[string]string
	}{
		{
			name: "lua get without content-length", m1: ModLua,
			req:        newHTTPRequest("GET", "http://localhost/env?a=1", ""),
			reply:      func(*fakeRequest) fakeReply { return fakeReply{Bytes: luaResp} },
			wantStatus: 200, wantHeader: map[string]string{"Content-Type": "text/plain", "X-Lua": "a"},
			wantBody: string(luaBody),
			wantVars: map[string]string{"REQUEST_METHOD": "GET", "QUERY_STRING": "a=1", "PATH_INFO": "/env", "HTTP_HOST": "localhost"},
		},
		{
			name: "post on an extended server", ext: true, m1: ModV8, m2: 3,
			req:        newHTTPRequest("POST", "http://example.com/p", "hello body"),
			reply:      echoBody,
			wantStatus: 201, wantHeader: map[string]string{"X-Len": "10"},
			wantBody: "hello body",
			wantVars: map[string]string{"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "10"},
		},
		{
			name: "rpc http bridge", m1: ModRPC, m2: RPCHTTP,
			req:        newHTTPRequest("GET", "http://localhost/hellolua/foo/bar", ""),
			reply:      func(*fakeRequest) fakeReply { return fakeReply{Bytes: bridgeResp} },
			wantStatus: 200, wantBody: "args are foo bar",
			wantVars: map[string]string{"PATH_INFO": "/hellolua/foo/bar"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *fakeRequest
			s := newFakeServer(t, "tcp", tt.ext, func(r *fakeRequest) fakeReply {
				got = r
				return tt.reply(r)
			})
			c := newTestClient(t, s)
			resp, err := c.Do(testCtx(t), tt.m1, tt.m2, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || string(body) != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if resp.Header.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, resp.Header.Get(k), v)
				}
			}
			if got.Modifier1 != tt.m1 || got.Modifier2 != tt.m2 {
				t.Errorf("server got %v, want modifiers %d/%d", got.Header, tt.m1, tt.m2)
			}
			vs, err := ParseVars(nil, got.Payload, 0)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.wantVars {
				if vs.Get(k) != v {
					t.Errorf("var %s = %q, want %q", k, vs.Get(k), v)
				}
			}
			if n := s.hellos.Load(); n != 0 {
				t.Errorf("%d hellos sent, want none", n)
			}
		})
	}
}

// ParseVars2 returns one var of a block (a test shorthand).
func ParseVars2(block []byte, key string) string {
	vs, _ := ParseVars(nil, block, 0)
	return vs.Get(key)
}

func TestClientDoErrors(t *testing.T) {
	tests := []struct {
		name    string
		reply   []byte
		max     int64
		body    string
		wantDo  error
		wantErr error // reading the body
	}{
		{name: "no bytes", reply: nil, wantDo: ErrNoResult},
		{name: "not HTTP", reply: []byte("\x00\x01garbage\r\n\r\n"), wantDo: ErrProtocol},
		{name: "truncated headers", reply: []byte("HTTP/1.0 200 OK\r\nX-A: b"), wantDo: io.ErrUnexpectedEOF},
		{name: "body over MaxResult", reply: []byte("HTTP/1.0 200 OK\r\n\r\n0123456789x"), max: 10, wantErr: ErrTooLarge},
		{name: "body at MaxResult", reply: []byte("HTTP/1.0 200 OK\r\n\r\n0123456789"), max: 10},
		{name: "request body over MaxResult", body: "0123456789x", max: 10, wantDo: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, "tcp", false, func(*fakeRequest) fakeReply { return fakeReply{Bytes: tt.reply} })
			c := newTestClient(t, s)
			c.MaxResult = tt.max
			method := "GET"
			if tt.body != "" {
				method = "POST"
			}
			resp, err := c.Do(testCtx(t), ModWSGI, 0, newHTTPRequest(method, "http://x/", tt.body))
			if !errors.Is(err, tt.wantDo) {
				t.Fatalf("Do: error %v, want %v", err, tt.wantDo)
			}
			if err != nil {
				return
			}
			defer resp.Body.Close()
			_, err = io.ReadAll(resp.Body)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("reading the body: error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestClientDoBodyOwnsConn: closing the Body closes the connection.
func TestClientDoBodyOwnsConn(t *testing.T) {
	s := newFakeServer(t, "tcp", false, func(*fakeRequest) fakeReply {
		return fakeReply{Bytes: []byte("HTTP/1.1 200 OK\r\n\r\nstreaming"), Stall: true}
	})
	c := newTestClient(t, s)
	resp, err := c.Do(context.Background(), ModLua, 0, newHTTPRequest("GET", "http://x/", ""))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 9)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "streaming" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := resp.Body.Read(buf); err == nil {
		t.Error("read after Close succeeded")
	}
}
