# approvalbot — the targets the README and docs/development.md name.
GO        ?= go
FUZZTIME  ?= 30s
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
DYNALITE  := tools/node_modules/.bin/dynalite
REDOCLY   := tools/node_modules/.bin/redocly

.PHONY: run build test tools lint lint-api bench fuzz clean

## run: start the bot on the embedded store with the example configuration
run:
	$(GO) run ./cmd/approvalbot serve --config approvalbot.example.yaml

## build: a static binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/approvalbot ./cmd/approvalbot

## tools: install the pinned tools (dynalite, Redocly CLI) into tools/node_modules
tools: $(DYNALITE) $(REDOCLY)
$(DYNALITE) $(REDOCLY) &: tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund
	@touch $(DYNALITE) $(REDOCLY)

## web-deps: Debian's Chromium for the web tests (a real headless browser);
## nothing when one is installed
.PHONY: web-deps
web-deps:
	@bash .ci/web-deps

## test: every test, with the race detector; the DynamoDB tests start dynalite
## themselves, the web tests an OpenID Connect provider and Chromium
test: tools web-deps
	$(GO) test -race -count=1 ./...

## lint: formatting, vet, the OpenAPI description and the Teams cards and manifest
lint: lint-api lint-teams
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

## lint-api: api/openapi.yaml against Redocly's recommended rules (pinned in
## tools/package.json); an error fails, warnings are printed. No telemetry.
lint-api: $(REDOCLY)
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true $(REDOCLY) lint --format=stylish api/openapi.yaml

## lint-teams: every golden Teams card (teams/testdata/*.card.json) parsed by
## the adaptivecards package with no error or warning, and
## teams-app/manifest.json against the Teams manifest JSON schema bundled in
## @microsoft/app-manifest (both pinned in tools/package.json); each with a
## broken control that must fail
.PHONY: lint-teams
lint-teams: tools
	node tools/teams-check.mjs

## bench: the Go benchmarks of the hot paths, then the load command against
## the built bot on each store (see BENCHMARKS.md); about 3.5 minutes here
bench: tools bench-go
	$(GO) run ./cmd/approvalbench
	$(GO) run ./cmd/approvalbench --store dynamodb --rate 500

## bench-go: only the Go benchmarks of the hot paths
.PHONY: bench-go
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./server/ ./bot/ ./tokens/ ./store/bolt/ ./flexdeploy/

## bench-scale: the scaling tables of BENCHMARKS.md: Slack pacing against a
## Slack that enforces its limits, 1k-100k pending tasks, 1-3 replicas on
## dynalite; about 35 minutes here (1,000 posts into one channel take 17)
.PHONY: bench-scale
bench-scale: tools
	$(GO) run ./cmd/approvalbench --mode slack --counts 10,100 --channels 1 --runs 3 --timeout 20m
	$(GO) run ./cmd/approvalbench --mode slack --counts 10,100,1000 --channels 10 --runs 3 --timeout 20m
	$(GO) run ./cmd/approvalbench --mode slack --counts 1000 --channels 1 --runs 1 --timeout 40m
	$(GO) run ./cmd/approvalbench --mode scale --scale-pending 1000,10000,100000 --phase-timeout 4m --timeout 20m
	$(GO) run ./cmd/approvalbench --mode replicas --replicas 1,2,3 --replica-pending 1000 --interval 10s --rounds 3 --timeout 15m

## fuzz: run every fuzz target for FUZZTIME each. A run that fails is run
## once more: on a loaded machine Go's fuzzer can end with "context deadline
## exceeded" and no input at fault, while a real crasher is written to
## testdata/fuzz and fails the second run at once.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || \
	      { echo "fuzz $$pkg $$target: once more"; $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; } || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
