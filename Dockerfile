# One image with every binary of the system (coordinator, the six
# participants, the load tool), statically linked: the SQLite driver is pure
# Go, so CGO is off. docker-compose-alpespartner.yml picks the binary with
# `command:`, e.g. ["coordinador"] or ["marca"].
#
#   docker build -t alpespartner/sagas .
#   docker run --rm alpespartner/sagas coordinador -check-config
#
# The API listens on 127.0.0.1 unless told otherwise: in a container set
# SAGAS_API_HOST=0.0.0.0 with SAGAS_API_TOKEN (docs/production.md, Exposure).

# --- build -------------------------------------------------------------------
FROM golang:1.26 AS builder
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
# Dependencies first, so a change in our code reuses this layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -o <dir>/ writes one executable per main package (named after its
# directory); the other packages are only compiled.
RUN go build -ldflags="-s -w" -o /out/ ./... \
    && ls -l /out

# --- run ---------------------------------------------------------------------
# Alpine rather than distroless: the compose health checks use its wget.
FROM alpine:3.20
RUN apk add --no-cache ca-certificates tzdata \
    && adduser -D -H -u 10001 sagas \
    && mkdir -p /app/logs/sagas /app/.run/data \
    && chown -R sagas:sagas /app
COPY --from=builder /out/ /usr/local/bin/
WORKDIR /app
USER sagas
# 8003: coordinator API; 9100: every process's metrics listener in compose
# (SAGAS_METRICS_ADDR: /metrics, and a participant's /healthz and /efectos).
EXPOSE 8003 9100
CMD ["coordinador"]
