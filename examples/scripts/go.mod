// The example scripts are run by scripthost, not built by the Go
// toolchain: this file keeps them out of the main module (a Go script
// imports "scripthost/uwsgi", which only the interpreter provides).
module scripthost.example/scripts

go 1.26
