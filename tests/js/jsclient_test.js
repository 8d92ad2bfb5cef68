#!/usr/bin/env node
// Runs the genuine pomelo-jsclient-websocket@0.1.1 (browser code, run in
// Node with a small shim of the browser globals it expects) against a real
// `atoll run --game echo` server on 127.0.0.1, then against `--game quick`
// (players in an area: entry, area requests, pushes to the area and the player).
//
//   ATOLL_BIN=/path/to/atoll node jsclient_test.js
//   node jsclient_test.js /path/to/atoll
//
// The jsclient keeps one connection in module state, so every client runs in
// its own child process (this same file started with `--client NAME`) and
// talks to the test driver over the IPC channel. The child reports:
//   - every event the jsclient emits (pushes, onKick, disconnect, ...),
//   - every request callback,
//   - every package seen on the wire (a thin observer around the ws
//     WebSocket class: it looks at the bytes, it does not change them).
// Output: TAP-like lines, ending with exactly `N passed, M failed`.
// Set ATOLL_JS_VERBOSE=1 to see the jsclient's own console output and the
// server log on stderr.
'use strict';

const path = require('path');
const fs = require('fs');
const { spawn, fork } = require('child_process');

const VERBOSE = !!process.env.ATOLL_JS_VERBOSE;
const HOST = '127.0.0.1';
const STEP_MS = 5000; // every wait is bounded by this
const WHOLE_MS = 60000; // the whole run is bounded by this
const HEARTBEAT_S = 1;
const IDLE_MS = 3500;

// ---------------------------------------------------------------------------
// Child side: one genuine jsclient per process.
// ---------------------------------------------------------------------------

function runClient(name) {
  const say = (m) => {
    if (process.connected) {
      try {
        process.send(m);
      } catch (e) {
        /* parent gone */
      }
    }
  };
  const fmt = (a) => {
    if (typeof a === 'string') return a;
    try {
      return JSON.stringify(simplify(a));
    } catch (e) {
      return String(a);
    }
  };
  const log = (...args) => {
    if (VERBOSE) process.stderr.write('# [' + name + '] ' + args.map(fmt).join(' ') + '\n');
  };
  console.log = log;
  console.info = log;
  console.warn = log;
  console.error = log;
  process.on('disconnect', () => process.exit(1)); // driver went away
  // Like a browser: an exception thrown by the client (for example while
  // handling a message) is reported and the page (here: the process) goes on.
  const reportException = (e) => say({ ev: 'exception', message: String((e && e.stack) || e).split('\n').slice(0, 4).join('\n') });
  process.on('uncaughtException', reportException);

  // Shim, in this order (section 12): window first, then pomelo-protocol
  // (which then picks its Uint8Array mode and sets window.Protocol), then
  // the client itself.
  const storage = new Map();
  global.window = {
    EventEmitter: require('events'),
    localStorage: {
      getItem: (k) => (storage.has(k) ? storage.get(k) : null),
      setItem: (k, v) => storage.set(k, String(v)),
      removeItem: (k) => storage.delete(k),
    },
  };
  const WS = require('ws');

  const toBuf = (d) => {
    if (Buffer.isBuffer(d)) return d;
    if (d instanceof ArrayBuffer) return Buffer.from(d);
    if (ArrayBuffer.isView(d)) return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    if (Array.isArray(d)) return Buffer.concat(d.map(toBuf));
    return Buffer.from(String(d));
  };
  // Split a WebSocket message into Pomelo packages and report each one.
  const observe = (dir, data) => {
    const buf = toBuf(data);
    let off = 0;
    while (off < buf.length) {
      if (buf.length - off < 4) {
        say({ ev: 'wire', dir, bad: 'truncated header', hex: buf.subarray(off).toString('hex') });
        return;
      }
      const type = buf[off];
      const len = (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3];
      const body = buf.subarray(off + 4, off + 4 + len);
      const w = { ev: 'wire', dir, type, len, hex: buf.subarray(off, off + Math.min(4 + len, 96)).toString('hex') };
      if (body.length < len) w.bad = 'truncated body';
      if ((type === 1 || type === 5) && len > 0) {
        try {
          w.json = JSON.parse(body.toString('utf8'));
        } catch (e) {
          w.bad = 'body is not JSON: ' + e.message;
        }
      }
      if (type === 4 && len > 0) w.flag = body[0];
      say(w);
      off += 4 + len;
    }
  };
  class ObservedWebSocket extends WS {
    constructor(...args) {
      super(...args);
      // Registered before the jsclient's onmessage, so it sees each message first.
      this.on('message', (data) => observe('recv', data));
      this.on('open', () => say({ ev: 'ws-open' }));
      this.on('close', (code, reason) => say({ ev: 'ws-close', code, reason: String(reason) }));
    }
    send(data, ...rest) {
      observe('sent', data);
      return super.send(data, ...rest);
    }
  }
  // A browser reports an exception thrown by an event handler and keeps
  // dispatching; in ws it would unwind through the frame parser and stall the
  // socket. So the on* handlers the jsclient assigns are wrapped to catch and
  // report, which is what a browser does.
  for (const name of ['onopen', 'onmessage', 'onerror', 'onclose']) {
    const base = Object.getOwnPropertyDescriptor(WS.prototype, name);
    const slot = Symbol(name);
    Object.defineProperty(ObservedWebSocket.prototype, name, {
      configurable: true,
      enumerable: true,
      get() {
        return this[slot] || null;
      },
      set(fn) {
        this[slot] = fn;
        base.set.call(
          this,
          typeof fn !== 'function'
            ? fn
            : function (ev) {
                try {
                  return fn.call(this, ev);
                } catch (e) {
                  reportException(e);
                  return undefined;
                }
              }
        );
      },
    });
  }
  global.WebSocket = ObservedWebSocket;

  require('pomelo-protocol');
  const pomelo = require('pomelo-jsclient-websocket');

  // Report every event the client emits, unchanged otherwise.
  const origEmit = pomelo.emit;
  pomelo.emit = function (evName, ...args) {
    say({ ev: 'event', name: String(evName), data: simplify(args[0]) });
    return origEmit.call(this, evName, ...args);
  };
  pomelo.on('error', () => {}); // EventEmitter would throw on an unhandled 'error'
  pomelo.on('io-error', () => {});

  process.on('message', (m) => {
    switch (m.op) {
      case 'init':
        pomelo.init({ host: m.host, port: m.port, user: m.user }, () => say({ ev: 'init' }));
        break;
      case 'request':
        pomelo.request(m.route, m.msg, (body) => say({ ev: 'response', tag: m.tag, body: simplify(body) }));
        break;
      case 'notify':
        pomelo.notify(m.route, m.msg);
        break;
      case 'disconnect':
        pomelo.disconnect();
        say({ ev: 'disconnected-by-client' });
        break;
      case 'exit':
        process.exit(0);
        break;
      default:
        say({ ev: 'crash', message: 'unknown op ' + m.op });
    }
  });
  // Event-loop stall monitor: the jsclient drops the connection when the server is
  // silent for 2 x heartbeat (2 s), and the server drops a client silent for 6 s, so
  // a long stall here (an overloaded machine) can lose the connection. Report stalls
  // so such a failure can be told apart from a server bug.
  let tick = Date.now();
  setInterval(() => {
    const now = Date.now();
    const late = now - tick - 100;
    tick = now;
    if (late >= 300) say({ ev: 'stall', ms: late });
  }, 100).unref();
  say({ ev: 'ready' });
}

// Make event arguments (ws CloseEvent/ErrorEvent, plain bodies) cloneable.
function simplify(x) {
  if (x === undefined) return null;
  if (x === null || typeof x !== 'object') return x;
  if ('wasClean' in x && 'code' in x) return { close: true, code: x.code, reason: String(x.reason), wasClean: x.wasClean };
  if ('message' in x && ('error' in x || x instanceof Error)) return { error: String(x.message) };
  try {
    return JSON.parse(JSON.stringify(x));
  } catch (e) {
    return String(x);
  }
}

// ---------------------------------------------------------------------------
// Driver side.
// ---------------------------------------------------------------------------

let testNo = 0;
let passed = 0;
let failed = 0;
const out = (line) => process.stdout.write(line + '\n');
const diag = (text) => {
  for (const l of String(text).split('\n')) out('#   ' + l);
};

function ok(cond, desc, why) {
  testNo++;
  if (cond) {
    passed++;
    out(`ok ${testNo} - ${desc}`);
  } else {
    failed++;
    out(`not ok ${testNo} - ${desc}`);
    if (why) diag(why);
  }
  return !!cond;
}

// A group of steps. `needs` returns a reason when the group cannot run (for
// example a client it uses is not connected); after a failed step marked
// critical the rest of the group is not run either. Steps not run are
// reported as comments, not as tests: the failure that caused them is.
class Group {
  constructor(title, needs) {
    this.title = title;
    this.needs = needs || (() => null);
    this.broken = null;
    out('# ' + title);
  }
  async step(desc, fn, critical) {
    const why = this.broken || this.needs();
    if (why) {
      out(`# not run (${why}): ${desc}`);
      return undefined;
    }
    try {
      const r = await fn();
      ok(true, desc);
      return r;
    } catch (e) {
      ok(false, desc, (e && e.message) || String(e));
      if (critical) this.broken = 'earlier failure in "' + this.title + '"';
      return undefined;
    }
  }
}

// Reason why client c cannot be used, or null.
function unusable(...cs) {
  for (const c of cs) {
    if (!c.connected) return `client ${c.name} never connected`;
    const lost = c.lost(0);
    if (lost.length) return `client ${c.name} lost its connection`;
  }
  return null;
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

// The echo game's gate.entry answer: the uid, and the area of the connection's worker.
// A gate.entry answer carries a resume token ("1" and hex, then the uid) for
// gate.resume; checked here, then left out of the comparisons.
function withoutResume(body, what) {
  check(body && typeof body.resume === 'string' && /^1[0-9a-f]{64}/.test(body.resume),
        `${what}: no resume token in ${JSON.stringify(body)}`);
  const rest = Object.assign({}, body);
  delete rest.resume;
  return rest;
}

function entryOk(body, uid, what) {
  body = withoutResume(body, what);
  const area = body && body.area;
  check(typeof area === 'string' && /^echo-[0-9]+$/.test(area), `${what}: no echo area in ${JSON.stringify(body)}`);
  sameJson(body, { code: 200, uid, area }, what);
}

function sameJson(actual, expected, what) {
  const assert = require('assert');
  try {
    assert.deepStrictEqual(actual, expected);
  } catch (e) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Close connections from the client side (pomelo.disconnect) and let the
// close go out before the processes are ended.
async function disconnectAll(cs) {
  for (const c of cs) {
    try {
      if (!c.exited) c.send({ op: 'disconnect' });
    } catch (e) {
      /* the process is gone: reported where it matters */
    }
  }
  await sleep(50);
}

const clients = [];
const T0 = Date.now();

class Client {
  constructor(name) {
    this.name = name;
    this.events = [];
    this.waiters = [];
    this.tag = 0;
    this.exited = null;
    this.connected = false;
    this.proc = fork(__filename, ['--client', name], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: process.env,
    });
    this.proc.on('message', (m) => this.push(m));
    this.proc.on('exit', (code, signal) => {
      this.exited = { code, signal };
      this.push({ ev: 'exit', code, signal });
    });
    this.proc.on('error', (e) => this.push({ ev: 'crash', message: 'child process: ' + e.message }));
    clients.push(this);
  }

  push(m) {
    m.t = Date.now();
    this.events.push(m);
    for (const w of this.waiters.slice()) this.tryWaiter(w);
  }

  tryWaiter(w) {
    for (let i = w.from; i < this.events.length; i++) {
      const e = this.events[i];
      if (w.pred(e)) return this.settle(w, null, { e, index: i });
      if (e.ev === 'crash' || e.ev === 'exception' || e.ev === 'exit') {
        return this.settle(w, new Error(`${this.name}: client process ${e.ev} while waiting for ${w.what}: ${JSON.stringify(e)}`));
      }
    }
    return false;
  }

  settle(w, err, val) {
    const i = this.waiters.indexOf(w);
    if (i < 0) return true;
    this.waiters.splice(i, 1);
    clearTimeout(w.timer);
    if (err) w.reject(err);
    else w.resolve(val);
    return true;
  }

  // Resolves with {e, index} for the first event at or after `from` matching pred.
  waitFor(pred, what, from = 0, ms = STEP_MS) {
    return new Promise((resolve, reject) => {
      const w = { pred, what, from, resolve, reject };
      w.timer = setTimeout(() => {
        this.settle(w, new Error(`${this.name}: timed out after ${ms} ms waiting for ${what}\n` + this.recent(from)));
      }, ms);
      this.waiters.push(w);
      this.tryWaiter(w);
    });
  }

  // The events from index `from` on (at most `max`), times relative to the start.
  recent(from = 0, max = 20) {
    const start = Math.max(0, from);
    const evs = this.events.slice(start, start + max);
    return `${this.name} events from #${start}:\n` + evs.map((e) => `  +${e.t - T0} ms ` + JSON.stringify(Object.assign({}, e, { t: undefined }))).join('\n');
  }

  mark() {
    return this.events.length;
  }

  send(m) {
    if (this.exited || !this.proc.connected) throw new Error(`${this.name}: client process is gone`);
    this.proc.send(m);
  }

  async start() {
    await this.waitFor((e) => e.ev === 'ready', 'the client process to load the jsclient');
  }

  async init(port, user) {
    const from = this.mark();
    this.send({ op: 'init', host: HOST, port, user });
    await this.waitFor((e) => e.ev === 'init' || (e.ev === 'event' && /^(error|disconnect)$/.test(e.name)), 'the init callback (handshake)', from).then(
      ({ e }) => check(e.ev === 'init', `${this.name}: init failed: ${JSON.stringify(e)}\n` + this.recent(from))
    );
    this.connected = true;
    return from;
  }

  async request(route, msg) {
    const tag = ++this.tag;
    const from = this.mark();
    this.send({ op: 'request', tag, route, msg });
    const { e, index } = await this.waitFor((x) => x.ev === 'response' && x.tag === tag, `the response to ${route}`, from);
    return { body: e.body, index, from };
  }

  notify(route, msg) {
    this.send({ op: 'notify', route, msg });
  }

  event(name, from, what) {
    return this.waitFor((e) => e.ev === 'event' && e.name === name, what || `event "${name}"`, from);
  }

  // Events that mean the connection is gone.
  lost(from = 0) {
    return this.events.slice(from).filter((e) => (e.ev === 'event' && /^(disconnect|close|heartbeat timeout|io-error)$/.test(e.name)) || e.ev === 'exit' || e.ev === 'crash');
  }

  // A note naming the event-loop stalls of this client since `from`, or ''.
  stallNote(from = 0) {
    const stalls = this.events.slice(from).filter((e) => e.ev === 'stall').map((e) => e.ms);
    if (!stalls.length) return '';
    return `\nnote: ${this.name}'s event loop stalled (${stalls.join(', ')} ms): the machine may be overloaded; with a 1 s heartbeat a stall of a few seconds loses the connection`;
  }

  // Throws unless the connection is still up; names any event-loop stall.
  checkKept() {
    check(this.connected, `${this.name} never connected`);
    const lost = this.lost(0);
    if (lost.length === 0) return;
    throw new Error(`${this.name} lost its connection: ${JSON.stringify(lost)}${this.stallNote()}\n` + this.recent(this.events.indexOf(lost[0]) - 12, 16));
  }

  wire(from, pred) {
    return this.events.slice(from).filter((e) => e.ev === 'wire' && pred(e));
  }

  async close() {
    if (this.exited) return;
    try {
      this.proc.send({ op: 'exit' });
    } catch (e) {
      /* ignore */
    }
    const t0 = Date.now();
    while (!this.exited && Date.now() - t0 < 2000) await sleep(20);
    if (!this.exited) this.proc.kill('SIGKILL');
  }
}

// --- server -----------------------------------------------------------------

const serverLog = [];
let server = null;

function startServer(bin, game = 'echo') {
  return new Promise((resolve, reject) => {
    // A 1 s heartbeat makes the client heartbeat often enough to count within the idle
    // step; the 6 s timeout (instead of 2 x 1 s) keeps a client that a loaded CI machine
    // freezes for a second from being dropped. The counts, not the timeout, prove that
    // heartbeats flow both ways.
    const args = ['run', '--game', game, '--store', 'memory', '--listen', HOST + ':0', '--workers', '2', '--set', 'net.heartbeat=' + HEARTBEAT_S, '--set', 'net.heartbeat_timeout=6'];
    // Extra server options for debugging, e.g. ATOLL_JS_SERVER_ARGS="--log-level debug".
    if (process.env.ATOLL_JS_SERVER_ARGS) args.push(...process.env.ATOLL_JS_SERVER_ARGS.split(/\s+/).filter(Boolean));
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    server = { proc, exited: null, stdout: '' };
    let done = false;
    const finish = (err, port) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(port);
    };
    const timer = setTimeout(() => finish(new Error('no "listening" line within ' + STEP_MS + ' ms')), STEP_MS);
    let errPartial = '';
    proc.stderr.on('data', (d) => {
      errPartial += d.toString('utf8');
      const lines = errPartial.split('\n');
      errPartial = lines.pop();
      for (const l of lines) {
        serverLog.push(l);
        if (serverLog.length > 300) serverLog.shift();
        if (VERBOSE) process.stderr.write('# server: ' + l + '\n');
      }
    });
    proc.stdout.on('data', (d) => {
      server.stdout += d.toString('utf8');
      const m = /^listening 127\.0\.0\.1:(\d+)\n/.exec(server.stdout);
      if (m) finish(null, Number(m[1]));
      else if (server.stdout.includes('\n')) finish(new Error('unexpected first stdout line: ' + JSON.stringify(server.stdout)));
    });
    proc.on('error', (e) => finish(new Error(`cannot start ${bin}: ${e.message}`)));
    proc.on('exit', (code, signal) => {
      server.exited = { code, signal };
      finish(new Error(`server exited before listening (code ${code}, signal ${signal})`));
    });
  });
}

async function stopServer() {
  if (!server || server.exited) return server && server.exited;
  server.proc.kill('SIGTERM');
  const t0 = Date.now();
  while (!server.exited && Date.now() - t0 < 10000) await sleep(20);
  if (!server.exited) {
    server.proc.kill('SIGKILL');
    while (!server.exited) await sleep(20);
    return { code: null, signal: 'SIGKILL', hung: true };
  }
  return server.exited;
}

function dumpServerLog() {
  if (!serverLog.length) return;
  out('# last server log lines:');
  for (const l of serverLog.slice(-40)) out('#   ' + l);
}

// --- the test ---------------------------------------------------------------

let finished = false;

async function finish(code) {
  if (finished) return;
  finished = true;
  await Promise.all(clients.map((c) => c.close()));
  if (server && !server.exited) {
    server.proc.kill('SIGKILL');
  }
  out(`1..${testNo}`);
  out(`${passed} passed, ${failed} failed`);
  process.exit(code !== undefined ? code : failed ? 1 : 0);
}

let driverStall = 0;

async function main() {
  let tick = Date.now();
  setInterval(() => {
    const now = Date.now();
    driverStall = Math.max(driverStall, now - tick - 100);
    tick = now;
  }, 100).unref();
  // Whatever happens to this process, the server and the client processes it
  // started must not outlive it.
  process.stdout.on('error', () => {}); // e.g. EPIPE when piped into `head`
  process.on('exit', () => {
    if (server && !server.exited) server.proc.kill('SIGKILL');
    for (const c of clients) if (!c.exited) c.proc.kill('SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      out(`# interrupted by ${sig}`);
      process.exit(1);
    });
  }
  const watchdog = setTimeout(() => {
    ok(false, `whole test finished within ${WHOLE_MS / 1000} s`, 'watchdog fired; stopping everything');
    dumpServerLog();
    finish(1);
  }, WHOLE_MS);

  let bin = process.argv[2] || process.env.ATOLL_BIN;
  if (!bin) {
    ok(false, 'atoll binary given', 'set ATOLL_BIN or pass the path as the first argument');
    return finish(1);
  }
  bin = path.resolve(bin);
  out(`# atoll binary: ${bin}`);
  out(`# node ${process.version}, pomelo-jsclient-websocket ${pkgVersion('pomelo-jsclient-websocket')}, pomelo-protocol ${pkgVersion('pomelo-protocol')}, ws ${pkgVersion('ws')}`);

  // Every client process is started (and has loaded the jsclient) before any
  // connection exists, so no process start-up competes with heartbeats later.
  const [A, B, K, D, E, Q, R, S] = ['A', 'B', 'K', 'D', 'E', 'Q', 'R', 'S'].map((n) => new Client(n));
  let port = 0;
  const g0 = new Group('server');
  await g0.step(`server starts (atoll run --game echo --listen ${HOST}:0 --workers 2 --set net.heartbeat=${HEARTBEAT_S}) and prints "listening ${HOST}:PORT"`, async () => {
    check(fs.existsSync(bin), `${bin} does not exist`);
    port = await startServer(bin);
    check(port > 0 && port < 65536, 'bad port ' + port);
    out(`# server listening on ${HOST}:${port}`);
  });
  await g0.step('client processes load the shimmed pomelo-jsclient-websocket', async () => {
    await Promise.all(clients.map((c) => c.start()));
  });
  if (!port) {
    dumpServerLog();
    return finish(1);
  }

  // ---- client A: handshake, heartbeat, request, errors, gate, push ----
  let gA = new Group('client A: connect');
  let dict = null;
  await gA.step('jsclient init: handshake and ack complete (init callback fires)', async () => {
    const from = await A.init(port);
    const hs = A.wire(from, (e) => e.dir === 'recv' && e.type === 1);
    check(hs.length === 1, 'expected one handshake reply package, got ' + hs.length);
    const sent = A.wire(from, (e) => e.dir === 'sent');
    check(sent.length >= 2 && sent[0].type === 1 && sent[1].type === 2, 'client did not send handshake then ack: ' + JSON.stringify(sent.map((e) => e.type)));
  }, true);
  gA = new Group('client A: handshake, heartbeats, requests, push', () => unusable(A));
  await gA.step(`handshake reply: code 200, sys.heartbeat ${HEARTBEAT_S}, route dictionary with useDict`, async () => {
    const hs = A.wire(0, (e) => e.dir === 'recv' && e.type === 1)[0];
    check(hs && hs.json, 'handshake reply body is not JSON: ' + JSON.stringify(hs));
    const r = hs.json;
    check(r.code === 200, 'code is ' + JSON.stringify(r.code));
    check(r.sys && r.sys.heartbeat === HEARTBEAT_S, 'sys.heartbeat is ' + JSON.stringify(r.sys && r.sys.heartbeat));
    check(r.sys.useDict === true, 'sys.useDict is not true');
    dict = r.sys.dict;
    check(dict && typeof dict === 'object', 'sys.dict missing');
    for (const route of ['echo.echo', 'echo.push', 'echo.broadcast', 'echo.kick', 'gate.entry', 'onPush', 'onChat']) {
      check(Number.isInteger(dict[route]) && dict[route] > 0, `sys.dict has no code for ${route}: ${JSON.stringify(dict)}`);
    }
    sameJson(r.sys.routeToCode, dict, 'sys.routeToCode');
    for (const [route, code] of Object.entries(dict)) {
      check(r.sys.codeToRoute && r.sys.codeToRoute[String(code)] === route, `sys.codeToRoute[${code}] is not ${route}`);
    }
    check(typeof r.sys.dictVersion === 'string' && r.sys.dictVersion.length > 0, 'sys.dictVersion missing');
  });
  await gA.step('server sends a heartbeat right after the ack (its first package after the handshake reply)', async () => {
    await A.waitFor((e) => e.ev === 'wire' && e.dir === 'recv' && e.type === 3, 'the first server heartbeat');
    const recv = A.wire(0, (e) => e.dir === 'recv');
    check(recv.length >= 2 && recv[0].type === 1 && recv[1].type === 3, 'packages received: ' + JSON.stringify(recv.map((e) => e.hex)));
  });
  await gA.step(`connection stays up over ${IDLE_MS / 1000} s with no data traffic (jsclient heartbeats every ${HEARTBEAT_S} s)`, async () => {
    const from = A.mark();
    const t0 = Date.now();
    await sleep(IDLE_MS);
    A.checkKept();
    const hbSent = A.wire(from, (e) => e.dir === 'sent' && e.type === 3).length;
    const hbRecv = A.wire(from, (e) => e.dir === 'recv' && e.type === 3).length;
    const data = A.wire(from, (e) => e.type === 4).length;
    out(`#   in ${Date.now() - t0} ms idle: client sent ${hbSent} heartbeats, server sent ${hbRecv}, data packages ${data}`);
    check(data === 0, 'unexpected data traffic while idle');
    check(hbSent >= 2, `client sent only ${hbSent} heartbeats in ${IDLE_MS} ms (server does not answer them?)` + A.stallNote(from));
    check(hbRecv >= 2, `server answered only ${hbRecv} heartbeats` + A.stallNote(from));
  });
  const echoMsg = { msg: 'hi', n: [1, 2, 3], u: '你好' };
  await gA.step('request echo.echo ' + JSON.stringify(echoMsg) + ' returns the same object', async () => {
    const { body, from } = await A.request('echo.echo', echoMsg);
    sameJson(body, echoMsg, 'echo.echo response');
    const req = A.wire(from, (e) => e.dir === 'sent' && e.type === 4)[0];
    check(req && req.flag === 0x01, 'the jsclient did not send a request with a compressed route (flag 01): ' + JSON.stringify(req));
  });
  await gA.step('request to unknown route echo.nosuch returns code 500 with a message', async () => {
    const { body } = await A.request('echo.nosuch', { x: 1 });
    check(body && body.code === 500, 'response is ' + JSON.stringify(body));
    check(typeof body.message === 'string' && body.message.length > 0, 'no "message" in ' + JSON.stringify(body));
  });
  await gA.step('request gate.entry {"uid":"alice"} returns {"code":200,"uid":"alice","area":"echo-N"}', async () => {
    const { body } = await A.request('gate.entry', { uid: 'alice' });
    entryOk(body, 'alice', 'gate.entry response');
  });
  const pushMsg = { text: 'pushed', k: [true, null, 1.5], u: 'ünï' };
  await gA.step('notify echo.push delivers the body back as push "onPush" (compressed route)', async () => {
    const from = A.mark();
    A.notify('echo.push', pushMsg);
    const { e, index } = await A.event('onPush', from);
    sameJson(e.data, pushMsg, 'onPush body');
    const sent = A.wire(from, (x) => x.dir === 'sent' && x.type === 4)[0];
    check(sent && sent.flag === 0x03, 'the notify was not sent as flag 03 (notify, compressed): ' + JSON.stringify(sent));
    const pushes = A.wire(from, (x) => x.dir === 'recv' && x.type === 4 && x.flag === 0x07);
    check(pushes.length >= 1 && A.events.indexOf(pushes[0]) < index, 'the push did not arrive as flag 07 with route code: ' + A.recent(from));
  });
  await gA.step('request echo.push answers {"code":200} and pushes "onPush"', async () => {
    const from = A.mark();
    const body2 = { again: 2 };
    const [resp, push] = await Promise.all([A.request('echo.push', body2), A.event('onPush', from)]);
    sameJson(resp.body, { code: 200 }, 'echo.push response');
    sameJson(push.e.data, body2, 'onPush body');
  });

  // ---- broadcast: A and B ----
  const gB = new Group('broadcast between clients A and B', () => unusable(A));
  await gB.step('client B connects', async () => {
    await B.init(port);
  }, true);
  const chat = { from: 'alice', text: 'hello everyone', seq: 1 };
  await gB.step('notify echo.broadcast from A reaches A and B as "onChat"', async () => {
    const fa = A.mark();
    const fb = B.mark();
    A.notify('echo.broadcast', chat);
    const [ea, eb] = await Promise.all([A.event('onChat', fa, 'onChat on A'), B.event('onChat', fb, 'onChat on B')]);
    sameJson(ea.e.data, chat, 'onChat body on A');
    sameJson(eb.e.data, chat, 'onChat body on B');
  });
  await gB.step('request echo.broadcast from B answers {"code":200} and reaches A and B', async () => {
    const fa = A.mark();
    const fb = B.mark();
    const chat2 = { from: 'bob', text: 'hi alice', seq: 2 };
    const [resp, ea, eb] = await Promise.all([B.request('echo.broadcast', chat2), A.event('onChat', fa, 'onChat on A'), B.event('onChat', fb, 'onChat on B')]);
    sameJson(resp.body, { code: 200 }, 'echo.broadcast response');
    sameJson(ea.e.data, chat2, 'onChat body on A');
    sameJson(eb.e.data, chat2, 'onChat body on B');
  });

  await gB.step('clients A and B kept their connections throughout (heartbeats)', async () => {
    A.checkKept();
    B.checkKept();
    for (const c of [A, B]) {
      const { body } = await c.request('echo.echo', { last: c.name });
      sameJson(body, { last: c.name }, `final echo.echo on ${c.name}`);
    }
  });
  // Done with A and B: close them now, so that only the clients a step needs
  // are connected (fewer heartbeats at stake on a busy machine).
  await disconnectAll([A, B]);

  // ---- kick ----
  const gK = new Group('echo.kick');
  await gK.step('request echo.kick: response {"code":200}, then onKick {"reason":"kick"}, then disconnect', async () => {
    await K.init(port);
    const { body, index: ri, from } = await K.request('echo.kick', {});
    sameJson(body, { code: 200 }, 'echo.kick response');
    const { e: kick, index: ki } = await K.event('onKick', from);
    sameJson(kick.data, { reason: 'kick' }, 'onKick body');
    const { e: disc, index: di } = await K.event('disconnect', from);
    check(ri < ki && ki < di, `wrong order: response #${ri}, onKick #${ki}, disconnect #${di}`);
    out(`#   close event: ${JSON.stringify(disc.data)}`);
    const kpk = K.wire(from, (e) => e.dir === 'recv' && e.type === 5)[0];
    check(kpk && kpk.hex === '05000011' + Buffer.from('{"reason":"kick"}').toString('hex'), 'kick package bytes: ' + JSON.stringify(kpk));
  });

  // ---- duplicate login ----
  const gD = new Group('duplicate login');
  let fromD = 0;
  await gD.step('clients D and E connect', async () => {
    await Promise.all([D.init(port), E.init(port)]);
  }, true);
  await gD.step('client D enters as "dup"', async () => {
    const { body } = await D.request('gate.entry', { uid: 'dup' });
    entryOk(body, 'dup', 'gate.entry response');
  });
  // Even if D's response was broken, the server may have bound the uid: go on.
  fromD = D.mark();
  let entryE = null;
  await gD.step('client E enters as "dup": D gets onKick {"reason":"duplicate login"}, then disconnect', async () => {
    entryE = E.request('gate.entry', { uid: 'dup' });
    entryE.catch(() => {}); // judged in the next step
    const kick = await D.event('onKick', fromD);
    sameJson(kick.e.data, { reason: 'duplicate login' }, 'onKick body on D');
    const disc = await D.event('disconnect', fromD);
    check(kick.index < disc.index, 'disconnect came before onKick');
  });
  await gD.step('client E gets {"code":200,"uid":"dup",...} and keeps its connection', async () => {
    check(entryE, 'E did not send gate.entry');
    const resp = await entryE;
    entryOk(resp.body, 'dup', 'gate.entry response on E');
    E.checkKept();
  });
  await gD.step('client E still works after taking over the uid', async () => {
    const { body } = await E.request('echo.echo', { still: 'here' });
    sameJson(body, { still: 'here' }, 'echo.echo response on E');
    E.checkKept();
  });
  await disconnectAll([D, E]);

  // ---- everyone who should be alive still is ----
  const gZ = new Group('end of run');
  await gZ.step('no client saw a malformed package or threw while handling server data', async () => {
    const problems = [];
    for (const c of clients) {
      for (const e of c.events) {
        if ((e.ev === 'wire' && e.bad) || e.ev === 'crash' || e.ev === 'exception') problems.push(`${c.name}: ${JSON.stringify(e)}`);
      }
    }
    check(problems.length === 0, problems.join('\n'));
  });

  const worst = clients.map((c) => [c.name, Math.max(0, ...c.events.filter((e) => e.ev === 'stall').map((e) => e.ms))]);
  worst.push(['driver', driverStall]);
  const stalls = worst.filter(([, ms]) => ms >= 300);
  if (stalls.length) out('# event-loop stalls seen (ms): ' + stalls.map(([n, ms]) => `${n} ${ms}`).join(', '));
  await Promise.all(clients.filter((c) => c !== Q && c !== R && c !== S).map((c) => c.close()));

  await new Group('shutdown').step('server stops on SIGTERM with exit code 0', async () => {
    const r = await stopServer();
    check(r && r.code === 0 && !r.signal, 'server exit: ' + JSON.stringify(r));
  });

  // ---- the quick game: areas, through the same genuine client ----
  let qport = 0;
  const gQ = new Group('quick game (areas)');
  await gQ.step('a second server starts with --game quick; clients Q and R connect', async () => {
    qport = await startServer(bin, 'quick');
    await Promise.all([Q.init(qport), R.init(qport)]);
  }, true);
  if (qport) {
    await gQ.step('the route dictionary has the area routes and the pushes of the game', async () => {
      const hs = Q.wire(0, (e) => e.dir === 'recv' && e.type === 1)[0];
      const d = hs && hs.json && hs.json.sys && hs.json.sys.dict;
      for (const route of ['gate.entry', 'area.levelup', 'area.info', 'levelup', 'money']) {
        check(d && Number.isInteger(d[route]) && d[route] > 0, `sys.dict has no code for ${route}: ${JSON.stringify(d)}`);
      }
    });
    let qaToken = null;
    await gQ.step('gate.entry puts both players in area-1', async () => {
      const qe = (await Q.request('gate.entry', { uid: 'qa' })).body;
      qaToken = qe && qe.resume;
      sameJson(withoutResume(qe, 'Q gate.entry'), { code: 200, uid: 'qa', area: 'area-1' }, 'Q gate.entry');
      sameJson(withoutResume((await R.request('gate.entry', { uid: 'qb' })).body, 'R gate.entry'), { code: 200, uid: 'qb', area: 'area-1' }, 'R gate.entry');
    });
    await gQ.step('area.levelup answers {code:200,level:1,money:10}; "levelup" reaches both players, "money" the sender', async () => {
      const fromQ = Q.mark();
      const fromR = R.mark();
      const { body, from } = await Q.request('area.levelup', {});
      sameJson(body, { code: 200, level: 1, money: 10 }, 'area.levelup response');
      const req = Q.wire(from, (e) => e.dir === 'sent' && e.type === 4)[0];
      check(req && req.flag === 0x01, 'area.levelup was not sent with a compressed route: ' + JSON.stringify(req));
      sameJson((await Q.event('levelup', fromQ)).e.data, { playerId: 'qa' }, 'levelup push on Q');
      sameJson((await Q.event('money', fromQ)).e.data, { money: 10 }, 'money push on Q');
      sameJson((await R.event('levelup', fromR)).e.data, { playerId: 'qa' }, 'levelup push on R');
    });
    await gQ.step('area.info of the other player is still level 0; an unknown area route answers 500', async () => {
      sameJson((await R.request('area.info', {})).body, { code: 200, level: 0, money: 0 }, 'area.info on R');
      const { body } = await Q.request('area.nosuch', {});
      check(body && body.code === 500 && typeof body.message === 'string', 'area.nosuch answered ' + JSON.stringify(body));
    });
    await gQ.step('Q drops; a new genuine client S sends gate.resume with Q\'s token and is qa again, level 1, same area', async () => {
      await disconnectAll([Q]);
      await S.init(qport);
      const body = (await S.request('gate.resume', { token: qaToken })).body;
      check(body && body.resume !== qaToken, 'gate.resume gave no new token: ' + JSON.stringify(body));
      sameJson(withoutResume(body, 'S gate.resume'), { code: 200, uid: 'qa', area: 'area-1' }, 'S gate.resume');
      sameJson((await S.request('area.info', {})).body, { code: 200, level: 1, money: 10 }, 'area.info on S');
      const fromR = R.mark();
      await S.request('area.levelup', {});
      sameJson((await R.event('levelup', fromR)).e.data, { playerId: 'qa' }, 'levelup of the resumed qa on R');
    });
    await gQ.step('no client saw a malformed package; the quick server stops with exit code 0', async () => {
      const problems = [];
      for (const c of [Q, R, S]) {
        for (const e of c.events) {
          if ((e.ev === 'wire' && e.bad) || e.ev === 'crash' || e.ev === 'exception') problems.push(`${c.name}: ${JSON.stringify(e)}`);
        }
      }
      check(problems.length === 0, problems.join('\n'));
      await disconnectAll([Q, R, S]);
      await Promise.all([Q.close(), R.close(), S.close()]);
      const r = await stopServer();
      check(r && r.code === 0 && !r.signal, 'quick server exit: ' + JSON.stringify(r));
    });
  }

  clearTimeout(watchdog);
  if (failed) dumpServerLog();
  return finish();
}

function pkgVersion(name) {
  try {
    return require(name + '/package.json').version;
  } catch (e) {
    return '?';
  }
}

// Dispatch last, after every top-level binding above is initialised.
if (process.argv[2] === '--client') {
  runClient(process.argv[3] || 'client');
} else {
  main();
}
