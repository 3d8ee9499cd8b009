package apitest

import (
	"context"
	"maps"
	"os"
	"time"

	"github.com/scripthost/scripthost/api"
)

// The spooler's cases: jobs spooled by a script and run by its spooler
// function, in every language.

func init() {
	maps.Copy(luaScripts, spoolerLua)
	maps.Copy(jsScripts, spoolerJS)
	maps.Copy(goScripts, spoolerGo)
}

func spoolerCases() []Case {
	return []Case{
		{Name: "spool/runs", Funcs: fns("spool", "SPOOL_OK"), Setup: withSpooler, Want: `"string"`,
			Check: func(f *Fixture) {
				f.WaitCache("job", "demo 42 body!")
				spoolerSettles(f, 1, 0)
			}},
		{Name: "register_spooler/retry", Funcs: fns("register_spooler", "send_to_spooler", "SPOOL_RETRY"),
			Setup: withSpooler, Want: `"string"`,
			Check: func(f *Fixture) {
				f.Eventually("a retry, then done", func() bool { return f.CacheInt("runs") == 2 })
				spoolerSettles(f, 1, 1)
			}},
		{Name: "register_spooler/bad_answer", Funcs: fns("register_spooler", "spool", "SPOOL_IGNORE"),
			Setup: withSpooler, Want: "0 true",
			Check: func(f *Fixture) {
				f.Eventually("the job in failed/", func() bool { return f.State.Spooler.Stats().Failed == 1 })
			}},
		{Name: "spooler_jobs/lists", Funcs: fns("spooler_jobs", "spool"), Setup: withSpooler, Want: "1 0"},
		{Name: "spool/no_spooler", Funcs: fns("spool", "spooler_jobs"), Want: `"failed" "failed"`},
		{Name: "spool/bad_arguments", Funcs: fns("spool", "send_to_spooler", "register_spooler"), Setup: withSpooler,
			Want: "bad argument #1 to uwsgi.spool;bad argument #1 to uwsgi.spool;bad argument #1 to uwsgi.send_to_spooler;" +
				"bad argument #1 to uwsgi.register_spooler;failed"},
	}
}

// withSpooler gives the case's state a spooler over a fresh directory that
// retries quickly and gives up after two failures.
func withSpooler(f *Fixture) {
	sp, err := api.NewSpooler(api.SpoolerConfig{Dirs: []string{f.T.TempDir()}, Frequency: 50 * time.Millisecond,
		Backoff: 20 * time.Millisecond, MaxAttempts: 2, Logger: f.State.Logger})
	if err != nil {
		f.T.Fatal(err)
	}
	f.T.Cleanup(func() { sp.Close(context.Background()) })
	f.State.Spooler = sp
}

// spoolerSettles checks that every job is done and its file gone, with
// the counts of done jobs and retries.
func spoolerSettles(f *Fixture, done, retried int64) {
	f.T.Helper()
	sp := f.State.Spooler
	f.Eventually("the job done", func() bool { return sp.Stats().Done == done && sp.Stats().Running == 0 })
	if st := sp.Stats(); st.Retried != retried || st.Failed != 0 {
		f.T.Errorf("spooler stats %+v, want %d retried, none failed", st, retried)
	}
	jobs, err := sp.Jobs("")
	if err != nil || len(jobs) != 0 {
		f.T.Errorf("jobs left %v, %v", jobs, err)
	}
	for _, j := range jobs {
		if _, err := os.Stat(j); err == nil {
			f.T.Errorf("job file %s still there", j)
		}
	}
}

var spoolerLua = map[string]string{
	"spool/runs": `
uwsgi.spooler = function(job)
  uwsgi.cache_update("job", job.task .. " " .. job.arg .. " " .. job.body)
  return uwsgi.SPOOL_OK
end
uwsgi.register_rpc("t", function()
  return show(type(uwsgi.spool({task = "demo", arg = 42, body = "body!"})))
end)`,
	"register_spooler/retry": `
uwsgi.register_spooler(function(job)
  if uwsgi.cache_inc("runs") == 1 then return uwsgi.SPOOL_RETRY end
  return uwsgi.SPOOL_OK
end)
uwsgi.register_rpc("t", function() return show(type(uwsgi.send_to_spooler({task = "again"}))) end)`,
	"register_spooler/bad_answer": `
uwsgi.register_spooler(function(job) return "done" end)
uwsgi.register_rpc("t", function() return shows(uwsgi.SPOOL_IGNORE, type(uwsgi.spool({task = "x"})) == "string") end)`,
	"spooler_jobs/lists": `
uwsgi.register_rpc("t", function()
  uwsgi.spool({task = "later", at = tostring(os.time() + 3600)})
  return shows(#uwsgi.spooler_jobs(), 0)
end)`,
	"spool/no_spooler": `
uwsgi.register_rpc("t", function()
  return shows(fails("no spooler", uwsgi.spool, {task = "x"}), fails("no spooler", uwsgi.spooler_jobs))
end)`,
	"spool/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.spool), argerr(uwsgi.spool, "x"), argerr(uwsgi.send_to_spooler, {k = {1}}),
    argerr(uwsgi.register_spooler, "notfn"), fails("no such spooler", uwsgi.spool, {spooler = "nosuch"})}, ";")
end)`,
}

var spoolerJS = map[string]string{
	"spool/runs": `
uwsgi.spooler = (job) => {
  uwsgi.cache_update("job", job.task + " " + job.arg + " " + job.body);
  return uwsgi.SPOOL_OK;
};
uwsgi.register_rpc("t", () => show(typeof uwsgi.spool({task: "demo", arg: 42, body: "body!"})));`,
	"register_spooler/retry": `
uwsgi.register_spooler((job) => uwsgi.cache_inc("runs") == 1 ? uwsgi.SPOOL_RETRY : uwsgi.SPOOL_OK);
uwsgi.register_rpc("t", () => show(typeof uwsgi.send_to_spooler({task: "again"})));`,
	"register_spooler/bad_answer": `
uwsgi.register_spooler((job) => "done");
uwsgi.register_rpc("t", () => shows(uwsgi.SPOOL_IGNORE, typeof uwsgi.spool({task: "x"}) == "string"));`,
	"spooler_jobs/lists": `
uwsgi.register_rpc("t", () => {
  uwsgi.spool({task: "later", at: String(Math.floor(Date.now() / 1000) + 3600)});
  return shows(uwsgi.spooler_jobs().length, 0);
});`,
	"spool/no_spooler": `
uwsgi.register_rpc("t", () => shows(fails("no spooler", uwsgi.spool, {task: "x"}), fails("no spooler", uwsgi.spooler_jobs)));`,
	"spool/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.spool), argerr(uwsgi.spool, "x"), argerr(uwsgi.send_to_spooler, {k: [1]}),
  argerr(uwsgi.register_spooler, "notfn"), fails("no such spooler", uwsgi.spool, {spooler: "nosuch"})].join(";"));`,
}

var spoolerGo = map[string]string{
	"spool/runs": `
func init() {
	uwsgi.RegisterSpooler(func(job map[string]string) int {
		uwsgi.CacheUpdate("job", job["task"]+" "+job["arg"]+" "+job["body"])
		return int(uwsgi.SPOOLOK())
	})
	uwsgi.RegisterRpc("t", func() string {
		return show(typ(val(uwsgi.Spool(map[string]any{"task": "demo", "arg": 42, "body": "body!"}))))
	})
}`,
	"register_spooler/retry": `
func init() {
	uwsgi.RegisterSpooler(func(job map[string]string) int {
		if n, _ := uwsgi.CacheInc("runs"); n == int64(1) {
			return int(uwsgi.SPOOLRETRY())
		}
		return int(uwsgi.SPOOLOK())
	})
	uwsgi.RegisterRpc("t", func() string { return show(typ(val(uwsgi.SendToSpooler(map[string]string{"task": "again"})))) })
}`,
	"register_spooler/bad_answer": `
func init() {
	uwsgi.RegisterSpooler(func(job map[string]string) string { return "done" })
	uwsgi.RegisterRpc("t", func() string {
		return shows(uwsgi.SPOOLIGNORE(), typ(val(uwsgi.Spool(map[string]string{"task": "x"}))) == "string")
	})
}`,
	"spooler_jobs/lists": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.Spool(map[string]string{"task": "later", "at": fmt.Sprint(time.Now().Unix() + 3600)})
		jobs, _ := uwsgi.SpoolerJobs()
		return shows(len(jobs.([]any)), 0)
	})
}`,
	"spool/no_spooler": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(fails("no spooler")(uwsgi.Spool(map[string]string{"task": "x"})), fails("no spooler")(uwsgi.SpoolerJobs()))
	})
}`,
	"spool/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.Spool()), argerr(uwsgi.Spool("x")),
			argerr(uwsgi.SendToSpooler(map[string]any{"k": []int{1}})), argerr(uwsgi.RegisterSpooler("notfn")),
			fails("no such spooler")(uwsgi.Spool(map[string]string{"spooler": "nosuch"}))}, ";")
	})
}`,
}
