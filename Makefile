# approvalbot — the targets the README and docs/development.md name.
GO        ?= go
FUZZTIME  ?= 30s
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
DYNALITE  := tools/node_modules/.bin/dynalite
REDOCLY   := tools/node_modules/.bin/redocly
TSC       := tools/node_modules/.bin/tsc
# Helm is a Go module: go install, pinned, into bin/tools (one folder per
# version, so a new pin installs anew).
HELM_VERSION := v3.21.4
HELM      := bin/tools/helm-$(HELM_VERSION)/helm

.PHONY: run build test tools lint lint-api bench fuzz clean

## run: start the bot on the embedded store with the example configuration
run:
	$(GO) run ./cmd/approvalbot serve --config approvalbot.example.yaml

## build: a static binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/approvalbot ./cmd/approvalbot

## tools: install the pinned tools (dynalite, Redocly CLI, TypeScript and
## @slack/types) into tools/node_modules
tools: $(DYNALITE) $(REDOCLY) $(TSC)
$(DYNALITE) $(REDOCLY) $(TSC) &: tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund
	@touch $(DYNALITE) $(REDOCLY) $(TSC)

## web-deps: Debian's Chromium for the web tests (a real headless browser);
## nothing when one is installed
.PHONY: web-deps
web-deps:
	@bash .ci/web-deps

## test: every test, with the race detector; the DynamoDB tests start dynalite
## themselves, the web tests an OpenID Connect provider and Chromium, the
## chart's tests run helm
test: tools web-deps $(HELM) promtool
	HELM=$(CURDIR)/$(HELM) $(GO) test -race -count=1 ./...

## helm: install the pinned Helm into bin/tools
.PHONY: helm
helm: $(HELM)
$(HELM):
	GOBIN=$(CURDIR)/$(dir $(HELM)) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

## check-slack-types: every golden Slack payload of testdata/slack (messages,
## modals, Home tabs, command replies) type-checked by tsc --strict against
## Slack's own @slack/types (pinned in tools/package.json); the broken
## payload of tools/slack-types/testdata must be refused
.PHONY: check-slack-types
check-slack-types: $(TSC)
	node tools/slack-types/gen.mjs tools/slack-types/out/goldens testdata/slack/*.json
	$(TSC) -p tools/slack-types/tsconfig.json
	node tools/slack-types/gen.mjs tools/slack-types/out/broken tools/slack-types/testdata/*.json
	@if $(TSC) -p tools/slack-types/tsconfig.broken.json > tools/slack-types/out/broken.log 2>&1; then \
	  echo "tsc accepted tools/slack-types/testdata/broken_button.json"; exit 1; fi
	@grep -q 'broken_button.ts.*ColorScheme' tools/slack-types/out/broken.log || \
	  { echo "tsc refused the broken payload, but not for its button's style:"; cat tools/slack-types/out/broken.log; exit 1; }
	@echo "negative control: tsc refuses tools/slack-types/testdata/broken_button.json"

## promtool: Debian's prometheus package, for promtool; nothing when one is
## installed
.PHONY: promtool
promtool:
	@bash .ci/prom-deps

## lint-alerts: the alert rules checked and unit-tested by promtool (each
## alert fires and stays quiet in deploy/prometheus/alerts_test.yaml), the
## negative controls of deploy/prometheus/testdata refused, then every
## PromQL expression of the rules and the Grafana dashboard parsed and its
## metrics found in a running bot's /metrics
.PHONY: lint-alerts
lint-alerts: promtool
	promtool check rules deploy/prometheus/alerts.yaml
	promtool test rules deploy/prometheus/alerts_test.yaml
	@if promtool check rules deploy/prometheus/testdata/broken-alerts.yaml >/dev/null 2>&1; then \
	  echo "promtool check rules accepted deploy/prometheus/testdata/broken-alerts.yaml"; exit 1; fi
	@if promtool test rules deploy/prometheus/testdata/early-alert_test.yaml >/dev/null 2>&1; then \
	  echo "promtool test rules passed deploy/prometheus/testdata/early-alert_test.yaml"; exit 1; fi
	@echo "negative controls: the broken rule and the early alert are refused"
	$(GO) test -count=1 -run 'TestDashboardAndAlertsReadExportedMetrics|TestPromQLChecksCatchMistakes' ./cmd/approvalbot/

## lint-chart: the Helm chart: helm lint --strict, then every values example
## rendered and decoded strictly into k8s.io/api types, and the broken
## values of deploy/helm/testdata refused (deploy/helm_test.go)
.PHONY: lint-chart
lint-chart: $(HELM)
	HELM=$(CURDIR)/$(HELM) $(GO) test -count=1 -run 'Helm|Manifests|DecodeStrict' ./deploy/

## lint: formatting, vet, staticcheck, errcheck, the OpenAPI description and the Teams cards and manifest
lint: lint-api lint-teams lint-tools
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(ERRCHECK) -ignoretests -exclude .errcheck-excludes ./...

## lint-tools: the pinned Go linters, built by `go install` into tools/bin
## (staticcheck 2026.1 = v0.7.0 and errcheck v1.9.0 build with Go 1.26)
STATICCHECK_VERSION := v0.7.0
ERRCHECK_VERSION    := v1.9.0
STATICCHECK := tools/bin/staticcheck-$(STATICCHECK_VERSION)
ERRCHECK    := tools/bin/errcheck-$(ERRCHECK_VERSION)
.PHONY: lint-tools
lint-tools: $(STATICCHECK) $(ERRCHECK)
$(STATICCHECK):
	GOBIN=$(CURDIR)/tools/bin GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv tools/bin/staticcheck $@
$(ERRCHECK):
	GOBIN=$(CURDIR)/tools/bin GOFLAGS= $(GO) install github.com/kisielk/errcheck@$(ERRCHECK_VERSION)
	mv tools/bin/errcheck $@

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
