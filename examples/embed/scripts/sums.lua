-- Lua beside the Go functions of main.go: uwsgi.call reaches them in the
-- same process, as it reaches other scripts' functions.
--
--   sum(a, b, ...)   the arguments added with Go's add
--   modifier1 6      a greeting from Lua with Go's hello in it

uwsgi.register_rpc("sum", function(...)
  local total = "0"
  for _, n in ipairs({...}) do
    total = uwsgi.call("add", total, n)
  end
  return total
end)

return function(env)
  return 200, {["Content-Type"] = "text/plain"}, "Lua here; Go says " .. uwsgi.call("hello") .. "\n"
end
