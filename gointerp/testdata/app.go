// An app for the tests and benchmarks.
package main

import (
	"fmt"
	"io"
	"net/http"
)

func Handler(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/hello":
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "Hello World")
	case "/echo":
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Add("X-Multi", "1")
		w.Header().Add("X-Multi", "2")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%s %s?%s q=%s host=%s test=%s len=%d remote=%s tls=%v body=%s",
			r.Method, r.URL.Path, r.URL.RawQuery, r.URL.Query().Get("q"), r.Host, r.Header.Get("X-Test"),
			r.ContentLength, r.RemoteAddr, r.TLS != nil, body)
	case "/stream":
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "chunk%d;", i)
			w.(http.Flusher).Flush()
		}
	case "/empty":
	default:
		http.NotFound(w, r)
	}
}
