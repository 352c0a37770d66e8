// wsdiag report: turns the embedded data into the timeline, the list of
// attempts (a page at a time) and, on demand, each attempt's details.
// No framework, no network: everything is drawn here, as SVG and canvas.
(function () {
'use strict';

var errBox = document.getElementById('js-errors');
function showError(msg) { errBox.hidden = false; errBox.textContent += msg + '\n'; }
window.addEventListener('error', function (e) {
  showError('Uncaught ' + ((e.error && e.error.stack) || e.message));
});
window.addEventListener('unhandledrejection', function (e) {
  showError('Unhandled rejection: ' + ((e.reason && e.reason.stack) || e.reason));
});

// An attempt, a leg, a leg's times, a session and a connect attempt are
// arrays, and so is a code's entry in CODES; the index's layout names
// their fields in order (layout.go), and R, LG, LT, SS, CN and CF map
// those names to indices (see layoutOf). A leg's
// times in DELTAS are µs after the previous one given (see legTimes).
var R, LG, LT, SS, CN, CF, DELTAS;
// layoutOf turns the layout's lists of names into name → index maps.
function layoutOf(l) {
  var out = {};
  Object.keys(l).forEach(function (k) {
    var m = out[k] = {};
    l[k].forEach(function (name, i) { m[name] = i; });
  });
  return out;
}

// X is the index: one column per field of the list (indexColumns in
// layout.go). The details (details() in data.go) come after the first page
// is drawn: S and B at once, the attempts a chunk at a time when shown.
var X, N, S, B, CODES, chunks, gzChunks, parsed = [], pending = [], chunkN;
// chunk makes sure the details of attempt i are parsed (inflating their
// line first when compressed).
function chunk(i) {
  var c = Math.floor(i / chunkN);
  if (parsed[c]) return Promise.resolve();
  if (!pending[c]) {
    pending[c] = (gzChunks ? inflate(chunks[c]) : Promise.resolve(chunks[c])).then(function (t) { parsed[c] = JSON.parse(t); });
  }
  return pending[c];
}
function rec(i) { return parsed[Math.floor(i / chunkN)][i % chunkN]; }

// legTimes returns a leg's times in µs after the attempt's start.
function legTimes(l) {
  var T = l[LG.times].slice(), prev = 0;
  DELTAS.forEach(function (i) { if (T[i] != null) { T[i] += prev; prev = T[i]; } });
  return T;
}
// headers returns a leg's header lines (req: the request's).
function headers(r, l, req) {
  var h = B[l[req ? LG.requestHeaders : LG.responseHeaders]].map(function (i) {
    return i === -1 ? 'Sec-WebSocket-Key: ' + r[R.key] : i === -2 ? 'Sec-WebSocket-Accept: ' + r[R.accept] : S[i];
  });
  h.cut = !!(l[LG.cut] & (req ? 1 : 2));
  return h;
}
function legClient(r, l) { return l[LG.client] || r[R.client]; }
var readyResolve, detailsResolve;
window.wsdiag = {
  ready: new Promise(function (r) { readyResolve = r; }),
  details: new Promise(function (r) { detailsResolve = r; }),
  // settled resolves once every open attempt shown has its details drawn
  settled: function () { return fillDetails(); },
  loadMs: null
};

var PAGE = 100;
var st = { code: '', hop: '', path: '', client: '', from: null, to: null, page: 0, open: {} };
var view = []; // attempts (indices) that pass the filters

function esc(s) {
  return String(s).replace(/[&<>"']/g, function (c) {
    return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
  });
}
function color(code) { return (CODES[code] && CODES[code][CF.color]) || '#7f7f7f'; }
function badge(code, title) {
  var c = color(code);
  return '<span class="badge" style="background:' + c + (light(c) ? ';color:#1d2327' : '') + '"' +
    (title ? ' title="' + esc(title) + '"' : '') + '>' + esc(code) + '</span>';
}
// light tells whether dark text reads better than white on colour c.
function light(c) {
  var v = parseInt(c.slice(1), 16);
  return 0.299 * (v >> 16) + 0.587 * (v >> 8 & 255) + 0.114 * (v & 255) > 150;
}
function pad(n, w) { n = String(n); while (n.length < w) n = '0' + n; return n; }

// clock formats an absolute time in µs since the epoch as UTC, like the
// text output (digits: 3 for ms, 6 for µs).
function clock(us, digits) {
  var ms = Math.floor(us / 1000), d = new Date(ms);
  var s = pad(d.getUTCHours(), 2) + ':' + pad(d.getUTCMinutes(), 2) + ':' + pad(d.getUTCSeconds(), 2);
  if (digits === 0) return s;
  var frac = pad(((us % 1e6) + 1e6) % 1e6, 6);
  return s + '.' + frac.slice(0, digits || 3);
}
function dur(us) {
  if (us == null) return '';
  var a = Math.abs(us), s = us < 0 ? '−' : '';
  if (a < 1000) return s + Math.round(a) + ' µs';
  if (a < 1e6) return s + (a / 1000).toFixed(a < 1e4 ? 2 : 1) + ' ms';
  if (a < 120e6) return s + (a / 1e6).toFixed(2) + ' s';
  var m = Math.floor(a / 60e6);
  return s + m + 'm' + pad(Math.round((a - m * 60e6) / 1e6), 2) + 's';
}
function abs(r) { return X.t0 + r[R.time]; }
function endOf(i) { return X.time[i] + X.duration[i]; }
function codeOf(i) { return X.strings[X.code[i]]; }

// ---- loading ----

// load returns the index's text, inflated when it was compressed.
function load(id) {
  var text = document.getElementById(id).textContent;
  if (text.slice(0, 7) !== '{"gz":"') return Promise.resolve(text);
  return inflate(JSON.parse(text).gz);
}

// inflate decodes base64 gzipped text.
function inflate(b64) {
  if (typeof DecompressionStream === 'undefined') {
    return Promise.reject(new Error('this browser cannot inflate the report\'s compressed data (no DecompressionStream)'));
  }
  var bytes;
  if (Uint8Array.fromBase64) {
    bytes = Uint8Array.fromBase64(b64);
  } else {
    var bin = atob(b64);
    bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  }
  var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Response(stream).text();
}

// phases records how long each step of loading took (ms), for the load
// benchmark.
var phases = window.wsdiag.phases = {}, lastMark = performance.now();
function mark(name) { var t = performance.now(); phases[name] = Math.round(t - lastMark); lastMark = t; }

function start(text) {
  var index = JSON.parse(text);
  mark('index');
  X = index; N = index.count; CODES = index.codes;
  var lay = layoutOf(index.layout);
  R = lay.record; LG = lay.leg; LT = lay.legTimes; SS = lay.session; CN = lay.connect; CF = lay.code;
  DELTAS = index.layout.legDeltas.map(function (name) { return LT[name]; });
  el('n-attempts').textContent = N;
  setupFilters();
  setupTimeline();
  applyHash();
  mark('setup');
  refilter();
  mark('draw');
  window.wsdiag.loadMs = Math.round(performance.now());
  document.body.setAttribute('data-ready', '1');
  readyResolve({ loadMs: window.wsdiag.loadMs, attempts: N, phases: phases });
}

// loadDetails reads the details' first line (strings, header blocks)
// and keeps the other lines, a chunk of attempts each, for chunk().
function loadDetails() {
  var lines = document.getElementById('wsdiag-details').textContent.split('\n');
  gzChunks = lines[0] === 'gz';
  if (gzChunks) lines.shift();
  return (gzChunks ? inflate(lines[0]) : Promise.resolve(lines[0])).then(function (t) {
    var head = JSON.parse(t);
    S = head.strings; B = head.blocks; chunkN = head.chunk;
    chunks = lines.slice(1);
    mark('details');
    return fillDetails();
  }).then(function () {
    window.wsdiag.detailsMs = Math.round(performance.now());
    detailsResolve({ detailsMs: window.wsdiag.detailsMs });
  });
}

// fillDetails renders the details of the open attempts shown, as their
// chunks arrive.
function fillDetails() {
  if (!chunks) return Promise.resolve();
  var waits = [];
  document.querySelectorAll('#list .att.open').forEach(function (div) {
    var det = div.querySelector('.detail'), i = +div.getAttribute('data-i');
    if (!det || det.getAttribute('data-i') === String(i)) return;
    if (det.pending) { waits.push(det.pending); return; }
    waits.push(det.pending = chunk(i).then(function () {
      if (!st.open[i] || !det.isConnected) return;
      det.innerHTML = detailHTML(i);
      det.setAttribute('data-i', i);
    }));
  });
  return Promise.all(waits);
}

function el(id) { return document.getElementById(id); }

// ---- filters ----

function setupFilters() {
  var sel = el('f-code');
  var count = {};
  for (var i = 0; i < N; i++) count[X.code[i]] = (count[X.code[i]] || 0) + 1;
  Object.keys(count).sort(function (a, b) { return count[b] - count[a]; }).forEach(function (ci) {
    var o = document.createElement('option');
    o.value = X.strings[ci];
    o.textContent = X.strings[ci] + ' (' + count[ci] + ')';
    sel.appendChild(o);
  });
  sel.addEventListener('change', function () { st.code = sel.value; st.page = 0; refilter(); });
  var timer;
  ['f-path', 'f-client'].forEach(function (id) {
    el(id).addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        st.path = el('f-path').value.trim(); st.client = el('f-client').value.trim(); st.page = 0; refilter();
      }, 120);
    });
  });
  el('f-reset').addEventListener('click', function () {
    st.code = st.hop = st.path = st.client = ''; st.from = st.to = null; st.page = 0;
    el('f-path').value = el('f-client').value = ''; sel.value = '';
    refilter();
  });
  document.querySelectorAll('#by-code tbody tr').forEach(function (tr) {
    tr.addEventListener('click', function () {
      var c = tr.getAttribute('data-code');
      st.code = st.code === c ? '' : c; st.page = 0;
      sel.value = st.code;
      refilter();
      el('attempts-card').scrollIntoView({ behavior: 'smooth' });
    });
  });
  document.querySelectorAll('#by-hop tbody tr').forEach(function (tr) {
    tr.style.cursor = 'pointer';
    tr.addEventListener('click', function () {
      var h = tr.getAttribute('data-hop');
      st.hop = st.hop === h ? '' : h; st.page = 0; refilter();
    });
  });
}

function refilter() {
  var t0 = performance.now();
  var codeI = -1, hopI = -1, notOK = st.code === '!ok';
  var XS = X.strings;
  if (st.code && !notOK) codeI = XS.indexOf(st.code);
  if (st.hop) hopI = XS.indexOf(st.hop);
  var okI = XS.indexOf('ok');
  var path = st.path, client = st.client;
  var pathI = null;
  if (path) {
    pathI = {};
    for (var k = 0; k < XS.length; k++) if (XS[k].indexOf(path) >= 0) pathI[k] = true;
  }
  view = [];
  for (var i = 0; i < N; i++) {
    if (notOK ? X.code[i] === okI : st.code && X.code[i] !== codeI) continue;
    if (st.hop && X.hop[i] !== hopI) continue;
    if (pathI && !pathI[X.path[i]]) continue;
    if (client && X.client[i].indexOf(client) < 0) continue;
    if (st.from != null && (endOf(i) < st.from || X.time[i] > st.to)) continue;
    view.push(i);
  }
  var pages = Math.max(1, Math.ceil(view.length / PAGE));
  if (st.page >= pages) st.page = pages - 1;
  document.querySelectorAll('#by-code tbody tr').forEach(function (tr) {
    tr.classList.toggle('on', tr.getAttribute('data-code') === st.code);
  });
  el('f-range').textContent = st.from != null ? 'time ' + clock(X.t0 + st.from) + ' – ' + clock(X.t0 + st.to) : '';
  el('f-count').textContent = (view.length === N ? '' : view.length + ' of ') + N + (N === 1 ? ' attempt' : ' attempts');
  phases.filter = Math.round(performance.now() - t0);
  drawTimeline();
  phases.timeline = Math.round(performance.now() - t0) - phases.filter;
  renderPage();
}

// ---- list ----

function rowHTML(i) {
  var code = codeOf(i), hop = X.strings[X.hop[i]], path = X.strings[X.path[i]];
  var sb = X.statusBackend[i] || '-', sc = X.statusClient[i] || '-';
  return '<div class="att sev-' + esc(X.strings[X.severity[i]]) + (st.open[i] ? ' open' : '') + '" id="a' + i + '" data-i="' + i +
    '" data-code="' + esc(code) + '" data-hop="' + esc(hop) + '">' +
    '<div class="row"><span class="time">' + clock(X.t0 + X.time[i]) + '</span><span class="client">' + esc(X.client[i] || '-') +
    '</span><span class="path" title="' + esc(path) + '">' + esc(path) + '</span><span>' + badge(code) + '</span><span class="hop">' + esc(hop) + '</span><span class="st">' + sb + '→' + sc +
    '</span></div>' + (st.open[i] ? '<div class="detail">' + LOADING + '</div>' : '') + '</div>';
}

function renderPage() {
  var list = el('list');
  var from = st.page * PAGE, to = Math.min(view.length, from + PAGE);
  var h = ['<div class="list-head"><span>time (UTC)</span><span>client</span><span>path</span><span>code</span><span>hop</span><span>backend→client</span></div>'];
  for (var k = from; k < to; k++) h.push(rowHTML(view[k]));
  if (view.length === 0) h.push('<div class="empty">no attempt matches</div>');
  list.innerHTML = h.join('');
  fillDetails();
  var pages = Math.max(1, Math.ceil(view.length / PAGE));
  var pg = el('pager');
  if (pages <= 1) { pg.innerHTML = ''; return; }
  pg.innerHTML = '<button type="button" data-p="0">first</button><button type="button" data-p="' + (st.page - 1) + '">prev</button>' +
    '<span>page <input type="number" min="1" max="' + pages + '" value="' + (st.page + 1) + '"> of ' + pages + '</span>' +
    '<button type="button" data-p="' + (st.page + 1) + '">next</button><button type="button" data-p="' + (pages - 1) + '">last</button>' +
    '<span>attempts ' + (from + 1) + '–' + to + ' of ' + view.length + '</span>';
}

function goPage(p) {
  var pages = Math.max(1, Math.ceil(view.length / PAGE));
  st.page = Math.max(0, Math.min(pages - 1, p));
  renderPage();
  el('attempts-card').scrollIntoView();
}

el('pager').addEventListener('click', function (e) {
  var p = e.target.getAttribute && e.target.getAttribute('data-p');
  if (p != null) goPage(+p);
});
el('pager').addEventListener('change', function (e) {
  if (e.target.tagName === 'INPUT') goPage(e.target.value - 1);
});
el('list').addEventListener('click', function (e) {
  var t = e.target;
  if (t.closest('button[data-copy]')) { copyFix(t.closest('.fix')); return; }
  var row = t.closest('.row');
  if (!row) return;
  toggle(+row.parentNode.getAttribute('data-i'));
});

function toggle(i, on) {
  var div = el('a' + i);
  if (on === undefined) on = !st.open[i];
  if (on) st.open[i] = true; else delete st.open[i];
  if (!div) return;
  div.classList.toggle('open', on);
  var det = div.querySelector('.detail');
  if (on && !det) {
    det = document.createElement('div');
    det.className = 'detail';
    det.innerHTML = LOADING;
    div.appendChild(det);
    fillDetails();
  } else if (!on && det) {
    det.remove();
  }
}

function copyFix(box) {
  var text = box.querySelector('code').textContent, btn = box.querySelector('button');
  function done() { btn.textContent = 'copied'; setTimeout(function () { btn.textContent = 'copy'; }, 1500); }
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(text).then(done, function () { legacyCopy(text); done(); });
  } else { legacyCopy(text); done(); }
}
function legacyCopy(text) {
  var ta = document.createElement('textarea');
  ta.value = text; document.body.appendChild(ta); ta.select();
  try { document.execCommand('copy'); } catch (e) { /* nothing more to try */ }
  ta.remove();
}

// #a=N opens attempt N (its page too); #expand opens every attempt of
// the first page (for screenshots and tests).
function applyHash() {
  var h = location.hash.slice(1);
  var m = /^a=(\d+)$/.exec(h);
  if (m && +m[1] < N) st.open[+m[1]] = true;
  if (h === 'expand') {
    for (var i = 0; i < Math.min(N, PAGE); i++) st.open[i] = true;
  }
  st.jump = m ? +m[1] : null;
}
window.addEventListener('hashchange', function () {
  applyHash();
  if (st.jump != null) {
    var k = view.indexOf(st.jump);
    if (k >= 0) st.page = Math.floor(k / PAGE);
  }
  renderPage();
  if (st.jump != null && el('a' + st.jump)) el('a' + st.jump).scrollIntoView();
});

// ---- details ----

// laneNames names the ladder's lanes and says where the legs start.
function lanesOf(r) {
  var legs = r[R.legs], n = legs.length, lanes = [], first = 0;
  var conns = r[R.connects] || [];
  if (n === 0) return { lanes: lanes, first: 0 };
  var upstreamOnly = legs[0][LG.client] !== '';
  if (upstreamOnly) {
    // the client's leg is encrypted (its TLS connection is known) or not captured
    lanes.push({ name: r[R.client] ? 'client (TLS, no keys)' : 'client', addr: r[R.client] || 'leg not in the capture', ghost: true });
    first = 1;
    lanes.push({ name: 'proxy', addr: S[r[R.proxy]] || legClient(r, legs[0]), out: S[r[R.proxy]] ? legClient(r, legs[0]) : '' });
  } else {
    lanes.push({ name: 'client', addr: legClient(r, legs[0]) });
  }
  var hops = n + first; // lanes after the first
  for (var k = 0; k < n; k++) {
    var last = k === n - 1, name;
    if (!last) name = hops > 2 ? 'proxy' + (k + 1 + first) : 'proxy';
    else if (hops > 1) name = 'backend';
    else name = S[r[R.proxy]] || conns.length ? 'proxy' : 'server';
    lanes.push({ name: name, addr: S[legs[k][LG.server]], out: last ? '' : legClient(r, legs[k + 1]) });
  }
  if (n === 1 && conns.length) lanes.push({ name: 'backend', addr: S[conns[0][CN.server]] });
  return { lanes: lanes, first: first };
}

function statusColor(code) {
  if (code === 101) return '#2e9e44';
  if (code >= 400) return '#c62828';
  if (code >= 300) return '#e08e0b';
  return '#546e7a';
}
function closeLabel(code) { return code === 1005 ? 'close (no code)' : code ? 'close ' + code : 'close'; }
function statusOf(line) { var m = /^\S+\s+(\d{3})/.exec(line || ''); return m ? +m[1] : 0; }

// events lists the ladder's arrows in time order.
function eventsOf(r, lo) {
  var legs = r[R.legs], ev = [], seq = 0, times = legs.map(legTimes);
  function add(t, a, b, label, kind, col, extra) {
    if (t == null) return;
    var e = { t: t, a: a, b: b, label: label, kind: kind, col: col, seq: seq++ };
    if (extra) for (var k in extra) e[k] = extra[k];
    ev.push(e);
  }
  // ended draws a FIN (kind "" or "FIN") or an RST
  function ended(t, a, b, kind) {
    add(t, a, b, kind || 'FIN', kind === 'RST' ? 'rst' : 'fin', kind === 'RST' ? '#c62828' : '#546e7a', { dash: true });
  }
  legs.forEach(function (l, k) {
    var T = times[k], c = k + lo.first, s = c + 1, flags = T[LT.flags];
    var prev = k > 0 ? times[k - 1] : null;
    function relay(i) {
      // the delay the proxy added: this leg's event after the previous leg's
      if (!prev || T[i] == null || prev[i] == null || T[i] < prev[i]) return null;
      return T[i] - prev[i];
    }
    if (flags & 1) add(T[LT.open], c, s, flags & 2 ? 'SYN → SYN-ACK' : 'SYN (no SYN-ACK)', 'syn', '#546e7a');
    add(T[LT.request], c, s, S[l[LG.request]], 'request', '#1565c0', { delay: relay(LT.request) });
    add(T[LT.firstFrameC2S], c, s, 'first frame', 'frame', '#00897b', { delay: relay(LT.firstFrameC2S) });
    add(T[LT.closeFrameC2S], c, s, closeLabel(T[LT.closeCodeC2S]), 'close', '#6a1b9a', { delay: relay(LT.closeFrameC2S) });
    ended(T[LT.clientEnd], c, s, S[T[LT.clientEndKind]]);
    var next = k + 1 < legs.length ? times[k + 1] : null;
    function back(i) { return next && T[i] != null && next[i] != null && T[i] >= next[i] ? T[i] - next[i] : null; }
    add(T[LT.response], s, c, S[l[LG.status]], 'response', statusColor(statusOf(S[l[LG.status]])), { delay: back(LT.response) });
    add(T[LT.firstFrameS2C], s, c, 'first frame', 'frame', '#00897b', { delay: back(LT.firstFrameS2C) });
    add(T[LT.closeFrameS2C], s, c, closeLabel(T[LT.closeCodeS2C]), 'close', '#6a1b9a', { delay: back(LT.closeFrameS2C) });
    ended(T[LT.serverEnd], s, c, S[T[LT.serverEndKind]]);
  });
  if (legs.length === 1) {
    (r[R.connects] || []).forEach(function (c) {
      var p = lo.first + 1, b = p + 1, kind = S[c[CN.end]];
      add(c[CN.start], p, b, c[CN.synack] ? 'SYN → SYN-ACK' : 'SYN', 'syn', '#546e7a');
      if (kind) ended(c[CN.last], b, p, kind);
      else if (!c[CN.synack]) add(c[CN.last], b, p, 'no answer', 'noanswer', '#9e9e9e', { dash: true });
    });
  }
  ev.sort(function (x, y) { return x.t - y.t || x.seq - y.seq; });
  return ev;
}

function ladderSVG(r) {
  var lo = lanesOf(r), lanes = lo.lanes;
  if (lanes.length < 2) return '';
  var ev = eventsOf(r, lo);
  var laneW = lanes.length > 3 ? 210 : 270, left = 150, top = 72, rowH = 34, gapH = 30;
  var W = left + (lanes.length - 1) * laneW + 110;
  var x = function (i) { return left + i * laneW; };
  var rows = [], y = top + 14, t0 = ev.length ? ev[0].t : 0;
  ev.forEach(function (e, i) {
    if (i > 0 && e.t - ev[i - 1].t >= 1e6) {
      rows.push({ gap: e.t - ev[i - 1].t, y: y + 20 });
      y += gapH;
    }
    y += rowH;
    rows.push({ e: e, y: y });
  });
  var H = y + 26;
  var out = ['<svg width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + ' ' + H + '" role="img" aria-label="ladder diagram">'];
  lanes.forEach(function (l, i) {
    var cx = x(i);
    out.push('<line class="lane" x1="' + cx + '" y1="' + (top - 6) + '" x2="' + cx + '" y2="' + (H - 8) + '"' + (l.ghost ? ' stroke-dasharray="4 4"' : '') + '/>');
    out.push('<rect class="lanebox" x="' + (cx - 95) + '" y="4" width="190" height="' + (top - 12) + '" rx="6"' + (l.ghost ? ' stroke-dasharray="4 3"' : '') + '/>');
    out.push('<text class="lanename" x="' + cx + '" y="23" text-anchor="middle">' + esc(l.name) + '</text>');
    out.push('<text class="laneaddr" x="' + cx + '" y="' + (l.out ? 40 : 44) + '" text-anchor="middle">' + esc(trim(l.addr, 30)) + '<title>' + esc(l.addr) + '</title></text>');
    if (l.out) out.push('<text class="laneaddr" x="' + cx + '" y="54" text-anchor="middle">→ ' + esc(trim(l.out, 28)) + '<title>its upstream socket</title></text>');
  });
  out.push('<text class="t" x="8" y="' + (top + 4) + '">time</text>');
  rows.forEach(function (row) {
    if (row.gap != null) {
      out.push('<line class="gapline" x1="8" x2="' + (W - 8) + '" y1="' + row.y + '" y2="' + row.y + '"/>');
      out.push('<text class="gap" x="8" y="' + (row.y + 13) + '">… ' + esc(dur(row.gap)) + ' later</text>');
      return;
    }
    var e = row.e, xa = x(e.a), xb = x(e.b), dir = xb > xa ? 1 : -1, yy = row.y;
    var tip = clock(abs(r) + e.t, 6) + ' UTC · ' + e.label + (e.delay != null ? ' · the proxy relayed it ' + dur(e.delay) + ' later' : '');
    out.push('<g class="ev" data-ev="' + e.kind + '"><title>' + esc(tip) + '</title>');
    out.push('<text class="t" x="8" y="' + (yy + 4) + '">' + (e.t === t0 ? '0' : '+' + esc(dur(e.t - t0))) + '</text>');
    var x2 = xb - dir * 9;
    out.push('<line class="arrow" x1="' + xa + '" y1="' + yy + '" x2="' + x2 + '" y2="' + yy + '" stroke="' + e.col + '"' + (e.dash ? ' stroke-dasharray="5 3"' : '') + '/>');
    out.push('<path d="M' + xb + ' ' + yy + ' l' + (-dir * 10) + ' -4.5 v9 z" fill="' + e.col + '"/>');
    var span = Math.abs(xb - xa), maxChars = Math.floor((span - 16) / 6.9);
    out.push('<text class="lbl" x="' + ((xa + xb) / 2) + '" y="' + (yy - 6) + '" text-anchor="middle" fill="' + e.col + '">' + esc(trim(e.label, maxChars)) + '</text>');
    if (e.delay != null) {
      out.push('<text class="delay" x="' + (xa + dir * 6) + '" y="' + (yy + 13) + '" text-anchor="' + (dir > 0 ? 'start' : 'end') + '">+' + esc(dur(e.delay)) + ' in proxy</text>');
    }
    out.push('</g>');
  });
  if (r[R.legs][0][LG.times][LT.flags] & 4) out.push('<text class="gap" x="' + (x(0) + 8) + '" y="' + (H - 8) + '">open at the end of the capture</text>');
  out.push('</svg>');
  return out.join('');
}

function trim(s, n) { s = String(s); return n > 3 && s.length > n ? s.slice(0, n - 1) + '…' : s; }

// diff marks, per side, the header lines the other side dropped, changed
// or added (names compared case-insensitively, in order of occurrence).
function parseHeaders(lines) {
  var seen = {};
  return lines.map(function (s) {
    var c = s.indexOf(':', s.charAt(0) === ':' ? 1 : 0); // HTTP/2 pseudo-headers start with ':' 
    var name = c >= 0 ? s.slice(0, c) : s, key = name.toLowerCase();
    seen[key] = (seen[key] || 0) + 1;
    var value = c >= 0 ? s.slice(c + 1).trim() : '';
    // tokens compare case-insensitively (RFC 9110): "Upgrade" = "upgrade"
    if (key === 'connection' || key === 'upgrade') value = value.toLowerCase();
    return { text: s, key: key + '#' + seen[key], value: value };
  });
}

function diffHTML(titleL, firstL, linesL, titleR, firstR, linesR) {
  var l = parseHeaders(linesL), r = parseHeaders(linesR), byL = {}, byR = {};
  l.forEach(function (h) { byL[h.key] = h; });
  r.forEach(function (h) { byR[h.key] = h; });
  function side(title, first, other, hs, by, missingTag, missingCls, otherCut) {
    var h = ['<div class="col"><h4>' + esc(title) + '</h4><div class="lines">'];
    h.push('<div class="ln first' + (first !== other ? ' chg' : '') + '">' + esc(first || '(none)') + (first !== other ? '<span class="tag">changed</span>' : '') + '</div>');
    hs.forEach(function (x) {
      var o = by[x.key], cls = '', tag = '';
      // a pseudo-header (HTTP/2) missing on an HTTP/1 leg went into its request line
      // a line missing from a cut block may be in the part cut off: no mark
      if (!o && x.key.charAt(0) !== ':' && !otherCut) { cls = missingCls; tag = missingTag; } else if (o && o.value !== x.value) { cls = 'chg'; tag = 'changed'; }
      h.push('<div class="ln' + (cls ? ' ' + cls : '') + '"' + (cls ? ' data-mark="' + cls + '"' : '') + '>' + esc(x.text) + (tag ? '<span class="tag">' + tag + '</span>' : '') + '</div>');
    });
    if (hs.cut) h.push('<div class="ln cut">… cut here: the rest of the block is not in the capture</div>');
    h.push('</div></div>');
    return h.join('');
  }
  l.cut = linesL.cut; r.cut = linesR.cut;
  return '<div class="hdrdiff">' + side(titleL, firstL, firstR, l, byR, 'dropped', 'drop', linesR.cut) +
    side(titleR, firstR, firstL, r, byL, 'added', 'add', linesL.cut) + '</div>';
}

function sessionText(s) {
  var frames = s[SS.framesC2S] + ' frames (' + s[SS.bytesC2S] + ' bytes) client→server, ' + s[SS.framesS2C] + ' frames (' + s[SS.bytesS2C] +
    ' bytes) server→client, longest silence ' + dur(s[SS.longestSilence]);
  if (s[SS.open]) return 'open at the end of the capture after ' + dur(s[SS.duration]) + '; ' + frames;
  var how = 'closed by the ' + S[s[SS.closedBy]], code = s[SS.closeCode], reason = s[SS.closeReason];
  how += code ? ' with close ' + code + (reason ? ' "' + reason + '"' : '') : ' without a close frame';
  return dur(s[SS.duration]) + '; ' + frames + ', then ' + how + ' (' + S[s[SS.closeKind]] + ')';
}

var LOADING = '<div class="info">reading the details…</div>';

function detailHTML(i) {
  var r = rec(i), h = [], legs = r[R.legs];
  var info = ['severity <b>' + esc(S[r[R.severity]]) + '</b>'];
  if (S[r[R.proxy]]) info.push('proxy <b>' + esc(S[r[R.proxy]]) + '</b>' + (S[r[R.product]] ? ' (' + esc(S[r[R.product]]) + ')' : ''));
  if (S[r[R.backend]]) info.push('backend <b>' + esc(S[r[R.backend]]) + '</b>');
  info.push('pairing <b>' + esc(S[r[R.pairing]]) + '</b>');
  info.push('at ' + clock(abs(r), 6) + ' UTC');
  h.push('<div class="info">' + info.join(' · ') + '</div>');
  if (r[R.findings].length) {
    h.push('<div class="findings">' + r[R.findings].map(function (f) {
      var c = S[f];
      return badge(c, (CODES[c] || [])[CF.summary]);
    }).join('') + '</div>');
  }
  if (r[R.fix]) {
    h.push('<h3>Fix</h3><div class="fix"><button type="button" data-copy>copy</button><code>' + esc(S[r[R.fix]]) + '</code></div>');
  }
  // The line nginx writes for this code: what to look for in its log, not a line read from one
  // (those read with --error-log are in the evidence, as "error log: …").
  if (r[R.errorLog]) h.push('<h3>nginx would log</h3><div class="errlog mono">' + esc(S[r[R.errorLog]]) + '</div>');
  h.push('<h3>Evidence</h3><ul class="evidence">' + r[R.evidence].map(function (e) { return '<li>' + esc(S[e]) + '</li>'; }).join('') + '</ul>');
  if (r[R.session]) h.push('<h3>Session</h3><div class="session">' + esc(sessionText(r[R.session])) + '</div>');
  if (legs.length) {
    h.push('<h3>Ladder</h3><div class="ladder">' + ladderSVG(r) + '</div>');
    var lanes = lanesOf(r).lanes, f = lanesOf(r).first;
    var name = function (k) { return lanes[k + f].name + '→' + lanes[k + f + 1].name; };
    var rname = function (k) { return lanes[k + f + 1].name + '→' + lanes[k + f].name; };
    h.push('<h3>Headers</h3>');
    if (legs.length === 1) {
      var l = legs[0];
      h.push(diffHTML(name(0) + ' request', S[l[LG.request]], headers(r, l, true), rname(0) + ' response', S[l[LG.status]], headers(r, l, false))
        .replace(/ (chg|add|drop)"/g, '"').replace(/<span class="tag">[a-z]+<\/span>/g, '').replace(/ data-mark="[a-z]+"/g, ''));
    }
    for (var k = 0; k + 1 < legs.length; k++) {
      var a = legs[k], b = legs[k + 1];
      h.push(diffHTML(name(k) + ' (in)', S[a[LG.request]], headers(r, a, true), name(k + 1) + ' (out)', S[b[LG.request]], headers(r, b, true)));
      if (b[LG.status] || a[LG.status]) {
        h.push(diffHTML(rname(k + 1) + ' (in)', S[b[LG.status]], headers(r, b, false), rname(k) + ' (out)', S[a[LG.status]], headers(r, a, false)));
      }
    }
  }
  return h.join('');
}

// ---- timeline ----

var tl = { canvas: null, from: 0, to: 1, rows: [], drag: null };

function setupTimeline() {
  var c = el('tl-canvas');
  tl.canvas = c;
  window.addEventListener('resize', function () { drawTimeline(); });
  function tAt(ev) {
    var b = c.getBoundingClientRect();
    var f = (ev.clientX - b.left - tl.padL) / (b.width - tl.padL - tl.padR);
    return tl.from + Math.max(0, Math.min(1, f)) * (tl.to - tl.from);
  }
  c.addEventListener('mousedown', function (ev) { tl.drag = { x: ev.clientX, t: tAt(ev) }; });
  window.addEventListener('mouseup', function (ev) {
    if (!tl.drag) return;
    var d = tl.drag; tl.drag = null;
    if (Math.abs(ev.clientX - d.x) < 4) { clickAt(ev); return; }
    var t = tAt(ev);
    st.from = Math.min(d.t, t); st.to = Math.max(d.t, t); st.page = 0;
    refilter();
  });
  c.addEventListener('mousemove', function (ev) {
    var tip = el('tl-tip'), b = c.getBoundingClientRect(), hit = hitAt(ev);
    var text = clock(X.t0 + tAt(ev));
    if (hit != null) text += ' · ' + codeOf(hit) + ' · ' + X.strings[X.path[hit]] + ' · ' + X.client[hit];
    tip.textContent = text;
    tip.hidden = false;
    tip.style.left = Math.min(ev.clientX - b.left + 12, b.width - 260) + 'px';
    tip.style.top = (ev.clientY - b.top + 14) + 'px';
  });
  c.addEventListener('mouseleave', function () { el('tl-tip').hidden = true; });
  c.addEventListener('dblclick', function () { st.from = st.to = null; refilter(); });
}

// hitAt finds the attempt under the pointer when each has its own row.
function hitAt(ev) {
  if (!tl.rowH || tl.rowH < 3) return null;
  var b = tl.canvas.getBoundingClientRect(), y = ev.clientY - b.top - tl.padT, xx = ev.clientX - b.left;
  var k = Math.floor(y / tl.rowH);
  if (k < 0 || k >= tl.rows.length) return null;
  var i = tl.rows[k];
  var x1 = tl.x(X.time[i]), x2 = Math.max(tl.x(endOf(i)), x1 + 3);
  return xx >= x1 - 3 && xx <= x2 + 3 ? i : null;
}

function clickAt(ev) {
  var i = hitAt(ev);
  if (i == null) return;
  location.hash = 'a=' + i;
}

function drawTimeline() {
  var c = tl.canvas, dpr = window.devicePixelRatio || 1;
  var padL = 8, padR = 8, padT = 6, histH = 40, axisH = 20, gap = 8;
  // up to 18 px per attempt while they fit in 160 px, then shared rows
  var bodyH = view.length <= 24 ? Math.max(36, view.length * 16) : 200;
  var W = c.clientWidth || 800, H = padT + bodyH + gap + histH + axisH;
  c.width = Math.round(W * dpr); c.height = Math.round(H * dpr);
  c.style.height = H + 'px';
  var g = c.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, W, H);
  tl.padL = padL; tl.padR = padR; tl.padT = padT;
  // the time range: the filter's, else every attempt's
  var lo = Infinity, hi = -Infinity;
  if (st.from != null) { lo = st.from; hi = st.to; } else {
    for (var i = 0; i < N; i++) { if (X.time[i] < lo) lo = X.time[i]; var e0 = endOf(i); if (e0 > hi) hi = e0; }
  }
  if (!isFinite(lo)) { lo = 0; hi = 1; }
  if (hi - lo < 1000) { hi = lo + 1000; }
  var padT2 = (hi - lo) * 0.01;
  tl.from = lo - padT2; tl.to = hi + padT2;
  var span = tl.to - tl.from, plotW = W - padL - padR;
  var x = tl.x = function (t) { return padL + (t - tl.from) / span * plotW; };
  g.fillStyle = '#fbfcfd';
  g.fillRect(padL, padT, plotW, bodyH);
  // One row per attempt when they fit. Else each code gets a band of rows
  // (its height by its share, at least a few rows), in which its attempts
  // share rows in start order: a burst, a mass close or tunnels cut at
  // one age show as edges within a band, and no code hides another.
  var n = view.length, rowsN = Math.min(n, Math.floor(bodyH / 2)) || 1;
  var bands = null, bandList = [];
  if (n > rowsN) {
    var cnt = {};
    for (var q = 0; q < n; q++) cnt[X.code[view[q]]] = (cnt[X.code[view[q]]] || 0) + 1;
    var order = Object.keys(cnt).map(Number).sort(function (a, b) {
      return (X.strings[a] === 'ok' ? -1 : 0) - (X.strings[b] === 'ok' ? -1 : 0) || cnt[b] - cnt[a];
    });
    var minR = Math.max(1, Math.min(5, Math.floor(rowsN / order.length))), free = rowsN - minR * order.length, at = 0;
    bands = {};
    order.forEach(function (c) {
      var b = { c: c, start: at, rows: minR + Math.floor(free * cnt[c] / n), n: cnt[c], k: 0 };
      bands[c] = b; bandList.push(b); at += b.rows;
    });
  }
  var rowH = bodyH / rowsN;
  tl.rowH = n <= rowsN ? Math.min(rowH, 18) : 0;
  if (tl.rowH) rowH = tl.rowH;
  tl.rows = n <= rowsN ? view : [];
  var bar = Math.max(1, Math.min(rowH - (rowH > 4 ? 2 : 0.5), 12));
  // Bars of one code that touch in a row merge into one rectangle; ok is
  // drawn first, then notes, warnings and errors on top, so failures show.
  var runs = {}, rects = {};
  function flush(key, run) {
    (rects[run.c] || (rects[run.c] = [])).push(run.row, run.x1, run.x2);
    delete runs[key];
  }
  for (var k = 0; k < n; k++) {
    var i = view[k], c = X.code[i], row = k;
    if (bands) { var bd = bands[c]; row = bd.start + Math.floor(bd.k++ * bd.rows / bd.n); }
    var x1 = x(X.time[i]), x2 = Math.max(x(endOf(i)), x1 + 2), key = row * 64 + c;
    var run = runs[key];
    if (run && x1 <= run.x2 + 1) { if (x2 > run.x2) run.x2 = x2; continue; }
    if (run) flush(key, run);
    runs[key] = { row: row, c: c, x1: x1, x2: x2 };
  }
  Object.keys(runs).forEach(function (key) { flush(key, runs[key]); });
  var rank = { ok: 0, info: 1, warn: 2, error: 3 };
  Object.keys(rects).map(Number).sort(function (a, b) {
    return (rank[(CODES[X.strings[a]] || [])[CF.severity]] || 0) - (rank[(CODES[X.strings[b]] || [])[CF.severity]] || 0);
  }).forEach(function (c) {
    var rs = rects[c];
    g.fillStyle = color(X.strings[c]);
    for (var j = 0; j < rs.length; j += 3) g.fillRect(rs[j + 1], padT + rs[j] * rowH + (rowH - bar) / 2, rs[j + 2] - rs[j + 1], bar);
  });
  // the bands' names
  g.font = '11px system-ui, sans-serif';
  g.textBaseline = 'top';
  bandList.forEach(function (b, k) {
    var y0 = padT + b.start * rowH;
    if (k > 0) { g.fillStyle = '#c3cbd1'; g.fillRect(padL, y0 - 0.5, plotW, 1); }
    if (b.rows * rowH < 12) return;
    var label = X.strings[b.c] + ' · ' + b.n, lw = g.measureText(label).width;
    g.fillStyle = 'rgba(255,255,255,.85)';
    g.fillRect(padL + plotW - lw - 10, y0 + 1, lw + 8, 13);
    g.fillStyle = '#37474f';
    g.fillText(label, padL + plotW - lw - 6, y0 + 2);
  });
  // few attempts: name each bar
  if (tl.rowH >= 12) {
    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'middle';
    for (k = 0; k < n; k++) {
      var ia = view[k], xa = x(X.time[ia]), xe = Math.max(x(endOf(ia)), xa + 2), ym = padT + k * rowH + rowH / 2;
      var text = codeOf(ia) + '  ' + X.strings[X.path[ia]] + '  ' + X.client[ia], tw = g.measureText(text).width;
      g.fillStyle = '#37474f';
      if (xe + 6 + tw < padL + plotW) g.fillText(text, xe + 6, ym);
      else if (xa - 6 - tw > padL) g.fillText(text, xa - 6 - tw, ym);
      else if (xe - xa > tw + 12) { g.fillStyle = light(color(codeOf(ia))) ? '#1d2327' : '#fff'; g.fillText(text, xa + 6, ym); }
    }
  }
  // the histogram of starts, stacked by code
  var bins = Math.max(1, Math.floor(plotW / 4)), counts = {}, totals = new Float64Array(bins), maxT = 0;
  for (k = 0; k < n; k++) {
    var ir = view[k], b = Math.floor((X.time[ir] - tl.from) / span * bins);
    if (b < 0 || b >= bins) continue;
    var cc = counts[X.code[ir]] || (counts[X.code[ir]] = new Float64Array(bins));
    cc[b]++; totals[b]++;
    if (totals[b] > maxT) maxT = totals[b];
  }
  var hy = padT + bodyH + gap, base = new Float64Array(bins), bw = plotW / bins;
  g.fillStyle = '#f1f3f5';
  g.fillRect(padL, hy, plotW, histH);
  Object.keys(counts).forEach(function (ci) {
    var arr = counts[ci];
    g.fillStyle = color(X.strings[ci]);
    for (var b = 0; b < bins; b++) {
      if (!arr[b]) continue;
      var h = arr[b] / maxT * (histH - 2);
      g.fillRect(padL + b * bw, hy + histH - base[b] - h, Math.max(1, bw - 0.5), h);
      base[b] += h;
    }
  });
  g.fillStyle = '#5f6b73';
  g.font = '11px system-ui, sans-serif';
  g.textBaseline = 'top';
  var hl = 'attempts started: up to ' + maxT + ' per ' + dur(span / bins), hw = g.measureText(hl).width;
  g.fillStyle = 'rgba(255,255,255,.85)';
  g.fillRect(padL + plotW - hw - 10, hy + 1, hw + 8, 14);
  g.fillStyle = '#5f6b73';
  g.fillText(hl, padL + plotW - hw - 6, hy + 2);
  // the axis
  var ay = hy + histH + 4;
  var step = niceStep(span / Math.max(2, plotW / 110));
  var first = Math.ceil((X.t0 + tl.from) / step) * step;
  g.strokeStyle = '#c3cbd1';
  g.textBaseline = 'top';
  var digits = step < 1000 ? 6 : step < 1e6 ? 3 : 0;
  for (var t = first; t <= X.t0 + tl.to; t += step) {
    var xx = x(t - X.t0);
    g.beginPath(); g.moveTo(xx, padT); g.lineTo(xx, ay); g.globalAlpha = 0.35; g.stroke(); g.globalAlpha = 1;
    var label = clock(t, digits);
    var tw = g.measureText(label).width;
    if (xx - tw / 2 > 0 && xx + tw / 2 < W) g.fillText(label, xx - tw / 2, ay + 2);
  }
}

function niceStep(us) {
  var steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 15e6, 3e7, 6e7,
    12e7, 3e8, 6e8, 9e8, 18e8, 36e8, 72e8, 216e8, 432e8, 864e8];
  for (var i = 0; i < steps.length; i++) if (steps[i] >= us) return steps[i];
  return steps[steps.length - 1];
}

mark('script');
load('wsdiag-index').then(start).then(function () {
  // let the first page paint before the details are parsed
  return new Promise(function (r) { setTimeout(r, 0); });
}).then(function () { mark('paint'); return loadDetails(); }).catch(function (e) { showError('wsdiag report: ' + ((e && e.stack) || e)); });
})();
