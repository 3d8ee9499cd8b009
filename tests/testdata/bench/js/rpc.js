// The RPC functions of the reference rpc.lua, in JavaScript, for the
// benchmark (hello, echo, big).
uwsgi.register_rpc('hello', () => 'Hello World');
uwsgi.register_rpc('echo', (...args) => args.join(' '));
let bigN = -1, bigS = '';
uwsgi.register_rpc('big', (n) => {
  const size = Math.max(0, Math.floor(Number(n) || 0));
  if (size !== bigN) { bigS = 'x'.repeat(size); bigN = size; }
  return bigS;
});
