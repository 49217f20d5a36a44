# mqttspec — common tasks. `make test` is what CI runs.
GO ?= go
PKGS := ./...

.PHONY: test test-nocgo vet lint run bench loadtest fuzz fuzz-short soak cover

## test: vet, every test with the race detector, every test again without
## cgo (pure-Go SQLite), then each fuzz target briefly, as CI runs them.
test: vet
	$(GO) test -race -count=1 -timeout 8m $(PKGS)
	CGO_ENABLED=0 $(GO) test -count=1 -timeout 8m $(PKGS)
	$(MAKE) fuzz-short

## fuzz-short: each fuzz target for FUZZTIME (default 40,000 inputs, 5-20 s
## here). A count, not a duration: with a duration Go 1.26's fuzz
## coordinator can fail a clean run with "context deadline exceeded" when
## the deadline catches a worker mid-input (golang/go#75804, fixed in 1.27).
FUZZTIME ?= 40000x
fuzz-short:
	$(GO) test . -run '^$$' -fuzz '^FuzzHandleRequest$$' -fuzztime $(FUZZTIME)
	$(GO) test ./query -run '^$$' -fuzz '^FuzzBuildQuery$$' -fuzztime $(FUZZTIME)
	$(GO) test ./query -run '^$$' -fuzz '^FuzzLikeMatch$$' -fuzztime $(FUZZTIME)

## fuzz: each fuzz target for a few minutes.
fuzz:
	$(MAKE) fuzz-short FUZZTIME=3m

## soak: the attack soak and the group churn of make test, each for SOAK
## (default 10m).
SOAK ?= 10m
soak:
	MQTTSPEC_SOAK=$(SOAK) $(GO) test . -count=1 -run '^(TestSoak|TestGroupChurn)$$' -v -timeout 0

## test-nocgo: the whole suite without cgo (pure-Go SQLite).
test-nocgo:
	CGO_ENABLED=0 $(GO) test -count=1 -timeout 8m $(PKGS)

vet:
	$(GO) vet $(PKGS)

## lint: gofmt (fails on unformatted files) and go vet.
lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## run: the quickstart server on localhost:1883 with ./quickstart.db.
run:
	$(GO) run ./examples/quickstart

## bench: the Go benchmarks (request round trips, subscription matching).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s $(PKGS)

## loadtest: the library against its ceilings, side by side (see
## BENCHMARKS.md); LOADTEST_FLAGS are passed on, e.g. "-runs 3 -json out.json".
loadtest:
	$(GO) run ./cmd/mqttspec-bench $(LOADTEST_FLAGS)

cover:
	$(GO) test -count=1 -coverprofile=cover.out $(PKGS) && $(GO) tool cover -func=cover.out | tail -1
