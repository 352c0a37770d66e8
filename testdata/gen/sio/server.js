// A socket.io 4 server for testdata/gen/crossconn.sh: node server.js NAME PORT.
// Two of them behind a round-robin nginx upstream: the polling handshake
// lands on one, the upgrade on the other, which answers engine.io's
// 400 {"code":1,"message":"Session ID unknown"}.
const http = require("http");
const { Server } = require("socket.io");
const [name, port] = process.argv.slice(2);
const srv = http.createServer((req, res) => { res.writeHead(404); res.end(); });
const io = new Server(srv, { pingInterval: 25000, pingTimeout: 5000 });
io.engine.on("connection_error", (e) => {
  console.log(`${name}: connection_error ${e.code} ${e.message} ${e.req.url}`);
});
io.on("connection", (s) => {
  console.log(`${name}: connected ${s.id} via ${s.conn.transport.name}`);
  s.conn.on("upgrade", (t) => console.log(`${name}: ${s.id} upgraded to ${t.name}`));
  s.on("echo", (m, ack) => ack(m));
});
srv.listen(Number(port), "127.0.0.1", () => console.log(`${name}: listening on ${port}`));
