// A Node.js ws backend (npm ws 8) for testdata/gen/node.sh: echoes every
// message; with "deflate" it agrees to permessage-deflate and compresses
// what it sends (perMessageDeflate, threshold 0).
//
//   node server.js HOST PORT [deflate]
'use strict';
const { WebSocketServer } = require('ws');
const [host, port, opt] = process.argv.slice(2);
const wss = new WebSocketServer({
  host, port: Number(port),
  perMessageDeflate: opt === 'deflate' ? { threshold: 0 } : false,
});
wss.on('connection', (ws, req) => {
  console.error(`connection ${req.url} extensions=${req.headers['sec-websocket-extensions'] || ''}`);
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', (err) => console.error(`ws error: ${err.message}`));
});
wss.on('listening', () => console.error(`ws backend listening on ${host}:${port}`));
