'use strict'
// Deterministic request/response bodies shared by client.js, server.js and
// tests/peers.py (body_bytes / body_sha256 implement the same definition).
//
//   body(size, seed) = first `size` bytes of  B(0) || B(1) || B(2) || ...
//   B(i)             = SHAKE128(S || uint64_be(i)), 4096 bytes of output
//   S                = UTF-8 bytes of the seed written in decimal (integer
//                      seeds) or the seed string itself (string seeds)
//
// SHAKE128 (an XOF) is used instead of chained SHA-256 blocks because it is
// ~15x faster in both Node and CPython while being just as portable
// (hashlib.shake_128 / crypto.createHash('shake128', {outputLength})).

const crypto = require('crypto')
const { Readable } = require('stream')

const BLOCK = 4096

function seedBytes (seed) {
  if (seed === undefined || seed === null) seed = 0
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new Error('seed must be a non-negative integer or a string')
    }
    return Buffer.from(String(seed), 'utf8')
  }
  if (typeof seed === 'string') return Buffer.from(seed, 'utf8')
  throw new Error('seed must be a non-negative integer or a string')
}

function block (seedBuf, index) {
  const ctr = Buffer.alloc(8)
  ctr.writeBigUInt64BE(BigInt(index))
  return crypto.createHash('shake128', { outputLength: BLOCK })
    .update(seedBuf).update(ctr).digest()
}

// Bytes [start, end) of body(size, seed) as one Buffer (keep it small).
function slice (size, seed, start, end) {
  if (start === undefined) start = 0
  if (end === undefined || end > size) end = size
  if (start >= end) return Buffer.alloc(0)
  const s = seedBytes(seed)
  const parts = []
  for (let i = Math.floor(start / BLOCK); i * BLOCK < end; i++) {
    const b = block(s, i)
    const lo = Math.max(start - i * BLOCK, 0)
    const hi = Math.min(end - i * BLOCK, BLOCK)
    parts.push(b.subarray(lo, hi))
  }
  return Buffer.concat(parts)
}

// Generator of chunks (<= chunkSize bytes) covering [start, end) of the body.
function * chunks (size, seed, opts) {
  opts = opts || {}
  const chunkSize = opts.chunkSize || 65536
  let pos = opts.start || 0
  const end = opts.end === undefined || opts.end > size ? size : opts.end
  while (pos < end) {
    const n = Math.min(chunkSize, end - pos)
    yield slice(size, seed, pos, pos + n)
    pos += n
  }
}

// A Readable stream (with backpressure) of the body or a byte range of it.
function stream (size, seed, opts) {
  return Readable.from(chunks(size, seed, opts), { objectMode: false })
}

function sha256 (size, seed) {
  const h = crypto.createHash('sha256')
  for (const c of chunks(size, seed, { chunkSize: 1 << 20 })) h.update(c)
  return h.digest('hex')
}

module.exports = { BLOCK, seedBytes, slice, chunks, stream, sha256 }
