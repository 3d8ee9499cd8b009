package api

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// outboundFuncs are the scripts' HTTP client: one function that the
// languages' own shapes (fetch, resty.http) are built on.
var outboundFuncs = []Func{
	{Name: "http_request", Params: "url[, options]",
		Doc: "send an HTTP(S) request (options: method, headers as a map or a list of pairs, body) within the call's deadline and the host's --outbound-allow; a map with status, reason, headers (lower-case names; repeated ones joined with \", \") and body",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			u, err := a.String(0)
			if err != nil {
				return nil, err
			}
			req := OutboundRequest{URL: u}
			if a.Has(1) {
				opts, ok := a.Vals[1].(map[string]Value)
				if !ok {
					if l, isList := a.Vals[1].([]Value); !isList || len(l) != 0 {
						return nil, a.err(1, "map of options expected, got %s", typeName(a.Vals[1]))
					}
				}
				if req, err = outboundOptions(a, req, opts); err != nil {
					return nil, err
				}
			}
			out := env.State.Outbound
			if out == nil {
				return nil, fmt.Errorf("uwsgi.http_request: %w: no outbound client", ErrOutboundRefused)
			}
			resp, err := out.Do(ctx, req)
			if err != nil {
				return nil, fmt.Errorf("uwsgi.http_request %s: %w", u, err)
			}
			headers := map[string]Value{}
			for _, h := range resp.Headers {
				name := strings.ToLower(h[0])
				if prev, ok := headers[name].(string); ok {
					headers[name] = prev + ", " + h[1]
					continue
				}
				headers[name] = h[1]
			}
			return map[string]Value{"status": int64(resp.Status), "reason": resp.Reason, "headers": headers,
				"body": string(resp.Body)}, nil
		}},
}

func outboundOptions(a Args, req OutboundRequest, opts map[string]Value) (OutboundRequest, error) {
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		v := opts[k]
		switch k {
		case "method":
			s, ok := v.(string)
			if !ok {
				return req, a.err(1, "method must be a string, got %s", typeName(v))
			}
			req.Method = s
		case "body":
			switch b := v.(type) {
			case string:
				req.Body = []byte(b)
			case []byte:
				req.Body = b
			case nil:
			default:
				return req, a.err(1, "body must be a string, got %s", typeName(v))
			}
		case "headers":
			hs, err := outboundHeaders(v)
			if err != nil {
				return req, a.err(1, "%s", err)
			}
			req.Headers = hs
		default:
			return req, a.err(1, "unknown option %q (method, headers, body)", k)
		}
	}
	return req, nil
}

// outboundHeaders reads headers given as a map (name to a string or a
// list of strings) or as a list of [name, value] pairs.
func outboundHeaders(v Value) ([][2]string, error) {
	var out [][2]string
	switch hs := v.(type) {
	case map[string]Value:
		for _, name := range slices.Sorted(maps.Keys(hs)) {
			switch val := hs[name].(type) {
			case string:
				out = append(out, [2]string{name, val})
			case int64, float64:
				out = append(out, [2]string{name, FormatValue(val)})
			case []Value:
				for _, x := range val {
					s, ok := x.(string)
					if !ok {
						return nil, fmt.Errorf("header %q: values must be strings", name)
					}
					out = append(out, [2]string{name, s})
				}
			default:
				return nil, fmt.Errorf("header %q: value must be a string, got %s", name, typeName(val))
			}
		}
	case []Value:
		for _, p := range hs {
			pair, ok := p.([]Value)
			if !ok || len(pair) != 2 {
				return nil, fmt.Errorf("headers: want [name, value] pairs")
			}
			name, ok1 := pair[0].(string)
			val, ok2 := pair[1].(string)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("headers: names and values must be strings")
			}
			out = append(out, [2]string{name, val})
		}
	case nil:
	default:
		return nil, fmt.Errorf("headers must be a map or a list of pairs, got %s", typeName(v))
	}
	for _, h := range out {
		if h[0] == "" || strings.ContainsAny(h[0], "\r\n:") || strings.ContainsAny(h[1], "\r\n") {
			return nil, fmt.Errorf("header %q: invalid name or value", h[0])
		}
	}
	return out, nil
}
