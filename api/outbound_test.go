package api

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestOutboundPolicy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(make([]byte, 2048))
			return
		}
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://169.254.169.254/", http.StatusFound)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	local := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	cases := []struct {
		name    string
		cfg     OutboundConfig
		url     string
		refused bool   // ErrOutboundRefused
		errText string // another error
	}{
		{name: "default allows loopback", url: srv.URL},
		{name: "default refuses metadata", url: "http://169.254.169.254/latest/", refused: true},
		{name: "default refuses link-local v6", url: "http://[fe80::1]:80/", refused: true},
		{name: "a redirect to metadata is refused", url: srv.URL + "/redirect", refused: true},
		{name: "a listed name", cfg: OutboundConfig{Allow: []string{"localhost"}}, url: local},
		{name: "a name not listed", cfg: OutboundConfig{Allow: []string{"example.com"}}, url: srv.URL, refused: true},
		{name: "a suffix", cfg: OutboundConfig{Allow: []string{"*.example.com"}}, url: "http://example.com/", refused: true},
		{name: "a prefix holding the address", cfg: OutboundConfig{Allow: []string{"127.0.0.0/8"}}, url: srv.URL},
		{name: "a prefix and a name that resolves outside it", cfg: OutboundConfig{Allow: []string{"10.0.0.0/8"}}, url: local, refused: true},
		{name: "metadata opened by a prefix", cfg: OutboundConfig{Allow: []string{"169.254.0.0/16"}},
			url: "http://169.254.0.1:1/", errText: ""},
		{name: "a response over the limit", cfg: OutboundConfig{MaxResponse: 1024}, url: srv.URL + "/big", errText: "over the limit"},
		{name: "not http", url: "file:///etc/passwd", errText: "want http or https"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := NewOutbound(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			resp, err := o.Do(ctx, OutboundRequest{URL: c.url})
			switch {
			case c.refused:
				if !errors.Is(err, ErrOutboundRefused) {
					t.Errorf("err = %v, want ErrOutboundRefused", err)
				}
			case c.errText != "":
				if err == nil || !strings.Contains(err.Error(), c.errText) {
					t.Errorf("err = %v, want %q", err, c.errText)
				}
			case c.name == "metadata opened by a prefix":
				if errors.Is(err, ErrOutboundRefused) {
					t.Errorf("err = %v: the allow-list opens it", err)
				}
			default:
				if err != nil || resp.Status != 200 {
					t.Errorf("Do = %+v, %v", resp, err)
				}
			}
		})
	}
}

func TestOutboundTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("X-A", "1")
		w.Header().Add("X-A", "2")
		io.WriteString(w, "secure")
	}))
	defer srv.Close()
	untrusted, _ := NewOutbound(OutboundConfig{})
	if _, err := untrusted.Do(context.Background(), OutboundRequest{URL: srv.URL}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an unknown root: %v, want a certificate error", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	o, _ := NewOutbound(OutboundConfig{RootCAs: pool})
	resp, err := o.Do(context.Background(), OutboundRequest{URL: srv.URL})
	if err != nil || string(resp.Body) != "secure" {
		t.Fatalf("Do = %+v, %v", resp, err)
	}
	var xa []string
	for _, h := range resp.Headers {
		if h[0] == "X-A" {
			xa = append(xa, h[1])
		}
	}
	if strings.Join(xa, ",") != "1,2" {
		t.Errorf("X-A headers %v, want both in order", xa)
	}
}
