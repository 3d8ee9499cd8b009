package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Outbound HTTP: the client behind the scripts' http_request (JavaScript's
// fetch and Lua's resty.http are shapes over it). Every request is bound
// to the calling call's deadline and to Timeout, its response to
// MaxResponse bytes (charged to the call's memory), and its connections to
// the allowed addresses: the check runs on the address actually dialed,
// after name resolution, so a name that resolves to a forbidden address
// (DNS rebinding) is refused too.

// Outbound defaults.
const (
	DefaultOutboundTimeout     = 30 * time.Second
	DefaultOutboundMaxResponse = 16 << 20
	maxOutboundRedirects       = 10
)

// ErrOutboundRefused is the error of a request to an address the host's
// outbound policy does not allow.
var ErrOutboundRefused = errors.New("api: outbound address not allowed")

// OutboundConfig configures NewOutbound; zero fields take the defaults.
type OutboundConfig struct {
	// Allow, when not empty, lists what scripts may connect to: host
	// names ("api.example.com"), suffixes ("*.example.com", which also
	// matches example.com's subdomains only), IP addresses and CIDR
	// prefixes ("10.0.0.0/8"). Empty: every address except link-local
	// ones and the clouds' metadata services (169.254.0.0/16, fe80::/10,
	// fd00:ec2::254, 100.100.100.200), which only an Allow prefix that
	// contains them opens.
	Allow []string
	// Timeout bounds a whole request (the call's deadline bounds it too).
	Timeout time.Duration
	// MaxResponse bounds a response body; a longer one fails the request.
	MaxResponse int64
	// RootCAs are the trusted roots (nil: the system's).
	RootCAs *x509.CertPool
}

// Outbound is the scripts' HTTP client.
type Outbound struct {
	cfg    OutboundConfig
	names  []string // exact host names, lower case
	suffix []string // ".example.com"
	nets   []netip.Prefix
	client *http.Client
}

// metadataNets are refused unless an Allow prefix contains them.
var metadataNets = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
	netip.MustParsePrefix("100.100.100.200/32"),
}

// NewOutbound returns a client for cfg.
func NewOutbound(cfg OutboundConfig) (*Outbound, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultOutboundTimeout
	}
	if cfg.MaxResponse <= 0 {
		cfg.MaxResponse = DefaultOutboundMaxResponse
	}
	o := &Outbound{cfg: cfg}
	for _, a := range cfg.Allow {
		a = strings.ToLower(strings.TrimSpace(a))
		switch {
		case a == "":
			continue
		case strings.Contains(a, "/"):
			p, err := netip.ParsePrefix(a)
			if err != nil {
				return nil, fmt.Errorf("api: outbound allow %q: %w", a, err)
			}
			o.nets = append(o.nets, p.Masked())
		case strings.HasPrefix(a, "*."):
			o.suffix = append(o.suffix, a[1:])
		default:
			if ip, err := netip.ParseAddr(a); err == nil {
				o.nets = append(o.nets, netip.PrefixFrom(ip, ip.BitLen()))
				continue
			}
			o.names = append(o.names, a)
		}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: o.control}
	transport := &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       60 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	o.client = &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxOutboundRedirects {
				return fmt.Errorf("stopped after %d redirects", maxOutboundRedirects)
			}
			return o.checkHost(req.URL.Hostname())
		},
	}
	return o, nil
}

// Close drops the idle connections.
func (o *Outbound) Close() { o.client.CloseIdleConnections() }

// checkHost applies the name rules of Allow before any resolution: with
// an allow-list, a name must be listed (or be an address the prefixes
// hold, which control checks).
func (o *Outbound) checkHost(host string) error {
	if len(o.names)+len(o.suffix)+len(o.nets) == 0 {
		return nil
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if slices.Contains(o.names, h) {
		return nil
	}
	for _, s := range o.suffix {
		if strings.HasSuffix(h, s) {
			return nil
		}
	}
	if ip, err := netip.ParseAddr(h); err == nil && o.inNets(ip) {
		return nil
	}
	return fmt.Errorf("%w: %s is not in --outbound-allow", ErrOutboundRefused, host)
}

func (o *Outbound) inNets(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range o.nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// control checks the address being dialed.
func (o *Outbound) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrOutboundRefused, address)
	}
	ip := ap.Addr().Unmap()
	if o.inNets(ip) {
		return nil
	}
	for _, p := range metadataNets {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s is a link-local or metadata address", ErrOutboundRefused, ip)
		}
	}
	if len(o.nets) > 0 && len(o.names)+len(o.suffix) == 0 {
		// Only prefixes were allowed: every dialed address must be in one.
		return fmt.Errorf("%w: %s is not in --outbound-allow", ErrOutboundRefused, ip)
	}
	return nil
}

// OutboundRequest is one request of a script.
type OutboundRequest struct {
	Method  string      // any case; "" is GET
	URL     string      // an absolute http or https URL, its host checked against OutboundConfig.Allow
	Headers [][2]string // name and value pairs, added in order; a "Host" one sets the request's host
	Body    []byte      // nil sends no body
}

// OutboundResponse is what the script gets back.
type OutboundResponse struct {
	Status  int         // the HTTP status code
	Reason  string      // the status line's text after the code ("OK")
	Headers [][2]string // sorted by canonical name, a name's values in the order received
	Body    []byte      // the whole body, at most OutboundConfig.MaxResponse bytes
}

// Do sends r within ctx's deadline and reads the whole response.
func (o *Outbound) Do(ctx context.Context, r OutboundRequest) (*OutboundResponse, error) {
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, fmt.Errorf("bad URL %q: %w", r.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("bad URL %q: want http or https", r.URL)
	}
	if err := o.checkHost(u.Hostname()); err != nil {
		return nil, err
	}
	method := strings.ToUpper(r.Method)
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for _, h := range r.Headers {
		if strings.EqualFold(h[0], "Host") {
			req.Host = h[1]
			continue
		}
		req.Header.Add(h[0], h[1])
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	limit := o.cfg.MaxResponse
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("response of %d bytes: over the limit of %d", resp.ContentLength, limit)
	}
	if resp.ContentLength > 0 {
		if err := Charge(ctx, resp.ContentLength); err != nil {
			return nil, err
		}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("response over the limit of %d bytes", limit)
	}
	if resp.ContentLength <= 0 {
		if err := Charge(ctx, int64(len(data))); err != nil {
			return nil, err
		}
	}
	out := &OutboundResponse{Status: resp.StatusCode, Reason: http.StatusText(resp.StatusCode), Body: data}
	if _, reason, ok := strings.Cut(resp.Status, " "); ok {
		out.Reason = reason
	}
	names := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range resp.Header[k] {
			out.Headers = append(out.Headers, [2]string{k, v})
		}
	}
	return out, nil
}
