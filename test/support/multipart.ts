import { randomBytes } from 'node:crypto'

export type FormPart =
  | { name: string; value: string }
  | { name: string; filename: string; contentType?: string; data: Buffer }

/**
 * A multipart/form-data body built byte by byte, so tests control exactly what is sent (and can
 * send part of it over a raw socket).
 */
export function multipartBody(parts: FormPart[]): { body: Buffer; contentType: string } {
  const boundary = `----silo-test-${randomBytes(8).toString('hex')}`
  const chunks: Buffer[] = []
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"`
    if ('data' in part) {
      head += `; filename="${part.filename}"\r\nContent-Type: ${part.contentType ?? 'application/octet-stream'}`
    }
    chunks.push(Buffer.from(`${head}\r\n\r\n`))
    chunks.push('data' in part ? part.data : Buffer.from(part.value))
    chunks.push(Buffer.from('\r\n'))
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` }
}

/** POSTs a multipart body; resolves with status, headers and parsed JSON body. */
export async function postMultipart(
  url: string,
  token: string,
  parts: FormPart[],
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const { body, contentType } = multipartBody(parts)
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...headers, authorization: `Bearer ${token}`, 'content-type': contentType },
    body,
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null }
}
