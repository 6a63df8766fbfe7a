'use strict'
// What the benchmarks' node-spdy servers share (node_spdy_server.js, node_spdy_media.js):
// the options from argv, a SPDY/3.1 server session per socket (spdy-transport from
// tests/peers/node_modules), listening cleartext or TLS, printing {"port": N}, and exiting
// when stdin closes or on SIGTERM. Each server only says what a stream gets.

const path = require('path')
const net = require('net')
const tls = require('tls')
const fs = require('fs')
const transport = require(path.join(__dirname, '..', 'tests', 'peers', 'node_modules',
  'spdy-transport'))

function options (defaults) {
  return Object.assign({ host: '127.0.0.1', port: 0, tls: false }, defaults,
    process.argv[2] ? JSON.parse(process.argv[2]) : {})
}

function listen (opts, onStream) {
  function serve (socket) {
    const conn = transport.connection.create(socket, {
      protocol: 'spdy', isServer: true, windowSize: 1 << 20, autoSpdy31: true
    })
    conn.start(3.1)
    conn.on('error', function () {})
    socket.on('error', function () {})
    conn.on('stream', function (stream) {
      stream.on('error', function () {})
      onStream(stream, new URL(stream.path, 'http://x'))
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
}

module.exports = { options, listen }
