# syntax=docker/dockerfile:1
# Node.js 24 (LTS). The base is pinned by digest (the multi-platform index of
# node:24.11.1-bookworm-slim); to move to a newer patch release, take the new digest from
# `docker buildx imagetools inspect node:24-bookworm-slim` and change both stages.
ARG NODE_IMAGE=node:24.11.1-bookworm-slim@sha256:48abc13a19400ca3985071e287bd405a1d99306770eb81d61202fb6b65cf0b57

# Build stage: compiles TypeScript (and better-sqlite3's native module when no prebuilt binary
# fits), then drops the dev dependencies.
FROM ${NODE_IMAGE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# Runtime stage: production dependencies and compiled JavaScript only; no compiler, no compile
# at start; non-root; data under /data.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    XPORTA_LISTEN__HOST=0.0.0.0 \
    XPORTA_LISTEN__PORT=8227 \
    XPORTA_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json openapi.yaml config.example.json ./
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8227
# Liveness on the port the service listens on (XPORTA_LISTEN__PORT; set it, not only the config
# file's listen.port, when changing the port). /livez does not depend on the database, so an
# outage of the storage does not mark the container unhealthy; /readyz is for load balancers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.XPORTA_LISTEN__PORT||8227)+'/livez').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "--max-semi-space-size=2", "--heap-growing-percent=100", "dist/cli.js"]
CMD ["serve"]
