import type { FastifyPluginAsync } from 'fastify'

const routes: FastifyPluginAsync<{ maxFileSize: number }> = async () => {}

export default routes
