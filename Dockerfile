# wcm reference cloud: multi-stage image (docs/deploy.md).
#   docker build -t wcm-cloud .
#   docker run -d -p 8883:8883 -p 1812:1812/udp -v wcm-data:/var/lib/wcm \
#     -v $PWD/deploy/wcm.container.yaml:/etc/wcm/wcm.yaml:ro --env-file master-key.env wcm-cloud
# Stage 1 builds the native addon (better-sqlite3) and bundles the cloud with
# esbuild; stage 2 holds only node, the production node_modules and the bundle,
# and runs as an unprivileged user. The entry command is the one
# test/deploy-packaging.test.ts runs outside a container.

FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential python3 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build:bundle && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN groupadd --system --gid 10001 wcm && useradd --system --uid 10001 --gid wcm --home-dir /var/lib/wcm --shell /usr/sbin/nologin wcm \
 && mkdir -p /var/lib/wcm /etc/wcm && chown wcm:wcm /var/lib/wcm && chmod 0700 /var/lib/wcm
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY deploy/wcm.container.yaml /etc/wcm/wcm.yaml
ENV NODE_ENV=production WCM_CONFIG=/etc/wcm/wcm.yaml
USER wcm
VOLUME ["/var/lib/wcm"]
EXPOSE 8883/tcp 1812/udp 8080/tcp 9464/tcp
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9464/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/wcm.mjs"]
CMD ["serve"]
