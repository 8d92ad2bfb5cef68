#!/usr/bin/env node
// example_test.js -- the README's JavaScript example, examples/js/levelup.js, run as
// the README says against a real `atoll run --game quick` node (started here on
// 127.0.0.1, free port), and held to what the README shows:
//   - the README's ```js block is in levelup.js word for word, and the README gives the
//     command that runs it;
//   - examples/js pins the same packages as tests/js, so running it with tests/js's
//     node_modules (NODE_PATH: no second npm install) runs the same client code;
//   - it exits by itself with status 0, and its output is the client's `connect to`
//     line, the README's ```text block, then the client's `disconnect`;
//   - with no node to reach it says so and exits 1;
//   - the node stops on SIGTERM with exit status 0.
//
//   ATOLL_BIN=/path/to/atoll node example_test.js      (ctest: label js)
//
// Output is TAP-like and ends with `N passed, M failed`; non-zero exit on any failure.
'use strict';

const fs = require('fs');
const path = require('path');
const assert = require('assert');
const { spawn } = require('child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const EXAMPLE_DIR = path.join(ROOT, 'examples', 'js');
const HOST = '127.0.0.1';
const STEP_MS = 15000;
const COMMAND = 'cd examples/js && npm ci && node levelup.js';

let n = 0;
let failed = 0;
const out = (line) => process.stdout.write(line + '\n');

async function step(desc, fn) {
  n++;
  try {
    await fn();
    out(`ok ${n} - ${desc}`);
    return true;
  } catch (e) {
    failed++;
    out(`not ok ${n} - ${desc}`);
    for (const l of String((e && e.message) || e).split('\n')) out('#   ' + l);
    return false;
  }
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

// The body of the first fenced block of kind `lang` in markdown text.
function fenced(text, lang) {
  const m = text.match(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'm'));
  return m ? m[1] : null;
}

// Runs a program; resolves with {code, signal, stdout, stderr}, or rejects when it has
// not exited within STEP_MS (it is killed then).
function run(cmd, args, opts) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${path.basename(args[0] || cmd)} did not exit by itself within ${STEP_MS} ms; ` +
                       `stdout:\n${stdout}stderr:\n${stderr}`));
    }, STEP_MS);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

let server = null;
let serverErr = '';

// Starts `atoll run --game quick` on HOST, port 0; resolves with the port it printed.
function startServer(bin) {
  return new Promise((resolve, reject) => {
    server = spawn(bin, ['run', '--game', 'quick', '--store', 'memory', '--listen', `${HOST}:0`, '--workers', '2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buf = '';
    const timer = setTimeout(() => reject(new Error('no "listening" line within ' + STEP_MS + ' ms; stderr:\n' + serverErr)), STEP_MS);
    server.stderr.on('data', (d) => (serverErr += d));
    server.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/^listening 127\.0\.0\.1:(\d+)$/m);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    server.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (${code}, ${signal}); stderr:\n${serverErr}`));
    });
  });
}

function stopServer() {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not stop within ' + STEP_MS + ' ms')), STEP_MS);
    server.removeAllListeners('exit');
    server.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
    server.kill('SIGTERM');
  });
}

async function main() {
  const bin = process.env.ATOLL_BIN || process.argv[2];
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const example = fs.readFileSync(path.join(EXAMPLE_DIR, 'levelup.js'), 'utf8');
  const shown = fenced(readme, 'text');

  await step("README.md's js block is in examples/js/levelup.js word for word", async () => {
    const snippet = fenced(readme, 'js');
    check(snippet && snippet.includes('pomelo.init('), 'no js block with pomelo.init in README.md');
    check(example.includes(snippet), 'levelup.js does not contain the README block:\n' + snippet);
  });
  await step(`README.md gives the command: ${COMMAND}; and the output (a text block)`, async () => {
    check(readme.includes(COMMAND), 'not in README.md: ' + COMMAND);
    check(shown && shown.trim().length > 0, 'no text block in README.md');
  });
  await step('examples/js pins the packages tests/js does (package.json and the lock)', async () => {
    const read = (dir, f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    assert.deepStrictEqual(read(EXAMPLE_DIR, 'package.json').dependencies, read(__dirname, 'package.json').dependencies);
    const deps = (lock) => Object.fromEntries(Object.entries(lock.packages).filter(([k]) => k !== ''));
    assert.deepStrictEqual(deps(read(EXAMPLE_DIR, 'package-lock.json')), deps(read(__dirname, 'package-lock.json')));
  });

  let port = 0;
  const up = await step(`atoll run --game quick --listen ${HOST}:0 starts`, async () => {
    check(bin && fs.existsSync(bin), 'ATOLL_BIN not set or missing: ' + bin);
    port = await startServer(bin);
  });
  if (up) {
    // The example's own node_modules when `npm ci` made it, else tests/js's: the same
    // pinned packages (checked above).
    const env = { ...process.env, NODE_PATH: path.join(__dirname, 'node_modules') };
    let r = null;
    await step(`node levelup.js ${port} (in examples/js) exits by itself with status 0`, async () => {
      r = await run(process.execPath, ['levelup.js', String(port)], { cwd: EXAMPLE_DIR, env });
      check(r.code === 0, `exit ${r.code} ${r.signal || ''}; stdout:\n${r.stdout}stderr:\n${r.stderr}`);
    });
    await step("its output is the client's connect line, README.md's text block, the client's disconnect", async () => {
      check(r, 'it did not run');
      const want = [`connect to ws://${HOST}:${port}`, ...shown.trimEnd().split('\n'), 'disconnect'];
      assert.deepStrictEqual(r.stdout.trimEnd().split('\n'), want);
      assert.deepStrictEqual(r.stderr.trimEnd().split('\n'), ['socket close:']);
    });
    await step('the node stops on SIGTERM with exit status 0', async () => {
      const s = await stopServer();
      check(s.code === 0 && !s.signal, 'server exit: ' + JSON.stringify(s) + '\n' + serverErr);
    });
    await step('with no node on the port, levelup.js says so and exits 1', async () => {
      const q = await run(process.execPath, ['levelup.js', String(port)], { cwd: EXAMPLE_DIR, env });
      check(q.code === 1 && /cannot connect to 127\.0\.0\.1:\d+/.test(q.stderr), `exit ${q.code}; stderr:\n${q.stderr}`);
    });
  }
  out(`${n - failed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  out('not ok - ' + ((e && e.stack) || e));
  process.exitCode = 1;
}).finally(() => {
  if (server && server.exitCode === null) server.kill('SIGKILL');
});
