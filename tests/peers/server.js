#!/usr/bin/env node
'use strict'
// SPDY test server (spdy-transport 3.0.0, node-spdy's protocol layer) used to
// test spdyasgi's *client*.  Options as JSON on argv[2] (or a path to a JSON
// file); prints {"port": N} on stdout once listening; exits when stdin closes.
//
// Options: {host="127.0.0.1", port=0, tls=false, key, cert,
//           protocol="spdy/3.1" (cleartext: version spoken by prior knowledge;
//                                null = detect from the first frame like
//                                node-spdy's plain server),
//           protocols=["spdy/3.1","spdy/3","http/1.1"] (TLS: ALPN, server order),
//           max_streams (SETTINGS MAX_CONCURRENT_STREAMS; omitted by default,
//                        never enforced), window_size=1048576,
//           header_compression=true, log=false}
//
// Routes (same over SPDY and over the HTTP/1.1 fallback):
//   /hello                 200 "hello"
//   /bytes?n=N&seed=S      N deterministic bytes (lib/body.js), streamed;
//                          honours a single "Range: bytes=a-b" (206/416)
//   /echo                  request body streamed back
//   /upload                consumes the body, returns {"length", "sha256"}
//   /push                  pushes /pushed.css (PUSHED_CSS) then returns PUSH_PAGE
//   /headers               JSON of the request headers (raw SPDY names incl.
//                          pseudo-headers; multi-values as arrays)
//   /status/NNN            status NNN ("status NNN" body unless 204/304/HEAD)
// Anything else: 404.

const net = require('net')
const tls = require('tls')
const http = require('http')
const fs = require('fs')
const crypto = require('crypto')
const { URL } = require('url')

const body = require('./lib/body')
const peers = require('./lib/spdy')

const PUSHED_CSS = 'body { color: #123456; } /* pushed by tests/peers/server.js */\n'
const PUSH_PAGE = '<!doctype html><link rel="stylesheet" href="/pushed.css"><p>push</p>\n'

function readOptions () {
  const arg = process.argv[2]
  if (!arg) return {}
  if (arg.trim().startsWith('{')) return JSON.parse(arg)
  return JSON.parse(fs.readFileSync(arg, 'utf8'))
}

const opts = Object.assign({
  host: '127.0.0.1',
  port: 0,
  tls: false,
  protocol: 'spdy/3.1',
  protocols: ['spdy/3.1', 'spdy/3', 'http/1.1'],
  max_streams: undefined,
  window_size: undefined,
  header_compression: true,
  log: false
}, readOptions())

function log () {
  if (opts.log) console.error.apply(console, ['[server]'].concat(Array.from(arguments)))
}

function parseRange (value, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(String(value).trim())
  if (!m || (m[1] === '' && m[2] === '')) return null
  let start, end
  if (m[1] === '') {
    const suffix = parseInt(m[2], 10)
    start = Math.max(size - suffix, 0)
    end = size
  } else {
    start = parseInt(m[1], 10)
    end = m[2] === '' ? size : Math.min(parseInt(m[2], 10) + 1, size)
  }
  if (start >= size || start >= end) return 'unsatisfiable'
  return { start, end }
}

function firstValue (v) {
  return Array.isArray(v) ? v[0] : v
}

// ctx: {method, url, headers (raw, lowercase), input (Readable),
//       respond(status, headers) -> Writable, push(path, headers, buffer) | null}
function route (ctx) {
  const url = new URL(ctx.url, 'http://peer.invalid')
  const path = url.pathname
  const noBody = ctx.method === 'HEAD'
  const drain = function () { ctx.input.resume() }

  if (path === '/hello') {
    drain()
    const out = ctx.respond(200, { 'content-type': 'text/plain', 'content-length': '5' })
    out.end(noBody ? undefined : 'hello')
    return
  }

  if (path === '/bytes') {
    drain()
    const n = parseInt(url.searchParams.get('n') || '0', 10)
    const seedText = url.searchParams.get('seed') || '0'
    const seed = /^\d+$/.test(seedText) ? parseInt(seedText, 10) : seedText
    let start = 0
    let end = n
    let status = 200
    const headers = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' }
    const range = ctx.headers.range !== undefined ? parseRange(firstValue(ctx.headers.range), n) : null
    if (range === 'unsatisfiable') {
      ctx.respond(416, { 'content-range': 'bytes */' + n }).end()
      return
    }
    if (range) {
      start = range.start
      end = range.end
      status = 206
      headers['content-range'] = 'bytes ' + start + '-' + (end - 1) + '/' + n
    }
    headers['content-length'] = String(end - start)
    const out = ctx.respond(status, headers)
    if (noBody) return out.end()
    body.stream(n, seed, { start, end }).pipe(out)
    return
  }

  if (path === '/echo') {
    const headers = { 'content-type': firstValue(ctx.headers['content-type']) || 'application/octet-stream' }
    if (ctx.headers['content-length'] !== undefined) headers['content-length'] = firstValue(ctx.headers['content-length'])
    const out = ctx.respond(200, headers)
    ctx.input.pipe(out)
    return
  }

  if (path === '/upload') {
    const h = crypto.createHash('sha256')
    let length = 0
    ctx.input.on('data', function (c) { h.update(c); length += c.length })
    ctx.input.on('end', function () {
      const text = JSON.stringify({ length, sha256: h.digest('hex') })
      ctx.respond(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }).end(text)
    })
    return
  }

  if (path === '/push') {
    drain()
    const css = Buffer.from(PUSHED_CSS)
    const send = function () {
      const out = ctx.respond(200, { 'content-type': 'text/html', 'content-length': String(Buffer.byteLength(PUSH_PAGE)) })
      out.end(PUSH_PAGE)
    }
    if (ctx.push) {
      ctx.push('/pushed.css', { 'content-type': 'text/css', 'content-length': String(css.length) }, css, send)
    } else {
      send()
    }
    return
  }

  if (path === '/headers') {
    drain()
    const text = JSON.stringify(ctx.headers)
    ctx.respond(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }).end(text)
    return
  }

  const m = /^\/status\/(\d{3})$/.exec(path)
  if (m) {
    drain()
    const status = parseInt(m[1], 10)
    const empty = noBody || status === 204 || status === 304 || status < 200
    const text = 'status ' + status
    const out = ctx.respond(status, empty ? {} : { 'content-type': 'text/plain', 'content-length': String(text.length) })
    out.end(empty ? undefined : text)
    return
  }

  drain()
  ctx.respond(404, { 'content-type': 'text/plain', 'content-length': '9' }).end('not found')
}

// ------------------------------------------------------------------- SPDY side

function serveSpdy (socket, protocol) {
  const conn = peers.createConnection(socket, {
    isServer: true,
    protocol,
    windowSize: opts.window_size,
    maxStreams: opts.max_streams,
    headerCompression: opts.header_compression
  })
  conn.on('error', function (err) { log('connection error', err.message) })
  socket.on('error', function (err) { log('socket error', err.message) })
  conn.on('stream', function (stream) {
    stream.on('error', function (err) { log('stream', stream.id, 'error', err.message) })
    const raw = peers.rawHeaders(stream.headers) || stream.headers
    const host = firstValue(raw[':host']) || stream.host
    route({
      method: stream.method,
      url: stream.path,
      headers: raw,
      input: stream,
      respond: function (status, headers) {
        stream.respond(status, headers)
        return stream
      },
      push: function (path, headers, buf, cb) {
        stream.pushPromise({
          path,
          method: 'GET',
          host,
          status: 200,
          priority: { parent: 0, exclusive: false, weight: 36 },
          headers: {},
          response: headers
        }, function (err, push) {
          if (err) {
            log('push failed', err.message)
            cb()
            return
          }
          push.on('error', function (e) { log('push error', e.message) })
          push.end(buf)
          cb()
        })
      }
    })
  })
}

// --------------------------------------------------------------- HTTP/1.1 side

const h1 = http.createServer(function (req, res) {
  route({
    method: req.method,
    url: req.url,
    headers: req.headers,
    input: req,
    respond: function (status, headers) {
      res.writeHead(status, headers)
      return res
    },
    push: null
  })
})

// --------------------------------------------------------------------- listen

let server
if (opts.tls) {
  server = tls.createServer({
    key: fs.readFileSync(opts.key),
    cert: fs.readFileSync(opts.cert),
    ALPNProtocols: opts.protocols
  }, function (socket) {
    const proto = socket.alpnProtocol || null
    log('tls connection, alpn =', proto)
    if (peers.versionOf(proto) !== null) {
      serveSpdy(socket, proto)
    } else {
      h1.emit('connection', socket)
    }
  })
} else {
  server = net.createServer(function (socket) {
    socket.setNoDelay(true)
    serveSpdy(socket, opts.protocol)
  })
}
server.on('error', function (err) {
  console.error('[server] listen error', err.message)
  process.exit(1)
})
server.listen(opts.port, opts.host, function () {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n')
})

function shutdown () {
  process.exit(0)
}
process.stdin.on('end', shutdown)
process.stdin.on('close', shutdown)
process.stdin.on('error', shutdown)
process.stdin.resume()
process.on('SIGTERM', shutdown)

module.exports = { PUSHED_CSS, PUSH_PAGE }
