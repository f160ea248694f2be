import type { SwaggerTransform } from '@fastify/swagger'
import type { FastifyContextConfig, RouteOptions } from 'fastify'
import { ROLES, type Role, roleAllows } from '../domain/tokens.js'
import type { RouteRole } from '../plugins/auth.js'
import type { OperationExtras } from './operationExtras.js'
import {
  type JsonSchema,
  type ResponseSchema,
  described,
  errorBody,
  retryAfterHeader,
  withHeaders,
} from './responses.js'

/**
 * A token travels as a bearer token; the event stream also takes it as `?token=`. An
 * operation's security requirement lists the role it needs, as OpenAPI 3.1 allows for schemes
 * other than OAuth ("a list of role names which are required for the execution").
 */
export const securitySchemes = {
  bearer: {
    type: 'http',
    scheme: 'bearer',
    description:
      'An API token (`silo_…`, README "Tokens"). Roles rank viewer < editor < admin; the role an ' +
      'operation lists in its security requirement is the least it needs.',
  },
  queryToken: {
    type: 'apiKey',
    in: 'query',
    name: 'token',
    description:
      'The same token as `?token=`, for browsers’ EventSource, which cannot set headers.',
  },
  session: {
    type: 'apiKey',
    in: 'cookie',
    name: 'silo_session',
    description:
      'A browser session made by `POST /api/session` from a token (README "Web console"); it ' +
      'holds that token’s role. Writes with it must come from this server’s own pages.',
  },
} as const

type Responses = Record<string, ResponseSchema>

const unauthorized = withHeaders(
  errorBody('Unauthorized: the bearer token is missing, unknown, revoked or expired.', [
    'unauthorized',
  ]),
  { 'WWW-Authenticate': { type: 'string', description: 'Bearer realm="silo"' } },
)

const forbidden = (role: Role) =>
  errorBody(`Forbidden: the token's role is below ${role}.`, ['forbidden'])

const readOnly = (alsoRoutes: boolean) =>
  withHeaders(
    errorBody(
      'Service Unavailable: `server_read_only` while the server is read-only (README, "Modes and ' +
        `signals"); try again after Retry-After.${alsoRoutes ? ' Other codes as `error` says.' : ''}`,
      ['server_read_only'],
    ),
    { 'Retry-After': retryAfterHeader },
  )

function roleText(role: RouteRole): string {
  if (role === 'none') return 'Public: no token needed.'
  const holders = ROLES.filter((held) => roleAllows(held, role))
  return `Needs a token with the **${role}** role or above (${holders.join(', ')}).`
}

/** The first path segments group operations: items and their sub-resources, admin, … */
function tagFor(url: string): string {
  const [root, group, , sub] = url.split('/').filter(Boolean)
  if (root !== 'api' || !group) return 'service'
  if (group === 'openapi.json') return 'api description'
  return group === 'items' && sub ? sub : group
}

function withProperties(schema: unknown, properties: JsonSchema | undefined): unknown {
  if (!properties) return schema
  const base = (schema ?? { type: 'object' }) as JsonSchema
  return { ...base, properties: { ...(base.properties as JsonSchema), ...properties } }
}

/** The route's JSON body, and the other media types it reads, as one `content` map. */
function requestBody(body: unknown, others: JsonSchema | undefined): unknown {
  if (!others) return body
  const own = body as { content?: JsonSchema } | undefined
  const content = own?.content ?? (own ? { 'application/json': { schema: own } } : {})
  return { content: { ...content, ...others } }
}

function addResponses(responses: Responses, added: Responses | undefined): void {
  for (const [status, response] of Object.entries(added ?? {})) {
    const own = responses[status]
    responses[status] = own
      ? { ...own, ...response, headers: { ...own.headers, ...response.headers } }
      : described(status, response)
  }
}

/**
 * The transform @fastify/swagger applies to each route: what every route has in common (its
 * role as security, the refusals of auth and of read-only mode) is derived here from the route
 * itself, so no route repeats it; `extras` adds what a route schema cannot hold.
 */
export function describeOperation(
  extras: Record<string, OperationExtras>,
  refusesWritesInReadOnly: (route: RouteOptions) => boolean,
): SwaggerTransform {
  return ({ schema, url, route }) => {
    const config = route.config as FastifyContextConfig | undefined
    const role = config?.role ?? 'none'
    const extra = extras[`${String(route.method)} ${url}`] ?? {}

    const responses: Responses = {}
    for (const [status, response] of Object.entries(schema?.response ?? {})) {
      responses[status] = described(status, response)
    }
    if (role !== 'none') {
      responses[401] = unauthorized
      if (role !== ROLES[0]) responses[403] = forbidden(role)
    }
    if (refusesWritesInReadOnly(route)) responses[503] = readOnly(responses[503] !== undefined)
    addResponses(responses, extra.responses)

    const security: Record<string, string[]>[] =
      role === 'none'
        ? []
        : [
            { bearer: [role] },
            { session: [role] },
            ...(config?.queryToken ? [{ queryToken: [role] }] : []),
          ]
    const description = [schema?.description, roleText(role)].filter(Boolean).join('\n\n')
    return {
      url,
      schema: {
        ...schema,
        tags: schema?.tags ?? [tagFor(url)],
        description,
        security,
        'x-silo-role': role,
        querystring: withProperties(schema?.querystring, extra.query),
        headers: withProperties(schema?.headers, extra.requestHeaders),
        body: requestBody(schema?.body, extra.requestBodies),
        response: responses,
      },
    }
  }
}
