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

const fs = require('fs')
const { options, listen } = require('./node_spdy_common')

const opts = options({ chunk: 65536 })
const SIZE = fs.statSync(opts.file).size

function parseRange (value) {
  const m = /^bytes=(\d+)-(\d*)$/.exec(String(value || '').trim())
  if (!m) return null
  const start = parseInt(m[1], 10)
  const end = m[2] === '' ? SIZE - 1 : Math.min(parseInt(m[2], 10), SIZE - 1)
  if (start >= SIZE || end < start) return 'unsatisfiable'
  return { start, end }
}

listen(opts, function (stream, url) {
  stream.resume()
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
