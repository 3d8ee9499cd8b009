// The example scripts are run by scripthost, not built by the Go
// toolchain: this file keeps them out of the main module (a Go script
// imports "scripthost/uwsgi", which only the interpreter provides).
module scripthost.example/websocket-echo

go 1.26
