# Build a static binary, then ship it alone on a distroless base as non-root.
#
# Both bases are pinned by digest (the tag says which release it was): a
# rebuild gets the same bytes, and a new base is a reviewed change. To move
# a pin, resolve the tag's current index digest, e.g.
#   crane digest golang:1.26.8-bookworm
#   crane digest gcr.io/distroless/static-debian12:nonroot
# and keep the Go release in step with go.mod's go line.
FROM golang:1.26.8-bookworm@sha256:dc9ad6c05acc7a88e5b71bde60a5fe3bd4b9f0db209011711b464107438a8107 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/approvalbot ./cmd/approvalbot \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
COPY --from=build /out/approvalbot /approvalbot
# The embedded store writes approvalbot.db here; mount a volume to keep it.
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
USER nonroot:nonroot
EXPOSE 8080
# distroless has no shell and no curl: the binary asks its own /healthz
# (on the default server.listen, :8080; pass --url for another). Kubernetes
# ignores this and uses the probes of the manifests and the chart.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/approvalbot", "healthcheck"]
ENTRYPOINT ["/approvalbot"]
CMD ["serve"]
