# Multi-stage build of cdrate: compile with the Rust toolchain (librdkafka
# is built from source with make and a C toolchain, against OpenSSL and
# zlib for TLS, SASL and compressed topics), run on a slim Debian as an
# unprivileged user.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev zlib1g-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p cdrate && strip target/release/cdrate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/cdrate --create-home --shell /usr/sbin/nologin cdrate
COPY --from=build /src/target/release/cdrate /usr/local/bin/cdrate
COPY examples /usr/share/cdrate/examples
USER cdrate
WORKDIR /var/lib/cdrate
ENV CDRATE_SERVER__LISTEN=0.0.0.0:8080 \
    CDRATE_STORE__URL=sqlite:///var/lib/cdrate/cdrate.db \
    CDRATE_BUS__EMBEDDED_URL=sqlite:///var/lib/cdrate/bus.db
EXPOSE 8080
# `cdrate ready` asks /ready on server.listen (loopback when it is 0.0.0.0).
HEALTHCHECK --interval=15s --timeout=6s --start-period=60s --retries=3 CMD ["/usr/local/bin/cdrate", "ready"]
VOLUME ["/var/lib/cdrate"]
ENTRYPOINT ["/usr/local/bin/cdrate"]
CMD ["--log-format", "json", "serve"]
