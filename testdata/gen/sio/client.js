// A socket.io 4 client for testdata/gen/crossconn.sh: node client.js URL N MS.
// N clients, each polling first and then upgrading (socket.io's default
// transports), no reconnection; the run ends after MS milliseconds.
const { io } = require("socket.io-client");
const [url, n, ms] = process.argv.slice(2);
for (let i = 1; i <= Number(n); i++) {
  const s = io(url, { reconnection: false, transports: ["polling", "websocket"], timeout: 3000,
    extraHeaders: { "User-Agent": `wsdiag-sioclient/1 (n=${i})` } });
  s.on("connect", () => console.log(`client ${i}: connected ${s.id} via ${s.io.engine.transport.name}`));
  s.io.engine?.on?.("upgrade", (t) => console.log(`client ${i}: upgraded to ${t.name}`));
  s.io.on("open", () => s.io.engine.on("upgrade", (t) => console.log(`client ${i}: upgraded to ${t.name}`)));
  s.io.on("open", () => s.io.engine.on("upgradeError", (e) => console.log(`client ${i}: upgrade error: ${e.message}`)));
  s.on("connect_error", (e) => console.log(`client ${i}: connect_error ${e.message}`));
  s.on("disconnect", (r) => console.log(`client ${i}: disconnect ${r}`));
}
setTimeout(() => process.exit(0), Number(ms));
