#!/usr/bin/env node
'use strict'
// SPDY test client driven by a JSON plan; prints one JSON result on stdout.
//
//   node client.js '<plan json>'      (or a path to a JSON file, or '-'/nothing
//                                      to read the plan from stdin)
//
// Built directly on spdy-transport 3.0.0 (node-spdy's protocol layer), without
// node-spdy's handle-thing socket glue, which is broken on Node >= 12 for
// request bodies and large responses.  See README.md for the plan/result
// formats.

const net = require('net')
const tls = require('tls')
const http = require('http')
const https = require('https')
const crypto = require('crypto')
const fs = require('fs')

const body = require('./lib/body')
const peers = require('./lib/spdy')

function readPlan () {
  const arg = process.argv[2]
  let text
  if (arg === undefined || arg === '-') {
    text = fs.readFileSync(0, 'utf8')
  } else if (arg.trim().startsWith('{')) {
    text = arg
  } else {
    text = fs.readFileSync(arg, 'utf8')
  }
  return JSON.parse(text)
}

function normalize (plan) {
  if (!plan.port) throw new Error('plan.port is required')
  const p = Object.assign({
    host: '127.0.0.1',
    tls: false,
    protocol: 'spdy/3.1',
    sessions: 1,
    requests: [],
    concurrency_per_session: 0,
    timeout_ms: 30000,
    accept_push: true,
    reset_pushes: false,
    header_compression: true,
    fix_headers_fin: true,
    window_size: undefined,
    content_length: true
  }, plan)
  if (!p.alpn) p.alpn = [p.protocol]
  if (!p.scheme) p.scheme = p.tls ? 'https' : 'http'
  if (!p.authority) p.authority = p.host + ':' + p.port
  const jobs = []
  p.requests.forEach(function (r, index) {
    const repeat = r.repeat === undefined ? 1 : r.repeat
    for (let k = 0; k < repeat; k++) {
      jobs.push(Object.assign({ method: 'GET', path: '/', headers: {}, body: null }, r, { index, rep: k }))
    }
  })
  p.jobs = jobs
  return p
}

function bodySource (spec, chunkSize) {
  if (!spec) return null
  if (spec.hex !== undefined) return { length: spec.hex.length / 2, chunks: [Buffer.from(spec.hex, 'hex')] }
  if (spec.text !== undefined) {
    const b = Buffer.from(spec.text, 'utf8')
    return { length: b.length, chunks: [b] }
  }
  if (spec.size !== undefined) {
    return { length: spec.size, chunks: body.chunks(spec.size, spec.seed, { chunkSize: chunkSize || 65536 }) }
  }
  throw new Error('body must be {size, seed} | {hex} | {text} | null')
}

function waitWritable (stream) {
  return new Promise(function (resolve) {
    function done () {
      stream.removeListener('drain', done)
      stream.removeListener('close', done)
      stream.removeListener('error', done)
      resolve()
    }
    stream.on('drain', done)
    stream.on('close', done)
    stream.on('error', done)
  })
}

// Writes the request body with backpressure.  `ctl.stopped()` aborts early;
// `ctl.onBytes(n)` sees the running total.
async function pumpBody (stream, src, ctl) {
  if (!src) {
    stream.end()
    return
  }
  let sent = 0
  for (const chunk of src.chunks) {
    if (ctl.stopped()) return
    const ok = stream.write(chunk)
    sent += chunk.length
    if (ctl.onBytes(sent) === false) return
    if (!ok) await waitWritable(stream)
  }
  if (!ctl.stopped()) stream.end()
}

function requestHeaders (plan, job, src) {
  const headers = Object.assign({}, job.headers || {})
  if (src && plan.content_length && job.content_length !== false) {
    const has = Object.keys(headers).some(function (k) { return k.toLowerCase() === 'content-length' })
    if (!has) headers['content-length'] = String(src.length)
  }
  return headers
}

function newResult (sessionIndex, job) {
  return {
    session: sessionIndex,
    index: job.index,
    repeat: job.rep,
    method: job.method,
    path: job.path,
    stream_id: null,
    status: null,
    headers: null,
    trailers: null,
    body_sha256: null,
    body_length: 0,
    pushes: [],
    error: null,
    rst: null,
    aborted: false,
    elapsed_ms: null
  }
}

function rstFromError (err) {
  const m = /Got RST: (\S+)/.exec(err && err.message ? err.message : '')
  return m ? m[1] : null
}

// ---------------------------------------------------------------- SPDY path

function spdyRequest (plan, conn, socket, sessionIndex, job, registry) {
  return new Promise(function (resolve) {
    const started = Date.now()
    const res = newResult(sessionIndex, job)
    if (plan.timedOut) {
      res.error = 'timeout'
      resolve(res)
      return
    }
    registry.add(res)
    const hash = crypto.createHash('sha256')
    const capture = job.capture_body || plan.capture_body || 0
    const captured = []
    let capturedLen = 0
    let ended = false
    let finished = false
    let pendingPushes = 0
    let stopped = false
    let timer = null

    let src
    try {
      src = bodySource(job.body, job.chunk_size)
    } catch (e) {
      res.error = e.message
      registry.delete(res)
      resolve(res)
      return
    }

    function finish () {
      if (finished) return
      if (!ended || pendingPushes > 0) return
      finished = true
      if (timer) clearTimeout(timer)
      res.elapsed_ms = Date.now() - started
      if (res.body_sha256 === null) res.body_sha256 = hash.digest('hex')
      if (capture) res.body_text = Buffer.concat(captured).toString('utf8')
      registry.delete(res)
      resolve(res)
    }
    res._finish = function (reason) {
      if (finished) return
      if (!ended && !res.error) res.error = reason
      ended = true
      pendingPushes = 0
      for (const p of res.pushes) if (p.body_sha256 === null && !p.error) p.error = reason
      finish()
    }

    function endMain (error) {
      if (ended) return
      if (error && !res.error) res.error = error
      ended = true
      res.body_sha256 = hash.digest('hex')
      finish()
    }

    function localAbort (how) {
      if (stopped) return
      stopped = true
      res.aborted = how
      if (how === 'socket') {
        socket.destroy()
      } else {
        stream.abort()
      }
      endMain(null)
    }

    const stream = conn.reserveStream({
      method: job.method,
      path: job.path,
      host: job.authority || plan.authority,
      headers: requestHeaders(plan, job, src),
      priority: job.priority === undefined ? undefined : {
        parent: 0,
        exclusive: false,
        weight: (((job.priority / 7) * 35) | 0) + 1
      }
    }, function (err) {
      if (err) endMain(err.message)
    })
    res.stream_id = stream.id

    stream.on('response', function (status, headers) {
      res.status = status
      res.headers = peers.rawHeaders(headers) || headers
    })
    stream.on('headers', function (headers) {
      res.trailers = peers.rawHeaders(headers) || headers
    })
    stream.on('data', function (chunk) {
      if (stopped || ended) return
      hash.update(chunk)
      res.body_length += chunk.length
      if (capture && capturedLen < capture) {
        const part = chunk.subarray(0, capture - capturedLen)
        captured.push(part)
        capturedLen += part.length
      }
      if (job.abort_after_bytes !== undefined && res.body_length >= job.abort_after_bytes) {
        localAbort('stream')
      } else if (job.destroy_socket_after_bytes !== undefined &&
                 res.body_length >= job.destroy_socket_after_bytes) {
        localAbort('socket')
      }
    })
    stream.on('end', function () { endMain(null) })
    stream.on('error', function (err) {
      const code = rstFromError(err)
      if (code) res.rst = code
      endMain(code ? 'RST_STREAM ' + code : err.message)
    })
    stream.on('close', function (err) {
      // abort() (local or after a received RST) closes without 'end'.  A
      // normal close is emitted from spdy-transport's own 'end' listener,
      // i.e. before ours: look again on the next tick.
      process.nextTick(function () { onClose(err) })
    })
    function onClose (err) {
      if (!ended) {
        const got = conn.peerInfo.rstReceived[stream.id]
        if (got && !res.rst) res.rst = got
        let why = 'stream closed before FIN'
        if (res.rst) why += ' (RST_STREAM ' + res.rst + ')'
        else if (socket.destroyed) why += ' (connection closed)'
        endMain(stopped ? null : why)
      }
    }

    stream.on('pushPromise', function (push) {
      const p = {
        stream_id: push.id,
        path: push.path,
        headers: peers.rawHeaders(push.headers) || push.headers,
        status: null,
        body_sha256: null,
        body_length: 0,
        error: null,
        reset: false
      }
      res.pushes.push(p)
      if (job.reset_pushes || plan.reset_pushes) {
        p.reset = true
        push.abort()
        return
      }
      pendingPushes++
      const ph = crypto.createHash('sha256')
      let pdone = false
      const pushEnd = function (error) {
        if (pdone) return
        pdone = true
        if (error && !p.error) p.error = error
        p.body_sha256 = ph.digest('hex')
        pendingPushes--
        finish()
      }
      push.on('response', function (status) { p.status = status })
      push.on('headers', function (headers) { p.trailers = peers.rawHeaders(headers) || headers })
      push.on('data', function (chunk) {
        if (pdone) return
        ph.update(chunk)
        p.body_length += chunk.length
      })
      push.on('end', function () { pushEnd(null) })
      push.on('error', function (err) { pushEnd(err.message) })
      push.on('close', function () { process.nextTick(pushEnd, 'push closed before FIN') })
    })

    if (job.abort_after_ms !== undefined) {
      timer = setTimeout(function () { localAbort('stream') }, job.abort_after_ms)
    }

    const ctl = {
      stopped: function () { return stopped || ended },
      onBytes: function (n) {
        if (job.abort_upload_after_bytes !== undefined && n >= job.abort_upload_after_bytes) {
          localAbort('stream')
          return false
        }
        return true
      }
    }
    pumpBody(stream, src, ctl).catch(function (e) { endMain(e.message) })
  })
}

async function runJobs (jobs, limit, fn) {
  const out = new Array(jobs.length)
  let next = 0
  const n = limit > 0 ? Math.min(limit, jobs.length) : jobs.length
  async function worker () {
    while (next < jobs.length) {
      const i = next++
      out[i] = await fn(jobs[i])
    }
  }
  const workers = []
  for (let i = 0; i < n; i++) workers.push(worker())
  await Promise.all(workers)
  return out
}

function connect (plan) {
  return new Promise(function (resolve, reject) {
    let socket
    if (plan.tls) {
      const opts = {
        host: plan.host,
        port: plan.port,
        ALPNProtocols: plan.alpn,
        rejectUnauthorized: false
      }
      if (plan.servername || !net.isIP(plan.host)) opts.servername = plan.servername || plan.host
      socket = tls.connect(opts)
      socket.once('secureConnect', function () {
        socket.removeListener('error', reject)
        resolve({ socket, protocol: socket.alpnProtocol || null })
      })
    } else {
      socket = net.connect({ host: plan.host, port: plan.port })
      socket.once('connect', function () {
        socket.removeListener('error', reject)
        resolve({ socket, protocol: plan.protocol })
      })
    }
    socket.setNoDelay(true)
    socket.once('error', reject)
  })
}

async function spdySession (plan, index, socket, protocol, registry, sessionInfo) {
  const conn = peers.createConnection(socket, {
    isServer: false,
    protocol,
    windowSize: plan.window_size,
    acceptPush: plan.accept_push,
    headerCompression: plan.header_compression,
    fixHeadersFin: plan.fix_headers_fin,
    scheme: plan.scheme
  })
  sessionInfo.conn = conn
  conn.on('error', function (err) {
    if (!sessionInfo.error) sessionInfo.error = err.message
  })
  socket.on('error', function () {})
  const results = await runJobs(plan.jobs, plan.concurrency_per_session, function (job) {
    return spdyRequest(plan, conn, socket, index, job, registry)
  })
  if (plan.ping) {
    await new Promise(function (resolve) {
      const t = setTimeout(function () { sessionInfo.ping_ok = false; resolve() }, 2000)
      conn.ping(function () { clearTimeout(t); sessionInfo.ping_ok = true; resolve() })
    })
  }
  // graceful end: GOAWAY(OK) then close
  await new Promise(function (resolve) {
    if (socket.destroyed) return resolve()
    if (plan.timedOut) {
      socket.destroy()
      return resolve()
    }
    const t = setTimeout(function () { socket.destroy(); resolve() }, 1000)
    socket.once('close', function () { clearTimeout(t); resolve() })
    try {
      conn.end()
    } catch (e) {
      socket.destroy()
    }
  })
  return results
}

// ------------------------------------------------------------- HTTP/1.1 path

function http1Session (plan, index, registry) {
  const mod = plan.tls ? https : http
  const agent = new mod.Agent({
    keepAlive: true,
    maxSockets: plan.concurrency_per_session > 0 ? plan.concurrency_per_session : Infinity,
    rejectUnauthorized: false,
    ALPNProtocols: ['http/1.1']
  })
  return runJobs(plan.jobs, plan.concurrency_per_session, function (job) {
    return new Promise(function (resolve) {
      const started = Date.now()
      const res = newResult(index, job)
      if (plan.timedOut) {
        res.error = 'timeout'
        resolve(res)
        return
      }
      registry.add(res)
      const hash = crypto.createHash('sha256')
      let done = false
      let src
      const finish = function (err) {
        if (done) return
        done = true
        if (err && !res.error) res.error = err
        res.body_sha256 = hash.digest('hex')
        res.elapsed_ms = Date.now() - started
        registry.delete(res)
        resolve(res)
      }
      res._finish = finish
      try {
        src = bodySource(job.body, job.chunk_size)
      } catch (e) {
        return finish(e.message)
      }
      const req = mod.request({
        host: plan.host,
        port: plan.port,
        method: job.method,
        path: job.path,
        headers: requestHeaders(plan, job, src),
        agent
      }, function (resp) {
        res.status = resp.statusCode
        const h = {}
        for (let i = 0; i < resp.rawHeaders.length; i += 2) {
          const k = resp.rawHeaders[i].toLowerCase()
          const v = resp.rawHeaders[i + 1]
          if (k in h) h[k] = [].concat(h[k], v)
          else h[k] = v
        }
        res.headers = h
        resp.on('data', function (c) {
          hash.update(c)
          res.body_length += c.length
          if (job.abort_after_bytes !== undefined && res.body_length >= job.abort_after_bytes) {
            res.aborted = 'stream'
            req.destroy()
            finish(null)
          }
        })
        resp.on('end', function () { finish(null) })
        resp.on('error', function (e) { finish(e.message) })
      })
      req.on('error', function (e) { finish(e.message) })
      pumpBody(req, src, { stopped: function () { return done }, onBytes: function () { return true } })
        .catch(function (e) { finish(e.message) })
    })
  }).then(function (results) {
    agent.destroy()
    return results
  })
}

// ---------------------------------------------------------------------- main

async function runSession (plan, index, registry) {
  const info = { index, protocol: null, error: null }
  let results
  if (!plan.tls && plan.protocol === 'http/1.1') {
    info.protocol = 'http/1.1'
    results = await http1Session(plan, index, registry)
    return { info, results }
  }
  let conn
  try {
    conn = await connect(plan)
  } catch (e) {
    info.error = 'connect: ' + e.message
    return { info, results: plan.jobs.map(function (job) { const r = newResult(index, job); r.error = info.error; return r }) }
  }
  info.protocol = conn.protocol
  if (peers.versionOf(conn.protocol) !== null) {
    results = await spdySession(plan, index, conn.socket, conn.protocol, registry, info)
  } else {
    // ALPN picked http/1.1 (or nothing): fall back to HTTP/1.1 requests
    conn.socket.destroy()
    results = await http1Session(plan, index, registry)
  }
  return { info, results }
}

function sessionSummary (s) {
  const peerInfo = s.info.conn ? s.info.conn.peerInfo : null
  return {
    index: s.info.index,
    protocol: s.info.protocol,
    error: s.info.error,
    settings: peerInfo ? peerInfo.settings : null,
    goaway: peerInfo ? peerInfo.goaway : null,
    frames: peerInfo ? peerInfo.frames : null,
    session_window_updates: peerInfo ? peerInfo.sessionWindowUpdates : null,
    ping_ok: s.info.ping_ok
  }
}

function emit (obj, code) {
  const text = JSON.stringify(obj) + '\n'
  process.stdout.write(text, function () { process.exit(code) })
}

function main () {
  let plan
  try {
    plan = normalize(readPlan())
  } catch (e) {
    emit({ error: 'bad plan: ' + e.message }, 2)
    return
  }
  const started = Date.now()
  const registry = new Set()
  const sessions = []
  const timer = setTimeout(function () {
    plan.timedOut = true
    for (const r of Array.from(registry)) r._finish('timeout')
    for (const s of sessions) if (s.info && s.info.conn) s.info.conn.socket.destroy()
  }, plan.timeout_ms)

  const runs = []
  for (let i = 0; i < plan.sessions; i++) {
    const holder = { info: null }
    sessions.push(holder)
    runs.push(runSession(plan, i, registry).then(function (s) { holder.info = s.info; return s }))
  }
  Promise.all(runs).then(function (all) {
    clearTimeout(timer)
    const results = []
    for (const s of all) {
      for (const r of s.results) {
        delete r._finish
        results.push(r)
      }
    }
    const summaries = all.map(sessionSummary)
    emit({
      protocol: summaries.length ? summaries[0].protocol : null,
      results,
      settings: summaries.length ? summaries[0].settings : null,
      sessions: summaries,
      elapsed_ms: Date.now() - started,
      timed_out: !!plan.timedOut
    }, 0)
  }).catch(function (e) {
    emit({ error: 'client failure: ' + (e && e.stack ? e.stack : String(e)) }, 1)
  })
}

main()
