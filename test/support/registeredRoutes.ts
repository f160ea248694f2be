import type { FastifyInstance } from 'fastify'

export interface RegisteredRoute {
  method: string
  /** As registered, with `:name` parameters. */
  url: string
}

/**
 * Every method and URL the app answers, read from its own route tree: `printRoutes` draws a tree
 * whose lines are `<indent>├── <segment> (<METHODS>)`, four characters of indent per level; a
 * route's URL is the segments on its way down joined. (The `commonPrefix: false` drawing drops
 * some segments, e.g. `assets/` of `/assets/*`.)
 */
export function registeredRoutes(app: FastifyInstance): RegisteredRoute[] {
  const path: string[] = []
  return app
    .printRoutes()
    .split('\n')
    .flatMap((line) => {
      // A segment shared by several routes (`assets/` of `/assets/*`) has a line of its own
      // without methods: it is part of the path below it all the same.
      const found = /^(.*?)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line)
      if (!found) return []
      const [, indent = '', segment = '', methods] = found
      path.splice(indent.length / 4, Infinity, segment)
      const url = path.join('')
      return methods ? methods.split(', ').map((method) => ({ method, url })) : []
    })
}
