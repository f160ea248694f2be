import { ErrorText } from './errorText.tsx'
import { useEffect, useState } from 'preact/hooks'
import { api } from './api.ts'
import { messageOf } from './fieldError.ts'
import { mode } from './live.ts'
import { ColumnHeads } from './columnHeads.tsx'

interface Token {
  id: number
  name: string
  role: string
  created_at: string
  expires_at: string | null
  last_used_at?: string | null
}

interface Ready {
  status: string
  mode: string
  database: string
  storage: string
  sse_clients: number
}

const READY_EVERY_MS = 5000

function Tokens() {
  const [tokens, setTokens] = useState<Token[]>([])
  const [form, setForm] = useState({ name: '', role: 'viewer', expires_in: '' })
  const [secret, setSecret] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  const load = () =>
    api<{ tokens: Token[] }>('/api/admin/tokens').then(
      (r) => setTokens(r.tokens),
      (err) => setError(messageOf(err)),
    )
  useEffect(() => void load(), [])
  const create = async (ev: Event) => {
    ev.preventDefault()
    try {
      const body = {
        name: form.name,
        role: form.role,
        ...(form.expires_in ? { expires_in: form.expires_in } : {}),
      }
      const created = await api<Token & { token: string }>('/api/admin/tokens', {
        method: 'POST',
        body,
      })
      setSecret(created.token)
      setError(null)
      setForm({ name: '', role: 'viewer', expires_in: '' })
      void load()
    } catch (err) {
      setError(messageOf(err))
    }
  }
  const revoke = async (token: Token) => {
    if (!confirm(`Revoke ${token.name}? Its sessions and streams end at once.`)) return
    try {
      await api(`/api/admin/tokens/${token.id}`, { method: 'DELETE' })
      void load()
    } catch (err) {
      setError(messageOf(err))
    }
  }
  return (
    <section aria-labelledby="tokens-heading">
      <h3 id="tokens-heading">Tokens</h3>
      {secret && (
        <p class="banner" role="status" data-testid="new-secret">
          The new token, shown only now: <code>{secret}</code>{' '}
          <button type="button" onClick={() => setSecret(null)}>
            I have copied it
          </button>
        </p>
      )}
      <ErrorText message={error} />
      <table>
        <ColumnHeads names={['Name', 'Role', 'Expires']} actions />
        <tbody>
          {tokens.map((t) => (
            <tr key={t.id}>
              <td>{t.name}</td>
              <td>{t.role}</td>
              <td>{t.expires_at ? new Date(t.expires_at).toLocaleString() : 'never'}</td>
              <td>
                <button type="button" onClick={() => void revoke(t)}>
                  Revoke {t.name}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form onSubmit={create} aria-label="New token">
        <label for="token-name">Name</label>
        <input
          id="token-name"
          value={form.name}
          onInput={(e) => setForm({ ...form, name: e.currentTarget.value })}
          required
        />
        <label for="token-role">Role</label>
        <select
          id="token-role"
          value={form.role}
          onChange={(e) => setForm({ ...form, role: e.currentTarget.value })}
        >
          <option value="viewer">viewer</option>
          <option value="editor">editor</option>
          <option value="admin">admin</option>
        </select>
        <label for="token-expires">Expires in (e.g. 30d; empty: never)</label>
        <input
          id="token-expires"
          value={form.expires_in}
          onInput={(e) => setForm({ ...form, expires_in: e.currentTarget.value })}
        />
        <button type="submit">Create token</button>
      </form>
    </section>
  )
}

function Readiness() {
  const [ready, setReady] = useState<Ready | null>(null)
  useEffect(() => {
    // /ready answers 503 with the same body while the database is down: show it either way.
    const poll = () =>
      fetch('/ready', { headers: { accept: 'application/json' } })
        .then((r) => r.json() as Promise<Ready>)
        .then(setReady, () => setReady(null))
    void poll()
    const timer = setInterval(poll, READY_EVERY_MS)
    return () => clearInterval(timer)
  }, [])
  return (
    <section aria-labelledby="ready-heading">
      <h3 id="ready-heading">Readiness</h3>
      {ready ? (
        <dl class="figures" data-testid="ready">
          <dt>Status</dt>
          <dd>{ready.status}</dd>
          <dt>Database</dt>
          <dd>{ready.database}</dd>
          <dt>Storage</dt>
          <dd>{ready.storage}</dd>
          <dt>Stream clients</dt>
          <dd>{ready.sse_clients}</dd>
        </dl>
      ) : (
        <p>The server does not answer.</p>
      )}
      <p>
        <a href="/metrics">Metrics</a> · <a href="/docs">API description</a>
      </p>
    </section>
  )
}

/** Fleet read-only switch, tokens, readiness. */
export function AdminPage() {
  const [error, setError] = useState<string | null>(null)
  const readOnly = mode.value === 'read-only'
  const toggle = async () => {
    try {
      await api('/api/admin/mode', { method: 'PUT', body: { read_only: !readOnly } })
      setError(null)
    } catch (err) {
      setError(messageOf(err))
    }
  }
  return (
    <section aria-labelledby="admin-heading">
      <h2 id="admin-heading">Admin</h2>
      <p>
        <button type="button" onClick={toggle} aria-pressed={readOnly}>
          {readOnly ? 'Make the fleet writable' : 'Make the fleet read-only'}
        </button>
      </p>
      <ErrorText message={error} />
      <Readiness />
      <Tokens />
    </section>
  )
}
