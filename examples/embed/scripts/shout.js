// JavaScript beside the Go functions of main.go.
//
//   shout(words...)   Go's echo of the words, upper-cased

uwsgi.register_rpc('shout', (...words) => uwsgi.call('echo', ...words).toUpperCase() + '!');
