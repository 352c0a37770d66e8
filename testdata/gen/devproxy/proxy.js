// A dev server's WebSocket proxy the way tutorials write it, for
// testdata/gen/node.sh:
//
//   node proxy.js MODE LISTEN-HOST LISTEN-PORT TARGET-URL
//
//   http-proxy          httpProxy.createProxyServer({target}) behind
//                       http.createServer((req, res) => proxy.web(req, res)):
//                       no 'upgrade' handler, so an Upgrade request is
//                       proxied as a plain request
//   http-proxy-upgrade  the same with server.on('upgrade', …proxy.ws(…)): right
//   hpm                 express + http-proxy-middleware createProxyMiddleware({
//                       target, ws: true }) without server.on('upgrade',
//                       proxy.upgrade): it subscribes to the server's
//                       upgrades only when a first plain request has gone
//                       through it
'use strict';
const http = require('http');

const [mode, host, port, target] = process.argv.slice(2);
let server;
if (mode === 'http-proxy' || mode === 'http-proxy-upgrade') {
  const httpProxy = require('http-proxy');
  const proxy = httpProxy.createProxyServer({ target });
  proxy.on('error', (err, req, res) => {
    console.error(`proxy error: ${err.message}`);
    if (res && res.writeHead && !res.headersSent) { res.writeHead(502); res.end('proxy error\n'); }
    else if (res && res.destroy) res.destroy();
  });
  server = http.createServer((req, res) => {
    console.error(`request ${req.method} ${req.url} upgrade=${req.headers.upgrade || ''}`);
    proxy.web(req, res);
  });
  if (mode === 'http-proxy-upgrade') {
    server.on('upgrade', (req, socket, head) => {
      console.error(`upgrade ${req.url}`);
      proxy.ws(req, socket, head);
    });
  }
} else if (mode === 'hpm') {
  const express = require('express');
  const { createProxyMiddleware } = require('http-proxy-middleware');
  const app = express();
  app.use((req, res, next) => { console.error(`request ${req.method} ${req.url} upgrade=${req.headers.upgrade || ''}`); next(); });
  app.use('/', createProxyMiddleware({ target, ws: true }));
  server = http.createServer(app);
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
server.listen(Number(port), host, () => console.error(`${mode} listening on ${host}:${port} → ${target}`));
