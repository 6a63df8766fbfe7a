'use strict'
// Thin instrumentation around spdy-transport's Connection so that the peers
// see the wire the way a test wants to see it:
//   * raw header blocks (multi-values kept, `:version`/`:host`/full `:status`)
//     are attached to the parsed frames' header objects under RAW;
//   * per-type frame counters, the peer's SETTINGS (with entry flags) and
//     GOAWAY are recorded in `conn.peerInfo`;
//   * optionally a HEADERS frame carrying FLAG_FIN ends the stream
//     (spdy-transport 3.0.0 parses every HEADERS frame as fin=false).
// No handle-thing is involved: streams are spdy-transport Duplex streams.

const transport = require('spdy-transport')
const { decodeNV, pairsToHeaders } = require('./nv')

const RAW = Symbol.for('spdyasgi.peers.rawHeaders')

const TYPE_NAMES = {
  1: 'SYN_STREAM',
  2: 'SYN_REPLY',
  3: 'RST_STREAM',
  4: 'SETTINGS',
  5: 'NOOP',
  6: 'PING',
  7: 'GOAWAY',
  8: 'HEADERS',
  9: 'WINDOW_UPDATE',
  10: 'CREDENTIAL'
}

const RST_NAMES = {
  1: 'PROTOCOL_ERROR',
  2: 'INVALID_STREAM',
  3: 'REFUSED_STREAM',
  4: 'UNSUPPORTED_VERSION',
  5: 'CANCEL',
  6: 'INTERNAL_ERROR',
  7: 'FLOW_CONTROL_ERROR',
  8: 'STREAM_IN_USE',
  9: 'STREAM_ALREADY_CLOSED',
  10: 'INVALID_CREDENTIALS',
  11: 'FRAME_TOO_LARGE'
}

const SETTING_NAMES = {
  1: 'upload_bandwidth',
  2: 'download_bandwidth',
  3: 'round_trip_time',
  4: 'max_concurrent_streams',
  5: 'current_cwnd',
  6: 'download_retrans_rate',
  7: 'initial_window_size',
  8: 'client_certificate_vector_size'
}

function versionOf (protocol) {
  if (protocol === 'spdy/3.1' || protocol === 3.1 || protocol === '3.1') return 3.1
  if (protocol === 'spdy/3' || protocol === 3 || protocol === '3') return 3
  if (protocol === 'spdy/2' || protocol === 2 || protocol === '2') return 2
  return null
}

function rawHeaders (headersObject) {
  return (headersObject && headersObject[RAW]) || null
}

function attachRaw (headers, raw) {
  if (!headers || !raw) return
  Object.defineProperty(headers, RAW, { value: raw, enumerable: false })
}

function instrument (conn, opts) {
  const state = conn._spdyState
  const parser = state.parser
  const info = {
    frames: {},
    settings: null,
    settingsFrames: [],
    goaway: null,
    sessionWindowUpdates: 0,
    pings: 0,
    rstReceived: {}
  }
  conn.peerInfo = info

  const rawQueue = []
  let pushHeadersPending = null

  // 1. frame-level view (runs before spdy-transport's body parsing)
  const origBody = parser.onFrameBody
  parser.onFrameBody = function (header, buffer, cb) {
    const name = header.control ? (TYPE_NAMES[header.type] || 'UNKNOWN_' + header.type) : 'DATA'
    info.frames[name] = (info.frames[name] || 0) + 1
    if (header.control && header.type === 4 && buffer.size >= 4) {
      const c = buffer.clone(buffer.size)
      const n = c.readUInt32BE()
      const entries = []
      const named = {}
      for (let i = 0; i < n && c.size >= 8; i++) {
        const word = this.version === 2 ? c.readUInt32LE() : c.readUInt32BE()
        const flags = (this.version === 2 ? word >>> 24 : word >>> 24) & 0xff
        const id = word & 0xffffff
        const value = c.readUInt32BE()
        entries.push({ id, flags, value })
        if (SETTING_NAMES[id] && !(SETTING_NAMES[id] in named)) named[SETTING_NAMES[id]] = value
      }
      const rec = Object.assign({}, named, { entries, clear: (header.flags & 1) === 1 })
      info.settingsFrames.push(rec)
      info.settings = Object.assign({}, info.settings || {}, rec)
    }
    if (header.control && header.type === 9 && buffer.size >= 8) {
      const c = buffer.clone(8)
      if ((c.readUInt32BE() & 0x7fffffff) === 0) info.sessionWindowUpdates++
    }
    if (header.control && header.type === 7 && buffer.size >= 4) {
      const c = buffer.clone(buffer.size)
      info.goaway = { last_good: c.readUInt32BE() & 0x7fffffff, status: c.size >= 4 ? c.readUInt32BE() : null }
    }
    if (header.control && header.type === 6) info.pings++
    if (header.control && header.type === 3 && buffer.size >= 8) {
      const c = buffer.clone(8)
      const id = c.readUInt32BE() & 0x7fffffff
      const code = c.readUInt32BE()
      info.rstReceived[id] = RST_NAMES[code] || String(code)
    }
    let done = cb
    if (opts.fixHeadersFin !== false && header.control && header.type === 8 && (header.flags & 1)) {
      done = function (err, frame) {
        if (frame && !Array.isArray(frame) && frame.type === 'HEADERS') frame.fin = true
        cb(err, frame)
      }
    }
    return origBody.call(this, header, buffer, done)
  }

  // 2. raw header blocks, taken from the shared inflate context's output
  function wrapDecompress () {
    const lock = parser.decompress
    if (!lock || lock.__rawWrapped) return
    lock.__rawWrapped = true
    const origWrite = lock.write
    lock.write = function (chunks, callback) {
      if (callback.__rawWrapped) return origWrite.call(this, chunks, callback)
      const wrapped = function (err, out) {
        if (!err) {
          let raw
          try {
            const d = decodeNV(Buffer.concat(out), state.version === 2 ? 2 : 3)
            raw = pairsToHeaders(d.pairs)
          } catch (e) {
            raw = { __error: e.message }
          }
          rawQueue.push(raw)
        }
        callback(err, out)
      }
      wrapped.__rawWrapped = true
      return origWrite.call(this, chunks, wrapped)
    }
  }
  if (parser.decompress) wrapDecompress()
  conn.on('version', wrapDecompress)

  parser.prependListener('data', function (frame) {
    if (frame.type === 'PUSH_PROMISE') {
      pushHeadersPending = rawQueue.shift()
      attachRaw(frame.headers, pushHeadersPending)
    } else if (frame.type === 'HEADERS') {
      if (pushHeadersPending) {
        attachRaw(frame.headers, pushHeadersPending)
        pushHeadersPending = null
      } else {
        attachRaw(frame.headers, rawQueue.shift())
      }
    }
  })
  return info
}

// opts: isServer, protocol ('spdy/3.1'|'spdy/3'|'spdy/2'|null = autodetect),
// windowSize, maxStreams, acceptPush, headerCompression, scheme (client only:
// value of `:scheme` in requests; spdy-transport alone always sends https),
// fixHeadersFin.
function createConnection (socket, opts) {
  const conn = transport.connection.create(socket, {
    protocol: 'spdy',
    isServer: !!opts.isServer,
    windowSize: opts.windowSize,
    maxStreams: opts.maxStreams,
    acceptPush: opts.acceptPush,
    autoSpdy31: opts.autoSpdy31 !== false,
    headerCompression: opts.headerCompression !== false
  })
  instrument(conn, opts)
  if (!opts.isServer && opts.scheme) {
    const framer = conn._spdyState.framer
    const origRequest = framer.requestFrame
    framer.requestFrame = function (frame, callback) {
      return origRequest.call(this, Object.assign({}, frame, { scheme: opts.scheme }), callback)
    }
  }
  const v = versionOf(opts.protocol)
  if (v !== null) conn.start(v)
  return conn
}

module.exports = { RAW, TYPE_NAMES, RST_NAMES, SETTING_NAMES, versionOf, rawHeaders, createConnection }
