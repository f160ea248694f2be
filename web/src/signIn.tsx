import { ErrorText } from './errorText.tsx'
import { useState } from 'preact/hooks'
import { api, ApiError } from './api.ts'
import { type Session, session, signedOutReason } from './live.ts'

/** Exchanges an API token, pasted once, for an HttpOnly session cookie (`POST /api/session`). */
export function SignIn() {
  const [token, setToken] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const submit = async (ev: Event) => {
    ev.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const s = await api<Session>('/api/session', {
        method: 'POST',
        body: { token: token.trim() },
      })
      signedOutReason.value = null
      session.value = s
    } catch (err) {
      setError(err instanceof ApiError ? err.message : 'the server could not be reached')
    } finally {
      setBusy(false)
    }
  }
  return (
    <main class="sign-in">
      <h1>silo</h1>
      {signedOutReason.value && (
        <p class="banner" role="alert" data-testid="signed-out-reason">
          {signedOutReason.value}
        </p>
      )}
      <form onSubmit={submit}>
        <label for="token">API token</label>
        <input
          id="token"
          type="password"
          autocomplete="off"
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
          aria-describedby={error ? 'token-error' : undefined}
          required
        />
        <ErrorText message={error} id="token-error" />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      <p class="hint">
        The token is exchanged for a session cookie; it is not kept in this browser.
      </p>
    </main>
  )
}
