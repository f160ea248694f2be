/**
 * The fan-out floor's server (see byteFloor.ts): a node process that does nothing but write
 * given SSE bytes to every connection, as fast as each socket takes them. No database, no
 * encoding, no framing at write time: what node and the loopback need for the bytes alone.
 *
 *   node --import tsx bench/lib/floorServer.ts BYTES_FILE OFFSETS_FILE
 *
 * Prints `listening <port>` once it accepts connections; on a `go` line on stdin it writes
 * every batch (the byte ranges between consecutive offsets) to every connection so far.
 */
import { readFileSync } from 'node:fs'
import { createServer, type AddressInfo, type Socket } from 'node:net'

const [bytesFile, offsetsFile] = process.argv.slice(2) as [string, string]
const bytes = readFileSync(bytesFile)
const offsets = JSON.parse(readFileSync(offsetsFile, 'utf8')) as number[]
const batches = offsets.slice(1).map((end, i) => bytes.subarray(offsets[i], end))

const HEAD = Buffer.from(
  'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n' +
    'Transfer-Encoding: chunked\r\n\r\n',
  'latin1',
)
const streams: Socket[] = []

const server = createServer((socket) => {
  socket.setNoDelay(true)
  socket.on('error', () => {})
  let head = ''
  const readHead = (data: Buffer) => {
    head += data.toString('latin1')
    if (!head.includes('\r\n\r\n')) return
    socket.off('data', readHead)
    socket.write(HEAD)
    streams.push(socket)
  }
  socket.on('data', readHead)
})

/** Writes every batch to `socket`, waiting for a drain whenever it pushes back. */
function writeAll(socket: Socket): void {
  let next = 0
  const go = () => {
    while (next < batches.length) {
      if (!socket.write(batches[next++] as Buffer)) {
        socket.once('drain', go)
        return
      }
    }
  }
  go()
}

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`)
})
process.stdin.setEncoding('utf8').on('data', (line: string) => {
  if (line.includes('go')) for (const socket of streams) writeAll(socket)
})
