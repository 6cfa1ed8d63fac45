# Builds the node (`mpcium`) and the operator CLI (`mpcium-cli`).
# Mount config.yaml, peers.json and identity/ under /app (the working directory, as the original),
# and the store password as a file: `mpcium start -n node0 -c /app/config.yaml -f /run/secrets/db-password`.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p mpcium-node -p mpcium-cli

FROM debian:bookworm-slim
RUN useradd --system --uid 65532 --home /app mpcium && mkdir -p /app && chown mpcium /app
COPY --from=build /src/target/release/mpcium /src/target/release/mpcium-cli /usr/local/bin/
USER mpcium
WORKDIR /app
ENTRYPOINT ["/usr/local/bin/mpcium"]
CMD ["start", "--help"]
