// A Node.js "ws" WebSocket server on a unix socket, for production.sh:
// echoes every message. ws's own HTTP server answers a request that is not
// an upgrade with 426 Upgrade Required (what a proxy that dropped the
// upgrade headers relays).
//
//   node server.js /path/app.sock     (ws from npm, installed beside it)
const fs = require('fs');
const { WebSocketServer } = require('ws');

const path = process.argv[2];
try { fs.unlinkSync(path); } catch (e) { /* not there */ }
const wss = new WebSocketServer({ port: path }, () => {
  fs.chmodSync(path, 0o666); // nginx's workers run as nobody
  console.error('ws ' + require('ws/package.json').version + ' listening on unix:' + path);
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
