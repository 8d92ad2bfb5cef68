#!/usr/bin/env node
// levelup.js -- the example of the README: the genuine Pomelo JavaScript client
// (pomelo-jsclient-websocket from npm) in Node.js against an atoll node serving the
// quick game. It enters as alice, levels up once, prints the two pushes and the reply,
// and disconnects, which ends the program.
//
//   make run                                        (another terminal: 127.0.0.1:3010)
//   cd examples/js && npm ci && node levelup.js     (node levelup.js PORT for another)
//
// The client is browser code: it expects a window (an EventEmitter class, localStorage)
// and a WebSocket class. The lines before pomelo.init give Node.js those, with `ws` as
// the WebSocket; from pomelo.init on it is the code a web page runs.
'use strict';

const port = Number(process.argv[2] || 3010);

const stored = new Map(); // the client keeps the server's route dictionary here
global.window = {
  EventEmitter: require('events'),
  localStorage: {
    getItem: (k) => (stored.has(k) ? stored.get(k) : null),
    setItem: (k, v) => stored.set(k, String(v)),
    removeItem: (k) => stored.delete(k),
  },
};
global.WebSocket = require('ws');
require('pomelo-protocol'); // sets window.Protocol, which the client encodes with
const pomelo = require('pomelo-jsclient-websocket');

// The client logs socket events whole with console.error, which a browser's console
// shows folded and a terminal would not: their first words are enough here.
const logError = console.error;
console.error = (what) => logError(String(what).trim());
// A connection that fails is only an 'io-error' event to the page: say it, exit 1.
pomelo.on('io-error', () => {
  console.error(`levelup.js: cannot connect to 127.0.0.1:${port}; is a node running (make run)?`);
  process.exitCode = 1;
});

pomelo.init({host: "127.0.0.1", port: port}, () => {            // port: 3010 by default
  pomelo.on("levelup", (msg) => console.log("levelup", msg));   // to the whole area
  pomelo.on("money", (msg) => console.log("money", msg));       // to this player
  pomelo.request("gate.entry", {uid: "alice"}, () =>
    pomelo.request("area.levelup", {}, (resp) => {
      console.log(resp);                                        // {code:200, level:1, money:10}
      pomelo.disconnect();                                      // and the program ends
    }));
});
