import type { FastifyInstance } from 'fastify'

export interface RegisteredRoute {
  method: string
  /** As registered, with `:name` parameters. */
  url: string
}

/**
 * Every method and URL the app answers, read from its own route tree: `printRoutes` draws a tree
 * whose lines are `<indent>├── <segment> (<METHODS>)`, four characters of indent per level.
 */
export function registeredRoutes(app: FastifyInstance): RegisteredRoute[] {
  const path: string[] = []
  return app
    .printRoutes({ commonPrefix: false })
    .split('\n')
    .flatMap((line) => {
      const found = /^(.*?)[├└]── (\S+) \(([A-Z, ]+)\)$/.exec(line)
      if (!found) return []
      const [, indent = '', segment = '', methods = ''] = found
      path.splice(indent.length / 4, Infinity, segment)
      const url = path.join('')
      return methods.split(', ').map((method) => ({ method, url }))
    })
}
