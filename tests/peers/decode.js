#!/usr/bin/env node
'use strict'
// Decode SPDY frames with spdy-transport (independent of spdyasgi).
// Input (stdin, or argv[2] as JSON text / file path):
//   {"version": 3, "frames_hex": "...", "role": "client"|"server"}
// `role` is the side that SENT the frames (it only matters for spdy-transport's
// PING ack interpretation).  Output: a JSON list, one object per wire frame:
//   {index, type, control, version?, type_code?, stream_id, flags, fin, length,
//    headers?, header_pairs?, priority?, associated?, slot?, unidirectional?,
//    data_length?, data_sha256?, data_hex?, settings?, clear?, ping_id?,
//    last_good?, status?, status_name?, delta?, error?,
//    transport?: <spdy-transport parser's view>, transport_error?}
// Batch mode: a JSON list of such inputs gives a JSON list of frame lists.

const fs = require('fs')
const { decodeFrames } = require('./lib/decode')

function readInput () {
  const arg = process.argv[2]
  if (arg === undefined || arg === '-') return JSON.parse(fs.readFileSync(0, 'utf8'))
  if (arg.trim().startsWith('{')) return JSON.parse(arg)
  return JSON.parse(fs.readFileSync(arg, 'utf8'))
}

function decodeOne (input) {
  const hex = (input.frames_hex || input.hex || '').replace(/\s+/g, '')
  return decodeFrames(Buffer.from(hex, 'hex'), input.version || 3, input.role || 'client')
}

async function main () {
  const input = readInput()
  let out
  if (Array.isArray(input)) {
    // batch mode: a list of inputs -> a list of frame lists
    out = []
    for (const item of input) out.push(await decodeOne(item))
  } else {
    out = await decodeOne(input)
  }
  process.stdout.write(JSON.stringify(out) + '\n', function () { process.exit(0) })
}

main().catch(function (e) {
  process.stdout.write(JSON.stringify({ error: e.stack || String(e) }) + '\n', function () { process.exit(1) })
})
