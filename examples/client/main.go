// Command client calls the example app's RPC functions with scripthost's
// Go client, the way any Go program talks to a scripthost or uWSGI node.
//
//	go run ./cmd/scripthost serve --scripts examples/scripts &
//	go run ./examples/client --addr 127.0.0.1:3031 Gopher
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3031", "uwsgi address of the server")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	c := uwsgi.NewClient(*addr)
	defer c.Close()

	greeting, err := c.CallString(ctx, "hello", flag.Args()...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
	fmt.Println(greeting)

	// Notes live in the server's cache; ask for note 1 through its RPC.
	note, err := c.CallString(ctx, "note", "1")
	switch {
	case errors.Is(err, uwsgi.ErrNoResult):
		fmt.Println("no note 1 yet: curl -d text=hi http://127.0.0.1:8080/notes")
	case err != nil:
		fmt.Fprintln(os.Stderr, "note:", err)
		os.Exit(1)
	default:
		fmt.Println("note 1:", note)
	}
}
