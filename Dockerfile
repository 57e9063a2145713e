# seal-operator: a small image that runs as non-root.
#   docker build -t seal-operator .
# Build stage: the operator only, against Debian 12's glibc. The published figures
# (docs/operator.md, "Measured") are for this build: musl's allocator is much slower under
# the operator's many small, multi-threaded allocations, so a static musl binary would not
# behave as measured.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p seal-operator \
 && cp target/release/seal-operator /seal-operator

# Runtime: the binary and what it links (glibc, libgcc); distroless "cc" carries CA
# certificates and the nonroot user (65532), matching the chart's securityContext.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /seal-operator /seal-operator
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/seal-operator"]
