import type { FastifyPluginAsync } from 'fastify'

const routes: FastifyPluginAsync<{ maxSize: number }> = async () => {}

export default routes
