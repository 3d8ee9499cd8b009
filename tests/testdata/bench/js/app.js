// The /hello endpoint of the reference app.lua as a JSGI app, for the
// benchmark.
module.exports = (req) => {
  if (req.pathInfo === '/' || req.pathInfo === '/hello') {
    return { status: 200, headers: { 'Content-Type': 'text/plain', 'Content-Length': '11' }, body: ['Hello World'] };
  }
  return { status: 404, headers: { 'Content-Type': 'text/plain', 'Content-Length': '9' }, body: ['Not Found'] };
};
