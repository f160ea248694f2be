import multipart from '@fastify/multipart'
import Fastify, { type FastifyInstance } from 'fastify'
import type { DestinationStream } from 'pino'
import type { Config } from './config.js'
import type { Database } from './db/database.js'
import { openDatabase } from './db/openDatabase.js'
import { loggerOptions } from './logging.js'
import brokerPlugin from './plugins/broker.js'
import corsPlugin from './plugins/cors.js'
import databasePlugin from './plugins/database.js'
import domainPlugin from './plugins/domain.js'
import fleetSettingsPlugin from './plugins/fleetSettings.js'
import lifecyclePlugin from './plugins/lifecycle.js'
import metricsPlugin from './plugins/metrics.js'
import modesPlugin from './plugins/modes.js'
import openapiPlugin from './plugins/openapi.js'
import authPlugin from './plugins/auth.js'
import principalsPlugin from './plugins/principals.js'
import earlyAnswersPlugin from './plugins/earlyAnswers.js'
import errorHandlerPlugin, { answerClientError } from './plugins/errorHandler.js'
import requireWritablePlugin from './plugins/requireWritable.js'
import sheetPoolPlugin from './plugins/sheetPool.js'
import storagePlugin from './plugins/storage.js'
import streamRightsPlugin from './plugins/streamRights.js'
import validationPlugin from './plugins/validation.js'
import adminRoutes from './routes/admin.js'
import bomRoutes from './routes/bom.js'
import consoleRoutes from './routes/console.js'
import eventRoutes from './routes/events.js'
import healthRoutes from './routes/health.js'
import historyRoutes from './routes/history.js'
import importExportRoutes from './routes/importExport.js'
import itemRoutes from './routes/items.js'
import revisionRoutes from './routes/revisions.js'
import sessionRoutes from './routes/session.js'
import apiDescriptionRoutes from './openapi/routes.js'
import type { ObjectStorage } from './storage/objectStorage.js'
import { openStorage } from './storage/openStorage.js'
import { capacityFor, readSoftFileLimit } from './events/streamCapacity.js'

export interface BuildOptions {
  /** Where log lines go; defaults to stdout. Redaction applies whatever the destination. */
  logStream?: DestinationStream
  /** An already open database (tests share one); otherwise opened from the config. */
  db?: Database
  storage?: ObjectStorage
}

const CONNECTIONS_CHECK_MS = 1000

export async function buildApp(
  config: Config,
  options: BuildOptions = {},
): Promise<FastifyInstance> {
  const app = Fastify({
    logger: loggerOptions(config, options.logStream),
    bodyLimit: config.server.body_limit,
    trustProxy: config.server.trust_proxy,
    // The lifecycle plugin refuses requests while draining (probes excepted), and the event
    // stream answers that refusal with 200 and `retry:`.
    return503OnClosing: false,
    routerOptions: { ignoreTrailingSlash: true },
    // Timeouts bound what a client sends, never a response: event streams are not cut (see the
    // README's "Limits and timeouts").
    http: {
      headersTimeout: config.server.headers_timeout,
      requestTimeout: config.server.request_timeout,
      // Node checks both timeouts on this interval (30 s by default): a connection that never
      // sends a whole request head is closed within a second of its timeout, not 30 s later.
      connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
    },
    requestTimeout: config.server.request_timeout,
    keepAliveTimeout: config.server.keep_alive_timeout,
    clientErrorHandler: answerClientError,
  })
  app.server.maxConnections = capacityFor(readSoftFileLimit()).maxConnections
  const db =
    options.db ??
    (await openDatabase(config.database, (err, context) => app.log.warn({ err }, context)))
  const storage = options.storage ?? (await openStorage(config.storage))
  try {
    await app.register(validationPlugin)
    await app.register(errorHandlerPlugin)
    await app.register(earlyAnswersPlugin)
    await app.register(openapiPlugin)
    // JSON is the only body type the API reads; text/plain would otherwise reach the schema
    // as a string and be refused with a confusing 400 instead of 415.
    app.removeContentTypeParser('text/plain')
    // Many HTTP clients send `Content-Type: application/json` on every request, DELETE included;
    // an empty body is then no body at all (a route that needs one still refuses it, by schema).
    const parseJson = app.getDefaultJsonParser('error', 'error')
    app.removeContentTypeParser('application/json')
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      if (body === '') done(null, undefined)
      else parseJson(request, body as string, done)
    })
    await app.register(databasePlugin, { db })
    await app.register(brokerPlugin, { events: config.events })
    await app.register(modesPlugin, { readOnly: config.server.read_only })
    await app.register(lifecyclePlugin)
    await app.register(fleetSettingsPlugin)
    await app.register(storagePlugin, { storage, config: config.storage })
    // Every commit wakes the fan-out with the events it stored.
    const { broker } = app
    await app.register(domainPlugin, {
      context: { db, storage, eventsCommitted: (events) => void broker.eventsCommitted(events) },
      requestTimeoutMs: config.server.request_timeout,
    })
    await app.register(sheetPoolPlugin)
    await app.register(metricsPlugin)
    await app.register(principalsPlugin)
    await app.register(streamRightsPlugin, { events: config.events })
    await app.register(corsPlugin, { origins: config.server.cors_origins })
    // Multipart bodies are streamed by the routes that take them (file revisions, imports);
    // the limits bound what a single request may make the server read.
    await app.register(multipart, {
      limits: {
        // One byte over, so the upload itself sees the excess and answers 413 (busboy would
        // silently truncate at the limit).
        fileSize: config.storage.max_file_size + 1,
        files: 1,
        fields: 16,
        fieldSize: config.server.body_limit,
        parts: 17,
      },
    })
    await app.register(authPlugin)
    await app.register(requireWritablePlugin)
    await app.register(healthRoutes)
    await app.register(itemRoutes)
    await app.register(revisionRoutes, { maxFileSize: config.storage.max_file_size })
    await app.register(bomRoutes)
    await app.register(historyRoutes)
    await app.register(importExportRoutes, {
      maxSize: config.import.max_size,
      timeoutMs: config.import.timeout,
    })
    await app.register(eventRoutes, { events: config.events })
    await app.register(adminRoutes)
    await app.register(sessionRoutes, { lifetimeMs: config.server.session_lifetime })
    await app.register(consoleRoutes)
    await app.register(apiDescriptionRoutes)
    await app.ready()
  } catch (err) {
    await app.close().catch(() => {})
    throw err
  }
  return app
}
