# seal-operator: a small static image that runs as non-root.
#   docker build -t seal-operator .
# Build stage: a static musl binary of the operator only.
FROM rust:1-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p seal-operator --target x86_64-unknown-linux-musl \
 && cp target/x86_64-unknown-linux-musl/release/seal-operator /seal-operator

# Runtime: nothing but the binary; distroless "static" carries CA certificates and the
# nonroot user (65532), matching the chart's securityContext.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /seal-operator /seal-operator
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/seal-operator"]
