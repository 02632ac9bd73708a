# syntax=docker/dockerfile:1
# mpospay-gateway: a multi-stage build giving a small image that runs as a non-root user.
# The same image runs the gateway (`serve`, the default), the upstream simulator (`sandbox`),
# `migrate` and `keys …`; see docker-compose.yml and the README ("Run with Docker Compose").
#
#   docker build -t mpospay-gateway .
#
# SQLX_OFFLINE is not set on purpose: the code uses no compile-time checked queries (no
# `query!`/`query_as!` macros), so building needs no database. The migrations are embedded
# at compile time (`sqlx::migrate!`), as are the finance page (src/ui/) and the Swagger UI
# assets (utoipa-swagger-ui's `vendored` feature): the final image needs no other file.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: a change to the code does not rebuild them. The
# workspace's other members (the load harness, the test kit) are never built here, but cargo
# reads their manifests: they come as manifests over empty sources.
COPY Cargo.toml Cargo.lock ./
# sqlx-core with one backported fix (vendor/sqlx-core/PATCHED.md), patched in by Cargo.toml.
COPY vendor ./vendor
COPY bench/loadgen/Cargo.toml bench/loadgen/
COPY testkit/Cargo.toml testkit/
RUN mkdir -p src bench/loadgen/src testkit/src \
    && echo 'fn main() {}' > src/main.rs \
    && echo 'fn main() {}' > bench/loadgen/src/main.rs \
    && touch src/lib.rs testkit/src/lib.rs \
    && cargo build --release --locked --bin mpospay-gateway \
    && rm -rf src
COPY src ./src
COPY migrations ./migrations
# touch: the placeholder files above are newer than the real sources' modification times.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin mpospay-gateway \
    && strip target/release/mpospay-gateway

# TLS is rustls, compiled in (no OpenSSL), and the time zones too (chrono-tz): no tzdata. The
# system's root certificates are needed at run time (rustls-native-certs reads them) for
# https:// webhook receivers, an https:// upstream and Postgres with sslmode=verify-*; hence
# ca-certificates. debian:bookworm-slim matches the build stage's glibc.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install --yes --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home-dir /var/lib/gateway --create-home gateway \
    && mkdir /var/lib/gateway/data \
    && chown gateway:gateway /var/lib/gateway/data
COPY --from=build /src/target/release/mpospay-gateway /usr/local/bin/mpospay-gateway
USER 10001:10001
WORKDIR /var/lib/gateway
# Inside a container the listener must be reachable from outside it: publish the port on the
# host's loopback (or a private network) only, never on the internet (/metrics has no key).
# Without GATEWAY_DATABASE_URL the gateway uses SQLite in /var/lib/gateway/data (owned by the
# gateway user): mount a volume there to keep it, or use Postgres.
ENV GATEWAY_LISTEN=0.0.0.0:8080 \
    GATEWAY_LOG_FORMAT=json
EXPOSE 8080
# `healthcheck` asks GET /readyz on GATEWAY_LISTEN (the image has no curl).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["mpospay-gateway", "healthcheck"]
ENTRYPOINT ["mpospay-gateway"]
CMD ["serve"]
