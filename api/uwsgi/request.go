package uwsgi

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// RequestVars returns the CGI variables a web server would send for r, in
// the order of Debian's nginx uwsgi_params (QUERY_STRING, REQUEST_METHOD,
// CONTENT_TYPE, CONTENT_LENGTH, REQUEST_URI, PATH_INFO, SERVER_PROTOCOL,
// REQUEST_SCHEME, HTTPS, REMOTE_ADDR, REMOTE_PORT, SERVER_PORT, SERVER_NAME,
// HTTP_HOST), then one HTTP_* var per header value (name upper-cased, "-"
// turned into "_", sorted by name for a stable encoding). contentLength is
// the body's length (-1 or 0: none). PATH_INFO is the decoded path, as
// nginx's $document_uri.
func RequestVars(r *http.Request, contentLength int64) Vars {
	u := r.URL
	if u == nil {
		u = &url.URL{Path: "/"}
	}
	scheme := u.Scheme
	if scheme == "" {
		scheme = "http"
		if r.TLS != nil {
			scheme = "https"
		}
	}
	host := r.Host
	if host == "" {
		host = u.Host
	}
	serverName, serverPort := splitHostPort(host, scheme)
	path := u.Path
	if path == "" {
		path = "/"
	}
	uri := u.RequestURI()
	if r.RequestURI != "" {
		uri = r.RequestURI
	}
	proto := r.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	cl := ""
	if contentLength > 0 {
		cl = strconv.FormatInt(contentLength, 10)
	}
	var vs Vars
	vs = vs.Add("QUERY_STRING", u.RawQuery).
		Add("REQUEST_METHOD", method).
		Add("CONTENT_TYPE", r.Header.Get("Content-Type")).
		Add("CONTENT_LENGTH", cl).
		Add("REQUEST_URI", uri).
		Add("PATH_INFO", path).
		Add("SERVER_PROTOCOL", proto).
		Add("REQUEST_SCHEME", scheme)
	if scheme == "https" {
		vs = vs.Add("HTTPS", "on")
	}
	if r.RemoteAddr != "" {
		ra, rp := splitHostPort(r.RemoteAddr, "")
		vs = vs.Add("REMOTE_ADDR", ra).Add("REMOTE_PORT", rp)
	}
	vs = vs.Add("SERVER_PORT", serverPort).
		Add("SERVER_NAME", serverName).
		Add("HTTP_HOST", host)
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		key := "HTTP_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if key == "HTTP_HOST" {
			continue
		}
		for _, v := range r.Header[name] {
			vs = vs.Add(key, v)
		}
	}
	return vs
}

func splitHostPort(hostport, scheme string) (host, port string) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		h = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
		switch scheme {
		case "http":
			p = "80"
		case "https":
			p = "443"
		}
	}
	return h, p
}

// BuildRequest encodes an HTTP-style request: the header with modifier1 m1
// and modifier2 m2, the vars of RequestVars (plus extra vars appended after
// them, which win over earlier ones), and the body. It is the client side of
// what nginx's uwsgi_pass does.
func BuildRequest(m1 Modifier, m2 uint8, r *http.Request, extra Vars, body []byte) ([]byte, error) {
	vs := append(RequestVars(r, int64(len(body))), extra...)
	size := vs.Size()
	if size > MaxSize {
		return nil, fmt.Errorf("uwsgi: request vars of %d bytes: %w (max %d)", size, ErrTooLarge, MaxSize)
	}
	out := make([]byte, 0, HeaderSize+size+len(body))
	out = Header{Modifier1: m1, Size: uint16(size), Modifier2: m2}.Append(out)
	out, err := vs.Append(out)
	if err != nil {
		return nil, err
	}
	return append(out, body...), nil
}

// RequestURI rebuilds the absolute URI of a request from its vars:
// scheme://host[:port]/SCRIPT_NAME+PATH_INFO[?QUERY_STRING]. The scheme is
// UWSGI_SCHEME, else REQUEST_SCHEME, else "https" when HTTPS is "on", else
// "http"; the host is HTTP_HOST, else SERVER_NAME with a non-default
// SERVER_PORT. When neither PATH_INFO nor SCRIPT_NAME is set the path of
// REQUEST_URI is used.
func RequestURI(vs Vars) string {
	scheme := vs.Get("UWSGI_SCHEME")
	if scheme == "" {
		scheme = vs.Get("REQUEST_SCHEME")
	}
	if scheme == "" {
		if https := strings.ToLower(vs.Get("HTTPS")); https == "on" || https == "1" {
			scheme = "https"
		} else {
			scheme = "http"
		}
	}
	host := vs.Get("HTTP_HOST")
	if host == "" {
		host = strings.TrimSuffix(strings.TrimPrefix(vs.Get("SERVER_NAME"), "["), "]")
		port := vs.Get("SERVER_PORT")
		if port != "" && !(scheme == "http" && port == "80") && !(scheme == "https" && port == "443") {
			host = net.JoinHostPort(host, port)
		} else if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	u := url.URL{Scheme: scheme, Host: host}
	script, _ := vs.Lookup("SCRIPT_NAME")
	path, hasPath := vs.Lookup("PATH_INFO")
	if script == nil && !hasPath {
		ru := vs.Get("REQUEST_URI")
		if i := strings.IndexByte(ru, '?'); i >= 0 {
			ru = ru[:i]
		}
		if p, err := url.PathUnescape(ru); err == nil {
			u.Path = p
		}
	} else {
		u.Path = string(script) + string(path)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	u.RawQuery = vs.Get("QUERY_STRING")
	return u.String()
}
