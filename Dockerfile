FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 (the backfill's SQLite driver) builds from source where no prebuilt binary is fetched.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --omit=optional

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# The image is for deployments: secrets and https are required, and no development secrets are
# generated in it (a re-created container would lose them, and with them every stored token).
ENV DEPLOY_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY migrations ./migrations
COPY assets ./assets
USER node
EXPOSE 8080
CMD ["node", "dist/main.js", "serve"]
