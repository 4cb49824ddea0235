# syntax=docker/dockerfile:1.7
# Herald's container image: one binary that runs every service (`herald serve`) or any subset of them
# (`herald serve --services notifications`), plus `herald migrate`, `herald keys generate`, ...
#
#   docker build -t herald .
#   docker run --rm -p 8080:8080 -v herald-data:/var/lib/herald herald          # embedded SQLite, all services
#   docker run --rm herald migrate --database-url postgres://herald:...@db:5432/herald
#
# deploy/compose/compose.yaml and deploy/k8s/ run this image; docs/DEPLOYMENT.md explains both.
# scripts/check-deploy.sh lints this file with hadolint (settings in .hadolint.yaml).

ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# --- build -------------------------------------------------------------------------------------------------
FROM ${SWIFT_IMAGE} AS build
WORKDIR /src

# Dependencies first, so that a change in Sources/ does not fetch them again. Package.resolved is not in git:
# when the build context has one (a developer's checkout), its versions are used.
COPY Package.* ./
RUN --mount=type=cache,target=/src/.build,id=herald-swiftpm \
    swift package resolve

# SwiftPM checks that every target's directory exists, test targets included, so Tests/ comes along (it is not
# compiled: only the herald product is built).
COPY Sources ./Sources
COPY Tests ./Tests

# --static-swift-stdlib links the Swift runtime and Foundation into the binary; what stays dynamic is glibc,
# libstdc++ and libxml2 (FoundationXML, for S3 responses). SwiftPM puts each target's resources in a
# <package>_<target>.resources directory that Bundle.module looks for next to the executable: they are copied
# beside the binary (the widget's script, the OpenAPI document). The binary keeps its symbols, for readable crash
# backtraces.
RUN --mount=type=cache,target=/src/.build,id=herald-swiftpm \
    swift build -c release --product herald --static-swift-stdlib \
    && mkdir -p /out/bin \
    && cp "$(swift build -c release --show-bin-path)/herald" /out/bin/herald \
    && cp -R "$(swift build -c release --show-bin-path)"/*.resources /out/bin/

# --- runtime -----------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}

# ca-certificates: outbound TLS (webhooks, Stripe, Shopify, SMTP, S3); tzdata: sites' time zones in reports;
# libxml2: FoundationXML. Versions are not pinned: the base image's Debian release fixes them (see .hadolint.yaml).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata libxml2 \
    && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged uid/gid: Kubernetes' runAsNonRoot checks a numeric user, and the data volume's owner
# stays the same across image rebuilds.
RUN groupadd --system --gid 10001 herald \
    && useradd --system --uid 10001 --gid herald --home-dir /var/lib/herald --no-create-home \
        --shell /usr/sbin/nologin herald \
    && mkdir -p /var/lib/herald \
    && chown herald:herald /var/lib/herald \
    && chmod 0700 /var/lib/herald

COPY --from=build /out/bin/ /opt/herald/bin/

ENV PATH=/opt/herald/bin:$PATH \
    HERALD_DATA_DIR=/var/lib/herald

# The embedded store and generated keys live in the data directory; with PostgreSQL and keys from the environment
# it holds only the analytics archive (unless HERALD_ANALYTICS_ARCHIVE_URL points elsewhere).
VOLUME ["/var/lib/herald"]
WORKDIR /var/lib/herald
USER 10001:10001

# 8080: the API and the widget (HERALD_PORT). 9464: /metrics for Prometheus, served only when HERALD_METRICS_PORT
# is set (compose and the Kubernetes manifests set it to 9464).
EXPOSE 8080 9464

# There is no curl in the slim image: bash's /dev/tcp asks /healthz and expects "200" on the status line.
# (Plain HTTP only: with HERALD_TLS_CERT_FILE set, override or disable this check.)
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${HERALD_PORT:-8080} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["herald"]
CMD ["serve", "--host", "0.0.0.0"]
