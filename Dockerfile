# flakehound in a slim image. Not built in this repository's CI (no container engine there):
#   docker build -t flakehound .
#   docker run --rm -v "$PWD:/data" flakehound --db /data/flakes.db flaky
#   docker run -p 8080:8080 -v flakes:/data flakehound --db /data/flakes.db serve \
#       --listen 0.0.0.0:8080 --token-file /data/tokens
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin flakehound

FROM debian:bookworm-slim
# ca-certificates: `flakehound upload` talks https.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --create-home flakehound
COPY --from=build /src/target/release/flakehound /usr/local/bin/flakehound
USER flakehound
WORKDIR /data
ENTRYPOINT ["flakehound"]
CMD ["--help"]
