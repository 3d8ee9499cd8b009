// The /hello endpoint of the reference app.lua as a Go handler, for the
// benchmark.
package main

import "net/http"

func Handler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	if r.URL.Path == "/" || r.URL.Path == "/hello" {
		w.Header().Set("Content-Length", "11")
		w.Write([]byte("Hello World"))
		return
	}
	http.NotFound(w, r)
}
