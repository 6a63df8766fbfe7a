#!/usr/bin/env node
'use strict'
// node-spdy (spdy-transport 3.0.0 from tests/peers/node_modules) serving the same
// routes as benchmarks/apps.py:raw without generating bodies: `/download?mib=N` writes one
// precomputed 1 MiB Buffer N times (respecting backpressure), `/` answers "hello, world",
// `/upload` counts the body. Lets the streaming comparison measure node-spdy's protocol
// layer rather than tests/peers/server.js's SHAKE128 body generator.
//
//   node benchmarks/node_spdy_server.js '{"port": 0, "tls": false, "key": ..., "cert": ...}'
// prints {"port": N}; exits when stdin closes or on SIGTERM.

const { options, listen } = require('./node_spdy_common')

const opts = options({})
const CHUNK = Buffer.alloc(1 << 20)
for (let i = 0; i < CHUNK.length; i++) CHUNK[i] = i & 255
const HELLO = Buffer.from('hello, world')

listen(opts, function (stream, url) {
  if (url.pathname === '/download') {
    const n = parseInt(url.searchParams.get('mib') || '100', 10)
    stream.respond(200, { 'content-type': 'application/octet-stream',
      'content-length': String(n * CHUNK.length) })
    stream.resume()
    let sent = 0
    const pump = function () {
      while (sent < n) {
        sent++
        if (sent === n) { stream.end(CHUNK); return }
        if (!stream.write(CHUNK)) { stream.once('drain', pump); return }
      }
    }
    pump()
    return
  }
  if (url.pathname === '/upload') {
    let length = 0
    stream.on('data', function (c) { length += c.length })
    stream.on('end', function () {
      const text = String(length)
      stream.respond(200, { 'content-type': 'text/plain', 'content-length': String(text.length) })
      stream.end(text)
    })
    return
  }
  stream.resume()
  stream.respond(200, { 'content-type': 'text/plain', 'content-length': '12' })
  stream.end(HELLO)
})
