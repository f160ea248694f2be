/**
 * Calls to silo's API from the console: same origin, the session cookie, JSON both ways. Every
 * refusal is the API's `{"error","message"}` (the README's "Bad input"), raised as ApiError so a
 * form can show the message next to its field.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The whole answer, e.g. `current` on a 412 or `errors` on a refused import. */
    readonly body: Record<string, unknown>,
  ) {
    super(message)
  }
}

export interface RequestOptions {
  method?: string
  body?: unknown
  headers?: Record<string, string>
  signal?: AbortSignal
}

/** An answer's JSON body; `{}` for one that is not JSON. */
function jsonBody(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>
  } catch {
    // A proxy's HTML error page: the status says enough.
    return {}
  }
}

function refusal(status: number, statusText: string, text: string): ApiError {
  const body = jsonBody(text)
  const code = typeof body.error === 'string' ? body.error : `http_${status}`
  const message = typeof body.message === 'string' ? body.message : statusText
  return new ApiError(status, code, message, body)
}

export async function request<T>(
  path: string,
  options: RequestOptions = {},
): Promise<{ data: T; response: Response }> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers }
  let body: BodyInit | undefined
  if (options.body instanceof Blob || options.body instanceof FormData) body = options.body
  else if (options.body !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(options.body)
  }
  const response = await fetch(path, {
    method: options.method ?? 'GET',
    headers,
    body,
    credentials: 'same-origin',
    signal: options.signal,
  })
  if (!response.ok) throw refusal(response.status, response.statusText, await response.text())
  const data = (response.status === 204 ? undefined : await response.json()) as T
  return { data, response }
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  return (await request<T>(path, options)).data
}

/** A part number as one URL path segment. */
export const pn = (partNumber: string): string => encodeURIComponent(partNumber)

/**
 * Uploads with progress, which fetch cannot report for request bodies; same answer handling.
 */
export function upload<T>(
  path: string,
  form: FormData,
  onProgress: (fraction: number) => void,
  headers: Record<string, string> = {},
): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('POST', path)
    xhr.withCredentials = true
    xhr.setRequestHeader('accept', 'application/json')
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value)
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) onProgress(ev.loaded / ev.total)
    }
    xhr.onerror = () =>
      reject(new ApiError(0, 'network_error', 'the upload did not reach the server', {}))
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(jsonBody(xhr.responseText) as T)
      else reject(refusal(xhr.status, xhr.statusText, xhr.responseText))
    }
    xhr.send(form)
  })
}
