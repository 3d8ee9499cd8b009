// The Go twin of echo.lua (modifier1 11): text messages come as a string
// and are sent back as text, binary ones as a []byte, sent back as binary.
package main

import (
	"net/http"

	"scripthost/uwsgi"
)

func Handler(w http.ResponseWriter, r *http.Request) {
	if _, err := uwsgi.WebsocketHandshake(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for {
		msg, err := uwsgi.WebsocketRecv()
		if err != nil {
			return // the peer closed the socket
		}
		if b, ok := msg.([]byte); ok {
			uwsgi.WebsocketSendBinary(b)
		} else {
			uwsgi.WebsocketSend(msg)
		}
	}
}
