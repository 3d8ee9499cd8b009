// The Go twin of app.lua and web.js: a net/http handler interpreted by
// yaegi, served on modifier1 11 (uWSGI's Go number), sharing the cache and
// the RPC registry with the Lua and JavaScript apps.
//
//	GET /hello?name=NAME   "Hello, NAME!" plus what the Lua RPC says
//	GET /notes?id=N        note N (stored by any of the three apps)
//	GET /stats             requests served and notes stored
//
// RPC function: go_hello([name]).
package main

import (
	"fmt"
	"net/http"

	"scripthost/uwsgi"
)

func greet(name string) string {
	if name == "" {
		name = "world"
	}
	return "Hello, " + name + "!"
}

func main() {
	uwsgi.RegisterRpc("go_hello", func(args ...string) string {
		name := ""
		if len(args) > 0 {
			name = args[0]
		}
		return greet(name)
	})
}

func Handler(w http.ResponseWriter, r *http.Request) {
	uwsgi.CacheInc("requests")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch r.URL.Path {
	case "/hello":
		name := r.URL.Query().Get("name")
		lua, _ := uwsgi.Call("hello", name)
		fmt.Fprintf(w, "%s (Lua says: %v)\n", greet(name), lua)
	case "/notes":
		note, _ := uwsgi.CacheGet("note:" + r.URL.Query().Get("id"))
		if note == nil {
			http.Error(w, "no such note", http.StatusNotFound)
			return
		}
		fmt.Fprintf(w, "%v\n", note)
	case "/stats":
		// Counters are uWSGI's 8-byte integers: CacheNum reads them.
		requests, _ := uwsgi.CacheNum("requests")
		notes, _ := uwsgi.CacheNum("notes")
		fmt.Fprintf(w, "requests=%v notes=%v\n", requests, notes)
	default:
		http.NotFound(w, r)
	}
}
