#!/usr/bin/env node
'use strict'
// node-spdy (spdy-transport from tests/peers/node_modules) serving one file with Range
// support: the node side of the media-pattern benchmark (benchmarks/media.py), the same
// routes as benchmarks/media_app.py:
//   GET /media + "range: bytes=a-b" or "bytes=a-"  -> 206 + content-range
//   GET /media (no range)                          -> 200, the whole file
//   unsatisfiable range                            -> 416
// The body is read with fs.createReadStream (64 KiB chunks) piped into the stream, so
// flow control pushes back on the reads; a reset stream destroys its read stream.
//
//   node benchmarks/node_spdy_media.js '{"file": PATH, "port": 0, "tls": false, "key": .., "cert": ..}'
// prints {"port": N}; exits when stdin closes or on SIGTERM.

const path = require('path')
const net = require('net')
const tls = require('tls')
const fs = require('fs')
const transport = require(path.join(__dirname, '..', 'tests', 'peers', 'node_modules',
  'spdy-transport'))

const opts = Object.assign({ host: '127.0.0.1', port: 0, tls: false, chunk: 65536 },
  process.argv[2] ? JSON.parse(process.argv[2]) : {})
const SIZE = fs.statSync(opts.file).size

function parseRange (value) {
  const m = /^bytes=(\d+)-(\d*)$/.exec(String(value || '').trim())
  if (!m) return null
  const start = parseInt(m[1], 10)
  const end = m[2] === '' ? SIZE - 1 : Math.min(parseInt(m[2], 10), SIZE - 1)
  if (start >= SIZE || end < start) return 'unsatisfiable'
  return { start, end }
}

function serve (socket) {
  const conn = transport.connection.create(socket, {
    protocol: 'spdy', isServer: true, windowSize: 1 << 20, autoSpdy31: true
  })
  conn.start(3.1)
  conn.on('error', function () {})
  socket.on('error', function () {})
  conn.on('stream', function (stream) {
    stream.on('error', function () {})
    stream.resume()
    const url = new URL(stream.path, 'http://x')
    if (url.pathname !== '/media') {
      stream.respond(404, { 'content-length': '0' })
      stream.end()
      return
    }
    const header = stream.headers.range
    let range = header === undefined ? { start: 0, end: SIZE - 1 } : parseRange(header)
    if (range === null) range = { start: 0, end: SIZE - 1 }
    if (range === 'unsatisfiable') {
      stream.respond(416, { 'content-range': 'bytes */' + SIZE, 'content-length': '0' })
      stream.end()
      return
    }
    const length = range.end - range.start + 1
    const headers = { 'content-type': 'application/octet-stream',
      'content-length': String(length), 'accept-ranges': 'bytes' }
    if (header !== undefined) {
      headers['content-range'] = 'bytes ' + range.start + '-' + range.end + '/' + SIZE
    }
    stream.respond(header !== undefined ? 206 : 200, headers)
    const reader = fs.createReadStream(opts.file,
      { start: range.start, end: range.end, highWaterMark: opts.chunk })
    reader.on('error', function () { stream.destroy() })
    const stop = function () { reader.destroy() }
    stream.on('close', stop)
    stream.on('error', stop)
    reader.pipe(stream)
  })
}

const server = opts.tls
  ? tls.createServer({ key: fs.readFileSync(opts.key), cert: fs.readFileSync(opts.cert),
    ALPNProtocols: ['spdy/3.1'] }, serve)
  : net.createServer(function (socket) { socket.setNoDelay(true); serve(socket) })
server.listen(opts.port, opts.host, function () {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n')
})
process.stdin.on('end', function () { process.exit(0) })
process.stdin.resume()
process.on('SIGTERM', function () { process.exit(0) })
