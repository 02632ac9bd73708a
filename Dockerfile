# syntax=docker/dockerfile:1
# mpospay-gateway: a multi-stage build giving a small image that runs as a non-root user.
# Queries are checked at run time (no compile-time query macros), so no database is needed to
# build and SQLX_OFFLINE is not required.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked --bin mpospay-gateway \
    && strip target/release/mpospay-gateway

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/gateway --create-home gateway
COPY --from=build /src/target/release/mpospay-gateway /usr/local/bin/mpospay-gateway
USER gateway
WORKDIR /var/lib/gateway
ENV GATEWAY_LISTEN=0.0.0.0:8080 \
    GATEWAY_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["mpospay-gateway", "healthcheck"]
ENTRYPOINT ["mpospay-gateway"]
CMD ["serve"]
