'use strict'
// Decode one direction of a SPDY session twice:
//   1. frame by frame here (frame header fields, fixed-layout payloads, and
//      header blocks inflated with spdy-transport's compressionPool inflater,
//      i.e. Node's zlib primed with spdy-transport's dictionary), and
//   2. with spdy-transport's own protocol.spdy parser (its view is attached
//      to each frame as `transport`, its errors as `transport_error`).

const crypto = require('crypto')
const transport = require('spdy-transport')
const { decodeNV, pairsToHeaders } = require('./nv')
const { TYPE_NAMES, RST_NAMES, SETTING_NAMES } = require('./spdy')

const GOAWAY_NAMES = { 0: 'OK', 1: 'PROTOCOL_ERROR', 2: 'INTERNAL_ERROR' }

function splitFrames (buf, version) {
  const frames = []
  let off = 0
  while (off < buf.length) {
    if (buf.length - off < 8) {
      frames.push({ index: frames.length, type: 'TRUNCATED', offset: off, error: 'incomplete frame header' })
      break
    }
    const control = (buf[off] & 0x80) !== 0
    const flags = buf[off + 4]
    const length = buf.readUIntBE(off + 5, 3)
    const f = { index: frames.length, offset: off, length, flags, fin: (flags & 1) === 1 }
    if (control) {
      f.control = true
      f.version = buf.readUInt16BE(off) & 0x7fff
      f.type_code = buf.readUInt16BE(off + 2)
      f.type = TYPE_NAMES[f.type_code] || 'UNKNOWN'
      if (f.type === 'NOOP' && version !== 2) f.type = 'UNKNOWN'
      if (f.type === 'CREDENTIAL' && version !== 3) f.type = 'UNKNOWN'
    } else {
      f.control = false
      f.type = 'DATA'
      f.stream_id = buf.readUInt32BE(off) & 0x7fffffff
    }
    if (buf.length - off - 8 < length) {
      f.error = 'incomplete frame payload (' + (buf.length - off - 8) + ' of ' + length + ' bytes)'
      f.truncated = true
      f.payload = buf.subarray(off + 8)
      frames.push(f)
      break
    }
    f.payload = buf.subarray(off + 8, off + 8 + length)
    frames.push(f)
    off += 8 + length
  }
  return frames
}

function fixedFields (f, version) {
  const p = f.payload
  const need = function (n) {
    if (p.length < n) throw new Error(f.type + ' payload too short (' + p.length + ' < ' + n + ')')
  }
  switch (f.type) {
    case 'DATA':
      f.data_length = p.length
      f.data_sha256 = crypto.createHash('sha256').update(p).digest('hex')
      if (p.length <= 64) f.data_hex = p.toString('hex')
      break
    case 'SYN_STREAM':
      need(version === 2 ? 12 : 10)
      f.stream_id = p.readUInt32BE(0) & 0x7fffffff
      f.associated = p.readUInt32BE(4) & 0x7fffffff
      f.priority = version === 2 ? p[8] >> 6 : p[8] >> 5
      if (version !== 2) f.slot = p[9]
      f.unidirectional = (f.flags & 2) === 2
      f.block = p.subarray(version === 2 ? 10 : 10)
      break
    case 'SYN_REPLY':
    case 'HEADERS':
      need(version === 2 ? 6 : 4)
      f.stream_id = p.readUInt32BE(0) & 0x7fffffff
      f.block = p.subarray(version === 2 ? 6 : 4)
      break
    case 'RST_STREAM':
      need(8)
      f.stream_id = p.readUInt32BE(0) & 0x7fffffff
      f.status = p.readUInt32BE(4)
      f.status_name = RST_NAMES[f.status] || null
      break
    case 'SETTINGS': {
      need(4)
      const n = p.readUInt32BE(0)
      f.stream_id = 0
      f.clear = (f.flags & 1) === 1
      f.settings = []
      for (let i = 0; i < n && 4 + 8 * i + 8 <= p.length; i++) {
        const o = 4 + 8 * i
        let id, flags
        if (version === 2) {
          id = p.readUIntLE(o, 3)
          flags = p[o + 3]
        } else {
          flags = p[o]
          id = p.readUIntBE(o + 1, 3)
        }
        f.settings.push({ id, name: SETTING_NAMES[id] || null, flags, value: p.readUInt32BE(o + 4) })
      }
      if (p.length !== 4 + 8 * n) f.error = 'SETTINGS length ' + p.length + ' != 4 + 8 * ' + n
      break
    }
    case 'PING':
      need(4)
      f.stream_id = 0
      f.ping_id = p.readUInt32BE(0)
      break
    case 'GOAWAY':
      need(4)
      f.stream_id = 0
      f.last_good = p.readUInt32BE(0) & 0x7fffffff
      if (p.length >= 8) {
        f.status = p.readUInt32BE(4)
        f.status_name = GOAWAY_NAMES[f.status] || null
      }
      break
    case 'WINDOW_UPDATE':
      need(8)
      f.stream_id = p.readUInt32BE(0) & 0x7fffffff
      f.delta = p.readUInt32BE(4) & 0x7fffffff
      break
    default:
      if (p.length <= 64) f.payload_hex = p.toString('hex')
  }
}

function inflater (version) {
  const pair = transport.protocol.spdy.compressionPool.create(false).get(version)
  const lock = new transport.utils.LockStream(pair.decompress)
  return function (block) {
    return new Promise(function (resolve, reject) {
      lock.write([block], function (err, out) {
        if (err) reject(err)
        else resolve(Buffer.concat(out))
      })
    })
  }
}

function sanitize (value) {
  if (Buffer.isBuffer(value)) return value.length <= 64 ? value.toString('hex') : '<' + value.length + ' bytes>'
  if (Array.isArray(value)) return value.map(sanitize)
  if (value && typeof value === 'object') {
    const out = {}
    for (const k of Object.keys(value)) out[k] = sanitize(value[k])
    return out
  }
  return value
}

function runTransportParser (buf, version, role, frames) {
  return new Promise(function (resolve) {
    const parser = transport.protocol.spdy.parser.create({ isServer: role === 'client', window: null })
    const pv = version === 3 ? 3 : version
    parser.setVersion(pv)
    parser.setCompression(transport.protocol.spdy.compressionPool.create(false).get(pv))
    let current = -1
    const origHead = parser.onFrameHead
    parser.onFrameHead = function (buffer, cb) {
      current++
      return origHead.call(this, buffer, cb)
    }
    parser.on('data', function (frame) {
      // frame-head parsing emits nothing; every emitted object belongs to the
      // wire frame whose header was parsed last
      const f = frames[current]
      if (!f) return
      const view = sanitize(frame)
      if (f.transport === undefined) f.transport = view
      else if (Array.isArray(f.transport)) f.transport.push(view)
      else f.transport = [f.transport, view]
    })
    let done = false
    const finish = function () {
      if (!done) {
        done = true
        resolve()
      }
    }
    parser.on('error', function (err) {
      const f = frames[Math.max(current, 0)]
      if (f) f.transport_error = err.message || String(err)
      finish()
    })
    parser.on('end', finish)
    parser.on('finish', function () { setImmediate(finish) })
    parser.end(buf)
    parser.resume()
  })
}

async function decodeFrames (buf, version, role) {
  version = version === 3.1 ? 3 : (version || 3)
  const frames = splitFrames(buf, version)
  const inflate = inflater(version)
  let zlibBroken = null
  for (const f of frames) {
    if (f.type === 'TRUNCATED' || f.truncated) continue
    try {
      fixedFields(f, version)
    } catch (e) {
      f.error = e.message
      continue
    }
    if (f.block !== undefined) {
      if (f.block.length === 0) {
        f.headers = {}
        f.header_pairs = []
      } else if (zlibBroken) {
        f.error = 'header context unusable: ' + zlibBroken
      } else {
        try {
          const nv = decodeNV(await inflate(f.block), version)
          f.headers = pairsToHeaders(nv.pairs)
          f.header_pairs = nv.pairs
          if (nv.trailing) f.error = 'NV block has ' + nv.trailing + ' trailing bytes'
        } catch (e) {
          f.error = 'header block: ' + e.message
          if (!/NV/.test(e.message)) zlibBroken = e.message
        }
      }
    }
  }
  await runTransportParser(buf, version, role, frames)
  return frames.map(function (f) {
    const out = Object.assign({}, f)
    delete out.payload
    delete out.block
    delete out.offset
    return out
  })
}

module.exports = { decodeFrames, splitFrames }
