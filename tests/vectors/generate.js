#!/usr/bin/env node
'use strict'
// Regenerate with:  node tests/vectors/generate.js > tests/vectors/spdy_transport.json
//
// Frames produced by spdy-transport 3.0.0's SPDY framer (version 3.1 wire
// format, i.e. version field 3) for the client and the server role.  Every
// vector starts a fresh zlib context, so each `hex` decodes on its own; the
// "*_header_sequence" vectors hold three header frames sharing one context
// (`expect` is then a list, one entry per frame).  The expectations are
// written here by hand from the framer inputs (plus the pseudo-headers the
// framer adds), and the script refuses to print anything if the frames do
// not decode back to them with tests/peers/lib/decode.js.

const path = require('path')
const assert = require('assert')

const peersDir = path.join(__dirname, '..', 'peers')
const transport = require(path.join(peersDir, 'node_modules', 'spdy-transport'))
const { decodeFrames } = require(path.join(peersDir, 'lib', 'decode'))

const VERSION = 3.1
const MAX = 2147483647

function newFramer (role, compression) {
  const isServer = role === 'server'
  const spdy = transport.protocol.spdy
  const window = new transport.Window({
    id: 0,
    isServer,
    recv: { size: 65536, max: MAX },
    send: { size: 65536, max: MAX }
  })
  const framer = spdy.framer.create({ window, timeout: null })
  framer.setVersion(VERSION)
  framer.setCompression(spdy.compressionPool.create(compression !== false).get(VERSION))
  framer.enablePush(isServer)
  const chunks = []
  framer.on('data', function (c) { chunks.push(c) })
  // Runs one framer call and returns the bytes it produced.
  framer.capture = function (method, frame) {
    return new Promise(function (resolve, reject) {
      const before = chunks.length
      framer[method](frame, function (err) {
        if (err) return reject(err)
        setImmediate(function () {
          resolve(Buffer.concat(chunks.slice(before)).toString('hex'))
        })
      })
    })
  }
  return framer
}

const CLIENT_REQUEST_HEADERS = {
  accept: ['text/html', 'application/json'],
  'user-agent': 'spdy-transport-vectors',
  cookie: 'a=1'
}

function synStreamExpect (id, host, path, method, extra, more) {
  return Object.assign({
    type: 'SYN_STREAM',
    stream_id: id,
    associated: 0,
    priority: 3,
    unidirectional: false,
    flags: 0,
    fin: false,
    headers: Object.assign({
      ':method': method,
      ':version': 'HTTP/1.1',
      ':path': path,
      ':scheme': 'https',
      ':host': host
    }, extra)
  }, more || {})
}

async function build () {
  const vectors = []
  const add = function (name, role, hex, expect, note) {
    const v = { name, role, version: 3, hex, expect }
    if (note) v.note = note
    vectors.push(v)
  }
  let f

  // ---------------------------------------------------------------- client
  f = newFramer('client')
  add('client_syn_stream_multi_value', 'client', await f.capture('requestFrame', {
    id: 1,
    method: 'GET',
    path: '/index.html?q=1',
    host: 'example.com:8443',
    headers: CLIENT_REQUEST_HEADERS,
    fin: true
  }), synStreamExpect(1, 'example.com:8443', '/index.html?q=1', 'GET', {
    accept: ['text/html', 'application/json'],
    'user-agent': 'spdy-transport-vectors',
    cookie: 'a=1'
  }, { flags: 1, fin: true }), 'multi-value header = one NUL-joined value')

  f = newFramer('client')
  add('client_syn_stream_post_priority0', 'client', await f.capture('requestFrame', {
    id: 3,
    method: 'POST',
    path: '/upload',
    host: 'localhost',
    priority: { weight: 1, parent: 0, exclusive: false },
    headers: { 'content-type': 'application/octet-stream', 'content-length': '11' },
    fin: false
  }), synStreamExpect(3, 'localhost', '/upload', 'POST', {
    'content-type': 'application/octet-stream',
    'content-length': '11'
  }, { priority: 0 }))

  f = newFramer('client')
  add('client_data', 'client', await f.capture('dataFrame', {
    id: 3, priority: 0, fin: false, data: Buffer.from('hello ')
  }), { type: 'DATA', stream_id: 3, flags: 0, fin: false, data_length: 6, data_hex: Buffer.from('hello ').toString('hex') })
  add('client_data_fin', 'client', await f.capture('dataFrame', {
    id: 3, priority: 0, fin: true, data: Buffer.from('world')
  }), { type: 'DATA', stream_id: 3, flags: 1, fin: true, data_length: 5, data_hex: Buffer.from('world').toString('hex') })
  add('client_data_empty_fin', 'client', await f.capture('dataFrame', {
    id: 5, priority: 0, fin: true, data: Buffer.alloc(0)
  }), { type: 'DATA', stream_id: 5, flags: 1, fin: true, data_length: 0 })

  f = newFramer('client')
  add('client_headers_trailers', 'client', await f.capture('headersFrame', {
    id: 3, headers: { 'x-checksum': 'abc', 'x-multi': ['1', '2'] }
  }), { type: 'HEADERS', stream_id: 3, flags: 0, fin: false, headers: { 'x-checksum': 'abc', 'x-multi': ['1', '2'] } },
  'spdy-transport never sets FLAG_FIN on HEADERS (and ignores it on receipt)')

  add('client_rst_stream_cancel', 'client', await f.capture('rstFrame', { id: 3, code: 'CANCEL' }),
    { type: 'RST_STREAM', stream_id: 3, flags: 0, status: 5, status_name: 'CANCEL' })
  add('client_settings', 'client', await f.capture('settingsFrame', {
    initial_window_size: 1048576, max_concurrent_streams: 100
  }), {
    type: 'SETTINGS',
    stream_id: 0,
    flags: 0,
    settings: [
      { id: 4, name: 'max_concurrent_streams', flags: 1, value: 100 },
      { id: 7, name: 'initial_window_size', flags: 1, value: 1048576 }
    ]
  }, 'spdy-transport sets FLAG_SETTINGS_PERSIST_VALUE (1) on every entry, even as a client')
  add('client_ping', 'client', await f.capture('pingFrame', { opaque: Buffer.from([0, 0, 0, 1]), ack: false }),
    { type: 'PING', stream_id: 0, flags: 0, ping_id: 1 })
  add('client_goaway_ok', 'client', await f.capture('goawayFrame', { lastId: 2, code: 'OK' }),
    { type: 'GOAWAY', stream_id: 0, flags: 0, last_good: 2, status: 0, status_name: 'OK' })
  add('client_window_update_stream', 'client', await f.capture('windowUpdateFrame', { id: 1, delta: 524288 }),
    { type: 'WINDOW_UPDATE', stream_id: 1, flags: 0, delta: 524288 })
  add('client_window_update_session', 'client', await f.capture('windowUpdateFrame', { id: 0, delta: 983040 }),
    { type: 'WINDOW_UPDATE', stream_id: 0, flags: 0, delta: 983040 })

  f = newFramer('client')
  const seqC = []
  seqC.push(await f.capture('requestFrame', { id: 1, method: 'GET', path: '/a', host: 'h', headers: { 'x-n': '1' }, fin: true }))
  seqC.push(await f.capture('requestFrame', { id: 3, method: 'GET', path: '/b', host: 'h', headers: { 'x-n': '2' }, fin: true }))
  seqC.push(await f.capture('requestFrame', { id: 5, method: 'GET', path: '/c', host: 'h', headers: { 'x-n': ['3', '4'] }, fin: true }))
  add('client_header_sequence', 'client', seqC.join(''), [
    synStreamExpect(1, 'h', '/a', 'GET', { 'x-n': '1' }, { flags: 1, fin: true }),
    synStreamExpect(3, 'h', '/b', 'GET', { 'x-n': '2' }, { flags: 1, fin: true }),
    synStreamExpect(5, 'h', '/c', 'GET', { 'x-n': ['3', '4'] }, { flags: 1, fin: true })
  ], 'three SYN_STREAMs sharing one zlib context; only the first block has a zlib header')

  // ---------------------------------------------------------------- server
  f = newFramer('server')
  add('server_syn_reply', 'server', await f.capture('responseFrame', {
    id: 1,
    status: 200,
    headers: { 'content-type': 'text/html', 'set-cookie': ['a=1', 'b=2'], 'content-length': '5' }
  }), {
    type: 'SYN_REPLY',
    stream_id: 1,
    flags: 0,
    fin: false,
    headers: {
      ':status': '200 OK',
      ':version': 'HTTP/1.1',
      'content-type': 'text/html',
      'set-cookie': ['a=1', 'b=2'],
      'content-length': '5'
    }
  })

  f = newFramer('server', false)
  add('server_syn_reply_stored', 'server', await f.capture('responseFrame', {
    id: 1, status: 404, headers: { 'content-type': 'text/plain' }
  }), {
    type: 'SYN_REPLY',
    stream_id: 1,
    flags: 0,
    headers: { ':status': '404 Not Found', ':version': 'HTTP/1.1', 'content-type': 'text/plain' }
  }, 'header block deflated with level 0 (stored blocks)')

  f = newFramer('server')
  add('server_push_syn_stream', 'server', await f.capture('pushFrame', {
    id: 1,
    promisedId: 2,
    path: '/style.css',
    host: 'example.com',
    method: 'GET',
    status: 200,
    priority: { weight: 36, parent: 0, exclusive: false },
    headers: {},
    response: { 'content-type': 'text/css' }
  }), {
    type: 'SYN_STREAM',
    stream_id: 2,
    associated: 1,
    priority: 7,
    flags: 0,
    fin: false,
    unidirectional: false,
    headers: {
      ':method': 'GET',
      ':version': 'HTTP/1.1',
      ':path': '/style.css',
      ':scheme': 'https',
      ':host': 'example.com',
      ':status': '200',
      'content-type': 'text/css'
    }
  }, 'spdy-transport pushes WITHOUT FLAG_UNIDIRECTIONAL and with a bare ":status: 200"')

  f = newFramer('server')
  add('server_headers', 'server', await f.capture('headersFrame', { id: 1, headers: { 'x-trailer': 'done' } }),
    { type: 'HEADERS', stream_id: 1, flags: 0, fin: false, headers: { 'x-trailer': 'done' } })
  add('server_data', 'server', await f.capture('dataFrame', { id: 1, priority: 0, fin: false, data: Buffer.from('hello') }),
    { type: 'DATA', stream_id: 1, flags: 0, fin: false, data_length: 5, data_hex: Buffer.from('hello').toString('hex') })
  add('server_data_fin', 'server', await f.capture('dataFrame', { id: 1, priority: 0, fin: true, data: Buffer.from('!') }),
    { type: 'DATA', stream_id: 1, flags: 1, fin: true, data_length: 1, data_hex: '21' })
  add('server_rst_stream_refused', 'server', await f.capture('rstFrame', { id: 7, code: 'REFUSED_STREAM' }),
    { type: 'RST_STREAM', stream_id: 7, flags: 0, status: 3, status_name: 'REFUSED_STREAM' })
  add('server_settings', 'server', await f.capture('settingsFrame', {
    max_concurrent_streams: 200, initial_window_size: 65536
  }), {
    type: 'SETTINGS',
    stream_id: 0,
    flags: 0,
    settings: [
      { id: 4, name: 'max_concurrent_streams', flags: 1, value: 200 },
      { id: 7, name: 'initial_window_size', flags: 1, value: 65536 }
    ]
  })
  add('server_ping', 'server', await f.capture('pingFrame', { opaque: Buffer.from([0, 0, 0, 2]), ack: false }),
    { type: 'PING', stream_id: 0, flags: 0, ping_id: 2 })
  add('server_goaway_protocol_error', 'server', await f.capture('goawayFrame', { lastId: 5, code: 'PROTOCOL_ERROR' }),
    { type: 'GOAWAY', stream_id: 0, flags: 0, last_good: 5, status: 1, status_name: 'PROTOCOL_ERROR' })
  add('server_window_update_stream', 'server', await f.capture('windowUpdateFrame', { id: 3, delta: 65536 }),
    { type: 'WINDOW_UPDATE', stream_id: 3, flags: 0, delta: 65536 })
  add('server_window_update_session', 'server', await f.capture('windowUpdateFrame', { id: 0, delta: 2147418112 }),
    { type: 'WINDOW_UPDATE', stream_id: 0, flags: 0, delta: 2147418112 })

  f = newFramer('server')
  const seqS = []
  seqS.push(await f.capture('responseFrame', { id: 1, status: 200, headers: { 'content-type': 'text/plain' } }))
  seqS.push(await f.capture('responseFrame', { id: 3, status: 304, headers: { etag: '"x"' } }))
  seqS.push(await f.capture('headersFrame', { id: 1, headers: { 'x-after': ['a', 'b'] } }))
  add('server_header_sequence', 'server', seqS.join(''), [
    { type: 'SYN_REPLY', stream_id: 1, flags: 0, headers: { ':status': '200 OK', ':version': 'HTTP/1.1', 'content-type': 'text/plain' } },
    { type: 'SYN_REPLY', stream_id: 3, flags: 0, headers: { ':status': '304 Not Modified', ':version': 'HTTP/1.1', etag: '"x"' } },
    { type: 'HEADERS', stream_id: 1, flags: 0, headers: { 'x-after': ['a', 'b'] } }
  ], 'SYN_REPLY, SYN_REPLY, HEADERS sharing one zlib context')

  return vectors
}

function subsetMatches (expect, got, where) {
  for (const k of Object.keys(expect)) {
    assert.deepStrictEqual(got[k], expect[k], where + ': field ' + k)
  }
}

async function main () {
  const vectors = await build()
  for (const v of vectors) {
    const frames = await decodeFrames(Buffer.from(v.hex, 'hex'), 3, v.role)
    const expects = Array.isArray(v.expect) ? v.expect : [v.expect]
    assert.strictEqual(frames.length, expects.length, v.name + ': frame count')
    expects.forEach(function (e, i) {
      assert.ok(!frames[i].error, v.name + ': ' + frames[i].error)
      assert.ok(!frames[i].transport_error, v.name + ': ' + frames[i].transport_error)
      subsetMatches(e, frames[i], v.name + '[' + i + ']')
    })
  }
  const out = {
    generator: 'tests/vectors/generate.js',
    source: 'spdy-transport@3.0.0 protocol.spdy framer, version 3.1 (wire version 3)',
    node: process.version,
    vectors
  }
  process.stdout.write(JSON.stringify(out, null, 1) + '\n')
}

main().catch(function (e) {
  console.error(e.stack || String(e))
  process.exit(1)
})
