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
// Most uwsgi connections carry one request (nginx, uWSGI's clients), so
// the cost of a connection is most of the cost of a request. A listener's
// goroutines (accept.go) each accept a connection, serve it to its end and
// take the next, growing in number whenever all are busy; and TCP and
// unix listeners hand out connections (sockconn.go) that use plain
// non-blocking system calls until one would block, and only then join Go's
// poller. A one-shot request costs accept4, read, write and close; after a
// framed answer, one peek more for the client's close (accept.go).
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
