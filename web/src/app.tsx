import { useEffect } from 'preact/hooks'
import { api } from './api.ts'
import { ActivityPage } from './activity.tsx'
import { AdminPage } from './admin.tsx'
import { ImportPage } from './importPage.tsx'
import { ItemPage } from './itemPage.tsx'
import { ItemsPage } from './itemsPage.tsx'
import {
  connection,
  endSession,
  isAdmin,
  mode,
  notice,
  type Session,
  session,
  startLive,
} from './live.ts'
import { route } from './route.ts'
import { SignIn } from './signIn.tsx'

const CONNECTION_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
} as const

const MODE_TEXT = {
  normal: null,
  'read-only': 'The server is read-only: nothing can be changed until an operator turns it back.',
  degraded: 'File storage is unavailable: uploads and downloads are off; everything else works.',
  'shutting-down': 'The server is restarting; this page reconnects by itself.',
} as const

/** Connection and mode, always visible (the README's "Web console"). */
function StatusBar() {
  const m = mode.value
  const modeText = m ? MODE_TEXT[m] : null
  return (
    <div class="status" role="status" aria-live="polite">
      <span class={`connection connection-${connection.value}`} data-testid="connection">
        {CONNECTION_TEXT[connection.value]}
      </span>
      {m && (
        <span class={`mode mode-${m}`} data-testid="mode">
          {m}
        </span>
      )}
      {modeText && (
        <p class="banner" data-testid="mode-banner">
          {modeText}
        </p>
      )}
      {notice.value && (
        <p class="banner notice">
          {notice.value}{' '}
          <button type="button" onClick={() => (notice.value = null)}>
            Dismiss
          </button>
        </p>
      )}
    </div>
  )
}

function Nav() {
  const page = route.value.page
  const link = (href: string, label: string, current: boolean) => (
    <a href={href} aria-current={current ? 'page' : undefined}>
      {label}
    </a>
  )
  return (
    <nav aria-label="Pages">
      {link('#/items', 'Items', page === 'items' || page === 'item')}
      {link('#/import', 'Import', page === 'import')}
      {link('#/activity', 'Activity', page === 'activity')}
      {isAdmin.value && link('#/admin', 'Admin', page === 'admin')}
    </nav>
  )
}

async function signOut() {
  try {
    await api('/api/session', { method: 'DELETE' })
  } finally {
    endSession(null)
  }
}

function Page() {
  const r = route.value
  switch (r.page) {
    case 'item':
      return <ItemPage partNumber={r.partNumber} />
    case 'import':
      return <ImportPage />
    case 'activity':
      return <ActivityPage />
    case 'admin':
      return <AdminPage />
    default:
      return <ItemsPage />
  }
}

export function App() {
  useEffect(() => {
    api<Session>('/api/session').then(
      (s) => (session.value = s),
      () => (session.value = null),
    )
  }, [])
  useEffect(() => {
    if (session.value) startLive()
  }, [session.value?.token_id])
  if (session.value === undefined) return <p class="loading">Loading…</p>
  if (session.value === null) return <SignIn />
  return (
    <>
      <header>
        <h1>silo</h1>
        <Nav />
        <span class="who">
          {session.value.name} ({session.value.role}){' '}
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </span>
      </header>
      <StatusBar />
      <main>
        <Page />
      </main>
    </>
  )
}
