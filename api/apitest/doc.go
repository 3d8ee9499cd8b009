// Package apitest is the conformance suite of the uWSGI API: every engine
// (Lua, JavaScript, Go scripts) runs it from its own tests,
//
//	func TestAPI(t *testing.T) {
//		apitest.Run(t, func() api.Engine { return lua.New(lua.Options{}) })
//	}
//
// and so proves that each function of api.Funcs() behaves the same from
// its scripts as from the others'.
//
// # Cases
//
// A Case is data: a name ("cache_get/miss"), the API functions it covers,
// one script per engine, the expected result and optional Go-side hooks
// that prepare the host state (Setup) and judge side effects (Check). The
// scripts are kept per language, a map from case name to source, plus a
// prelude of rendering helpers prepended to every script of the language.
// A new engine adds its map and one entry to each of the package's
// languages and languagePrelude tables; Coverage and Uncovered then report
// what its scripts cover.
//
// Run fails when an API function is covered by no case that has a script
// for the engine under test; a case without a script for it is skipped
// with "no <lang> script for case X", so engines can land one at a time
// while every missing piece of parity stays visible in the test output.
// The suite's own tests require a Lua script for every case.
//
// # Protocol between the suite and a script
//
// For each case the suite builds a fresh world: an api.State with two
// caches, "default" (the default one) and "other", Hostname "testhost" and
// Options {"socket": "127.0.0.1:0"}, a logger and an alarm sink that
// record everything, and state.Signals.Serve, state.Timers.Serve and
// state.Consumers.Serve running in goroutines for the duration of the
// case. It writes the case's script
// as "case"+engine.Extensions()[0] into a fresh directory, builds an
// api.Registrations over that directory and loads the one file with engine.Load.
//
// Function cases (Request false): while loading, the script registers an
// RPC function named "t". The suite calls state.RPC.Call(ctx, "t") inside
// a scope from api.NewScope with no client connection and a 10 s limit,
// and compares the result with Want; when WantErr is set the call must
// fail instead, with an error matching WantErr (errors.Is).
//
// Scripts hand their callbacks to the API (register_rpc, register_signal)
// while loading, at the top level: an engine whose VMs are pooled finds
// such a function again in every VM, while a function made during a call
// may exist in that one VM only. Cases that register during a call only
// check results and errors; what must run elsewhere (signal handlers,
// RPCs called from Go) is registered at load, except in the cases that
// test such a function itself (register_signal/during_call: the handler
// runs in its VM once that one is free; register_signal/vm_replaced: its
// registration ends with the VM). A case with Concurrent set
// calls "t" several times at once, so that such an engine answers from
// several VMs, each of which ran the file's top level.
//
// Request cases (Request true) need a client connection: the script
// returns an app instead (Lua: a WSAPI function returning status, headers
// and a body iterator), which the suite finds as Program.Apps()["case"].
// It serves one GET request to it through ServeRequest, with a scope whose
// api.Conn is the server side of a real loopback TCP connection (so Peek
// and SetReadDeadline work) and a ResponseWriter that writes the raw HTTP
// response to the same connection. Input is sent by the client after the
// request (the suite waits until it has all arrived before serving, so
// recv sees it whole) and CloseInput half-closes the client side
// afterwards. What is compared with Want is everything the client
// received: bytes written by uwsgi.send, in order with the response
// ("HTTP/1.1 200 OK\r\n" + headers + "\r\n" + body). WantErr, when set,
// must match ServeRequest's error instead.
//
// A Request case with WebSocket set serves a request that asked for an
// upgrade: its context carries an Upgrader in memory (NewUpgrader) whose
// socket's peer sends the case's messages, each After the one before,
// and closes (1000) after them when Close is set. The Upgrader records
// the handshakes and the messages the script sends; WantFrames is that
// transcript, as in
//
//	upgrade("","","") text:"echo: hello" binary:"b\x00\xff"
//
// Like the host, the Upgrader bounds the call's life and lifts its time
// limit at the first handshake. RunContainment, which every engine runs
// from its tests with its pool size as a parameter, checks that a
// WebSocket call leaves its interpreter's pool room for the other calls.
//
// Results are strings, built by the script with the rendering every
// language's scripts use, so that Want is the same for all engines:
//
//	nil               nil (JS null and undefined, Go nil)
//	true / false      booleans
//	3, 0.5, -1        numbers, integers without a decimal point
//	"text"            strings, in double quotes, bytes as they are
//	["a","b"]         lists, items rendered the same way, no spaces
//
// Several results are joined with a single space. Errors are caught by the
// script (Lua: pcall) and rendered in one of two ways: an argument error
// as its "bad argument #N to uwsgi.NAME" prefix (the text every engine
// must keep from api.ArgError), any other error as "failed" when its
// message contains the text of the api error the case expects ("no such
// lock"), else "other error: " followed by the message. Several such
// renderings are joined with ";".
//
// Placeholders of the form {{NAME}} in a script and in Want are replaced
// before loading; the servers behind them start only for cases that use
// them:
//
//	{{ECHO_ADDR}}  a TCP echo server on 127.0.0.1
//	{{ECHO_UNIX}}  a unix socket echo server (an absolute path)
//	{{NODE_ADDR}}  a minimal uWSGI node: RPC ("hello", "echo"), signals,
//	               and the cache magic interface over caches "default"
//	               and "other"; it answers the scripthost hello as a plain
//	               ping and closes every connection after one reply, as
//	               uWSGI 2.0 does
//	{{DEAD_ADDR}}  a 127.0.0.1 address nothing listens on
//	{{HTTP_URL}}   a local HTTP server: /hello, and /echo (201, the method, body and Authorization header)
//	{{PID}}        os.Getpid()
//	{{VERSION}}    api.Version
//
// A case's Note is logged when it fails: it names a known defect outside
// the engine (in package api) that the case exposes, so that an engine
// author does not hunt for it in the engine.
//
// Timing: the suite never asserts that something is fast. Timers use
// intervals of 50 ms and side effects are polled until a 5 s deadline; the
// harakiri cases only require that a 5 s sleep (or an endless loop) ends
// with api.ErrHarakiri well before it would have ended on its own.
//
// Cases run one after another: setprocname renames the test process (the
// original name is restored when the case ends).
package apitest
