// Package host is scripthost's server: listeners, the per-connection loop,
// the mux keyed by modifier1, and the built-in service handlers (RPC,
// ping, echo, signal, cache, close mark) over the shared state of package
// api.
//
// The server has net/http's shape: Serve, ListenAndServe, Shutdown, Close
// and ErrServerClosed. Every connection is served by one goroutine that
// reads packets with bounded sizes and deadlines, so malformed packets,
// huge lengths and slow or silent clients get a log line and a closed
// connection, never a crash or a pinned goroutine.
//
// Towards uWSGI clients and nginx it behaves like uWSGI 2.0.21 byte for
// byte, with two deliberate differences that no valid uWSGI client can
// observe: connections stay open after framed responses (so clients may
// pipeline), and empty RPC array items are skipped also in last position.
// Clients that negotiate the scripthost extension (see package uwsgi,
// ext.go) additionally get error frames with messages and close marks.
//
// Unsupported: cache dump (111/6), XML-RPC (173/3 answers uWSGI's 500),
// spooler, and the UDP-only packets. HTTP-style modifiers are served only
// once an engine claims them with Handle.
package host
