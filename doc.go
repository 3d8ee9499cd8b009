// Package scripthost embeds scripthost in a Go program: New wires the
// shared state, the script engines (Lua, JavaScript, Go), the uwsgi
// server and the reloader of a scripts directory, so that a program serves
// its scripts, and Go functions of its own beside them, in a few lines:
//
//	h, err := scripthost.New(scripthost.Config{Scripts: "scripts"})
//	if err != nil {
//		log.Fatal(err)
//	}
//	log.Fatal(h.ListenAndServe("127.0.0.1:3031"))
//
// Every .lua, .js and .go file of the directory is loaded, and loaded
// again into a new generation when the directory changes; the Go
// functions of Config.Functions and Host.Register are RPC functions like
// the scripts' own, so scripts call them with uwsgi.call and clients with
// packet 173. A Host has net/http.Server's shape: Serve, ListenAndServe,
// Shutdown and Close.
//
// The command scripthost serve is a user of this package; what is
// particular to a command (flags, signals, graceful restarts that hand
// the listeners to a new process, the supervising parent process) stays
// there. Packages host, api and the engines' remain available for wiring
// of one's own.
package scripthost
