package host_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// Spool packets that cannot be a job get uWSGI's refusal, store nothing
// and leave the server serving.
func TestSpoolBadInput(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, "tcp", host.Limits{}, func(srv *host.Server) {
		sp, err := api.NewSpooler(api.SpoolerConfig{Dirs: []string{dir}, Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sp.Close(context.Background()) })
		srv.State.Spooler = sp
	})
	refused := []byte{255, 0, 0, 0}
	good, _ := uwsgi.Vars{}.Add("task", "x").Append(nil)
	for _, c := range []struct {
		name    string
		payload []byte
	}{
		{"truncated vars", []byte{5, 0, 'a'}},
		{"zero-length key", []byte{0, 0, 1, 0, 'v'}},
		{"value past the end", []byte{4, 0, 't', 'a', 's', 'k', 50, 0, 'x'}},
		{"unknown spooler", func() []byte { b, _ := uwsgi.Vars{}.Add("spooler", "nosuch").Append(nil); return b }()},
		{"bad priority", func() []byte { b, _ := uwsgi.Vars{}.Add("priority", "../up").Append(nil); return b }()},
		{"bad at", func() []byte { b, _ := uwsgi.Vars{}.Add("at", "tomorrow").Append(nil); return b }()},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ts.exchange(t, framed(uwsgi.ModSpooler, 0, c.payload), true); !bytes.Equal(got, refused) {
				t.Errorf("got %v, want %v", got, refused)
			}
		})
	}
	if jobs, _ := filepath.Glob(filepath.Join(dir, "uwsgi_spoolfile_on_*")); len(jobs) != 0 {
		t.Errorf("refused packets stored jobs: %v", jobs)
	}
	if _, err := os.Stat(filepath.Join(dir, "..", "up")); err == nil {
		t.Errorf("a priority escaped the spool directory")
	}
	if got := ts.exchange(t, framed(uwsgi.ModSpooler, 0, good), true); !bytes.Equal(got, []byte{255, 0, 0, 1}) {
		t.Errorf("a good job after the bad ones: %v, want [255 0 0 1]", got)
	}
}
