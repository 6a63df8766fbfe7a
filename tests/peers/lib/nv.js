'use strict'
// Raw SPDY name/value block decoding (after inflation), kept independent of
// spdy-transport's own lossy conversion (which drops `:version`, renames
// `:host`, trims `:status` and comma-joins repeated values).
//
// Strings are decoded as latin1 so every byte maps to one code point.

function decodeNV (buf, version) {
  const size = version === 2 ? 2 : 4
  let off = 0
  const readLen = () => {
    if (off + size > buf.length) throw new Error('NV block truncated')
    const n = size === 2 ? buf.readUInt16BE(off) : buf.readUInt32BE(off)
    off += size
    return n
  }
  const readStr = () => {
    const n = readLen()
    if (off + n > buf.length) throw new Error('NV string exceeds block')
    const s = buf.toString('latin1', off, off + n)
    off += n
    return s
  }
  const count = readLen()
  const pairs = []
  for (let i = 0; i < count; i++) {
    const name = readStr()
    const value = readStr()
    pairs.push([name, value])
  }
  return { pairs, trailing: buf.length - off }
}

// {name: value} with NUL-separated values (and repeated names) as arrays.
function pairsToHeaders (pairs) {
  const out = {}
  for (const [name, value] of pairs) {
    const vals = value.includes('\0') ? value.split('\0') : [value]
    if (Object.prototype.hasOwnProperty.call(out, name)) {
      const prev = Array.isArray(out[name]) ? out[name] : [out[name]]
      out[name] = prev.concat(vals)
    } else {
      out[name] = vals.length > 1 ? vals : vals[0]
    }
  }
  return out
}

module.exports = { decodeNV, pairsToHeaders }
