// Package uwsgi is the uwsgi wire protocol: a pure codec (packet headers,
// vars blocks, arrays, RPC and cache framing, request building) and a Go
// client for uwsgi servers, scripthost's and uWSGI's alike.
//
// The codec functions never start goroutines or touch the network; they
// check every length before trusting it and return typed errors instead of
// truncating or panicking. Decoders return slices into the caller's buffer
// (no copies); encoders append to a caller-supplied slice.
//
// The wire format follows uWSGI 2.0.21 byte for byte. Beyond it, scripthost
// servers and this client speak a small, negotiated extension: a client
// opens a connection with a hello (a ping whose payload is ExtHello), and
// a server that accepts it answers with PingExt; the connection then stays
// open between requests until the server sends CloseMark, and failures are
// answered with error frames carrying a Code and a message. Peers that do
// not negotiate it, such as uWSGI itself, never see it.
//
// Not supported: the 24-bit vars size of modifier1 30 (no implementation
// exists), cache dump (111/6), UDP cache replication, subscriptions and the
// other UDP-only packets.
package uwsgi
