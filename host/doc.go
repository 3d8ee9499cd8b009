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
// the cost of a connection is most of the cost of a request. On Linux, TCP
// and unix listeners hand out connections that use
// plain non-blocking system calls until one would block, and only then
// join Go's poller; elsewhere listeners are served through net.Listener.
//
// Towards uWSGI clients and nginx it behaves like uWSGI 2.0.21 byte for
// byte: a connection is closed right after its answer, and a failure
// closes it without a byte. Packets a client pipelined behind the first
// and that arrived with it are answered before the close; anything sent
// later is not read. The one deliberate difference no valid uWSGI client
// can observe: empty RPC array items are skipped also in last position.
// Clients that negotiate the scripthost extension (uwsgi.ExtHello) keep their connection open across framed answers, and get error
// frames with messages and close marks.
//
// Spool jobs (modifier1 17) go to the state's spooler (api.Spooler):
// [255, 0, 1] once stored durably, [255, 0, 0] without a spooler or when
// the job cannot be stored.
//
// A request that asks for a WebSocket upgrade, on a uwsgi listener or the
// HTTP front, carries an api.Upgrader in its context; once its script
// upgrades, the connection is a WebSocket until the call returns
// (websocket.go): packet timeouts no longer apply to it, Shutdown closes
// it with 1001 after the other requests drained, and its generation of
// scripts stays loaded until it closes.
//
// Unsupported: cache dump (111/6), XML-RPC (173/3 answers uWSGI's 500),
// and the UDP-only packets. HTTP-style modifiers are served only
// once an engine claims them with Handle.
package host
