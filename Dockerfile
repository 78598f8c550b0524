# syntax=docker/dockerfile:1
# One image with every orderstream binary; each container picks its binary by its command
# (`command-api`, `query-api`, `projectors run`, `notifier`). Build: docker build -t orderstream .

FROM rust:1.95-bookworm AS build
# librdkafka is compiled from source by rdkafka-sys (make, a C compiler, zlib); the notifier
# speaks https through the system OpenSSL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential zlib1g-dev libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The registry and the target dir are cache mounts, so a rebuild after a source change only
# compiles our own crates.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p command-api -p projectors -p query-api -p notifier --bins \
 && mkdir -p /out \
 && cp target/release/command-api target/release/projectors target/release/query-api target/release/notifier /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/orderstream --create-home orderstream \
 && install -d -o 10001 -g 10001 /var/lib/orderstream/decider-state
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/orderstream
# Listen on every interface inside the container (the binaries default to loopback), and keep
# the decider's state store on the volume the orchestrator mounts here.
ENV LISTEN_ADDR=0.0.0.0:8080 \
    DECIDER_STATE_DIR=/var/lib/orderstream/decider-state \
    LOG_FORMAT=json
EXPOSE 8080
CMD ["query-api"]
