package host

import (
	"net/http"
	"strconv"
)

// StatusLine returns "<proto> <code> <reason>\r\n" for a raw HTTP response.
// proto is the request's SERVER_PROTOCOL, "HTTP/1.0" when empty, as uWSGI
// does; an unknown code gets the reason "Unknown".
func StatusLine(proto string, code int) string {
	if proto == "" {
		proto = "HTTP/1.0"
	}
	reason := http.StatusText(code)
	if reason == "" {
		reason = "Unknown"
	}
	return proto + " " + strconv.Itoa(code) + " " + reason + "\r\n"
}

// writeGenericError writes uWSGI's own error page (uwsgi_404, uwsgi_500):
// always HTTP/1.0, Connection: close, a text/plain reason.
func writeGenericError(w *PacketWriter, code int) {
	w.WriteString(StatusLine("HTTP/1.0", code))
	w.WriteString("Connection: close\r\nContent-Type: text/plain\r\n\r\n")
	w.WriteString(http.StatusText(code))
}
