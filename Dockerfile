# The kany8s manager image ([PKG-01]): a static (musl) binary on distroless static, non-root
# (UID 65532). Multi-arch with buildx: each platform builds natively (emulated), so the musl
# target is the build machine's architecture.
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/kany8s:<tag> .
# Not buildable on the CI machine (no container engine).
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN target="$(uname -m)-unknown-linux-musl" \
    && rustup target add "$target" \
    && cargo build --release --locked -p kany8s --bin kany8s --target "$target" \
    && cp "target/$target/release/kany8s" /kany8s

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /kany8s /kany8s
USER 65532:65532
ENTRYPOINT ["/kany8s"]
