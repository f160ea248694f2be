# silo: build with `docker build -t silo .`, run with
#   docker run -p 8080:8080 -v silo-data:/data silo
# The first start prints a bootstrap admin token to the container log (`docker logs`).

# ---- build: compile TypeScript and the web console (needs the dev dependencies) ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# tsconfig.build.json extends tsconfig.json and compiles src/ only.
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY web ./web
RUN npm run build

# ---- runtime: production dependencies and the compiled dist/ (with dist/console) ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist

# PGlite database and item files live on the volume. The PGlite lock file is written beside
# the database folder (/data/.db.lock), so /data itself must be writable by the node user.
# Owned before VOLUME so that a new named volume starts with this ownership.
RUN mkdir -p /data/db /data/files && chown -R node:node /data
VOLUME /data

# Environment variables override a config file given with --config / SILO_CONFIG.
ENV SILO_SERVER_HOST=0.0.0.0 \
    SILO_DATABASE_DATA_DIR=/data/db \
    SILO_STORAGE_PATH=/data/files \
    SILO_SERVER_PID_FILE=/data/silo.pid

USER node
EXPOSE 8080

# Slim images have no curl; Node 20 has fetch. The first start initialises the database,
# which can take a while, hence the start period.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.SILO_SERVER_PORT||8080)+'/health',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# SIGTERM starts a graceful drain bounded by server.shutdown_timeout (10s by default); give
# `docker stop -t` / stop_grace_period more than shutdown_timeout + drain_delay.
# `docker kill --signal=USR1 <container>` toggles read-only.
STOPSIGNAL SIGTERM
# Node's options are those of `npm start` (package.json; test/unit/entry.test.ts holds them equal):
# a 2 MiB young generation instead of 16 MiB semi-spaces keeps some 30 MiB less resident, idle
# or busy, at no measured cost (docs/BENCHMARKS.md, "Memory and start").
CMD ["node", "--max-semi-space-size=2", "dist/main.js"]
