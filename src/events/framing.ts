/**
 * How SSE bytes travel on the connection. The broker writes straight to the socket, so an
 * HTTP/1.1 response with `Transfer-Encoding: chunked` must be framed here: once per shared
 * buffer, not per subscriber, and one socket write per batch instead of the four pieces Node's
 * response object writes for each chunk.
 */
export interface Framing {
  frame(bytes: Buffer): Buffer
  /** What ends the body before the connection closes (the last chunk), if anything. */
  readonly end: Buffer | undefined
}

/** No framing: the body is the bytes (a plain stream, or a body delimited by the close). */
export const RAW_FRAMING: Framing = {
  frame: (bytes) => bytes,
  end: undefined,
}

const CRLF = Buffer.from('\r\n')

export const CHUNKED_FRAMING: Framing = {
  // An empty chunk would end the body.
  frame: (bytes) =>
    bytes.length === 0
      ? bytes
      : Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`, 'latin1'), bytes, CRLF]),
  end: Buffer.from('0\r\n\r\n', 'latin1'),
}
