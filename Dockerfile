# Plinth's container image: a build stage with the Rust toolchain, then a small runtime
# (distroless, glibc and libgcc only) holding the one binary, run as a non-root user.
#
#   docker build -t plinth .
#   docker run -p 8080:8080 --env-file .env -v plinth-data:/var/lib/plinth plinth
#
# Production mode is on: the token-signing key and the encryption keys must come from the
# environment or mounted files (see docs/configuration.md and deploy/k8s/).

FROM rust:1.89-bookworm AS build
WORKDIR /src
# Dependencies first, from the manifests alone with empty crates, so a source change does
# not rebuild them.
COPY Cargo.toml Cargo.lock ./
# SQLite's build flags (the bundled SQLite is compiled from source).
COPY .cargo .cargo
COPY crates/core/Cargo.toml crates/core/
COPY crates/store/Cargo.toml crates/store/
COPY crates/server/Cargo.toml crates/server/
COPY crates/bench/Cargo.toml crates/bench/
COPY crates/testkit/Cargo.toml crates/testkit/
COPY crates/plinth/Cargo.toml crates/plinth/
RUN for c in core store server bench testkit; do \
        mkdir -p crates/$c/src && : > crates/$c/src/lib.rs; \
    done \
    && mkdir -p crates/plinth/src && echo 'fn main() {}' > crates/plinth/src/main.rs \
    && cargo build --release --locked -p plinth \
    && rm -rf crates
COPY crates crates
RUN touch crates/*/src/lib.rs crates/plinth/src/main.rs \
    && cargo build --release --locked -p plinth \
    && install -D -m 0755 target/release/plinth /out/usr/local/bin/plinth \
    && install -d -m 0700 /out/var/lib/plinth /out/etc/plinth

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/plinth /usr/local/bin/plinth
COPY --from=build --chown=65532:65532 /out/var/lib/plinth /var/lib/plinth
COPY --from=build --chown=65532:65532 /out/etc/plinth /etc/plinth
# The config file is read from the working directory: mount plinth.toml here.
WORKDIR /etc/plinth
ENV PLINTH_ENV=production \
    PLINTH_LISTEN=0.0.0.0:8080 \
    PLINTH_DATA_DIR=/var/lib/plinth \
    PLINTH_DRAIN_SECONDS=10
USER 65532:65532
EXPOSE 8080
VOLUME ["/var/lib/plinth"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/plinth", "health", "--url", "http://127.0.0.1:8080/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/plinth"]
CMD ["serve"]
