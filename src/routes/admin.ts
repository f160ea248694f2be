import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { setFleetReadOnly } from '../domain/fleetSettings.js'
import { CreatedToken, NewToken, TokenInfo } from '../domain/schemas.js'
import { createToken, listTokens, revokeToken, tokenActor, tokenExpiry } from '../domain/tokens.js'
import { ErrorBody, Mode, authErrors, bodyErrors } from './schemas.js'

const ModeBody = Type.Object({
  mode: Mode,
  read_only: Type.Boolean(),
  /** Which switch holds it: this replica's (config, SIGUSR1) and the fleet's (this API). */
  read_only_local: Type.Boolean(),
  read_only_fleet: Type.Boolean(),
  storage: Type.String(),
})

const adminRoutes: FastifyPluginAsync = async (plain) => {
  const app = plain.withTypeProvider<TypeBoxTypeProvider>()
  const modeBody = () => ({
    mode: app.modes.mode,
    read_only: app.modes.isReadOnly,
    read_only_local: app.modes.readOnlySwitches.local,
    read_only_fleet: app.modes.readOnlySwitches.fleet,
    storage: app.storageMonitor.isHealthy ? 'ok' : 'unavailable',
  })

  app.get(
    '/api/admin/mode',
    { config: { role: 'admin' }, schema: { response: { 200: ModeBody, ...authErrors } } },
    async () => modeBody(),
  )

  app.put(
    '/api/admin/mode',
    {
      // Must work in read-only: it is how read-only is turned off.
      config: { role: 'admin', writes: false },
      schema: {
        body: Type.Object({ read_only: Type.Boolean() }, { additionalProperties: false }),
        response: { 200: ModeBody, ...bodyErrors, ...authErrors },
      },
    },
    async (request) => {
      // Fleet-wide: stored, so every replica (and this one after a restart) follows it.
      const by = `admin API (token ${request.principal?.name ?? '?'})`
      await setFleetReadOnly(app.db, request.body.read_only, by)
      app.modes.setFleetReadOnly(
        request.body.read_only,
        `fleet read-only ${request.body.read_only ? 'on' : 'off'} (set by ${by})`,
      )
      return modeBody()
    },
  )

  app.get(
    '/api/admin/tokens',
    {
      config: { role: 'admin' },
      schema: { response: { 200: Type.Object({ tokens: Type.Array(TokenInfo) }), ...authErrors } },
    },
    async () => ({ tokens: await listTokens(app.db) }),
  )

  app.post(
    '/api/admin/tokens',
    {
      config: { role: 'admin' },
      schema: {
        body: NewToken,
        response: { 201: CreatedToken, ...bodyErrors, ...authErrors },
      },
    },
    async (request, reply) => {
      const { name, role } = request.body
      const expiresAt = tokenExpiry(request.body)
      const createdBy = tokenActor(request.principal)
      return reply.code(201).send(await createToken(app.db, { name, role, expiresAt, createdBy }))
    },
  )

  app.delete(
    '/api/admin/tokens/:id',
    {
      // Revoking a leaked token is a security action: it must work in read-only too.
      config: { role: 'admin', writes: false },
      schema: {
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        response: { 204: Type.Null(), 400: ErrorBody, 404: ErrorBody, ...authErrors },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      // Its streams end and its cached principal goes, here at once and on every replica as its
      // notice reaches it.
      await app.principals.withdraw({ tokenId: id }, () =>
        revokeToken(app.db, id, tokenActor(request.principal)),
      )
      return reply.code(204).send(null)
    },
  )
}

export default adminRoutes
