# Drover - build, generate, test.
SHELL := /usr/bin/env bash -o pipefail
GO ?= go
BIN := bin
VERSION ?= v0.1.0-dev
LDFLAGS := -X github.com/drover-dev/drover/internal/version.Version=$(VERSION)
DATA_DIR ?= ./drover-data
TEST_TIMEOUT ?= 20m

.PHONY: all build run test test-unit bench generate manifests verify fmt vet clean

all: build

build: ## Build droverd, drover and drover-agent into ./bin
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

run: build ## Start droverd with embedded etcd under ./drover-data
	$(BIN)/droverd --data-dir $(DATA_DIR)

test: ## Run every test (unit, integration against a real droverd, e2e with the real kubectl)
	$(GO) test -timeout $(TEST_TIMEOUT) -count=1 ./...

bench: build ## Run the benchmarks and print their figures
	./hack/bench/run.sh

generate: ## Generate deepcopy code and OpenAPI definitions
	$(GO) tool controller-gen object:headerFile=hack/boilerplate.go.txt paths=./apis/...
	./hack/update-openapi.sh

manifests: ## Generate CRDs and RBAC into config/
	$(GO) tool controller-gen crd paths=./apis/... output:crd:artifacts:config=config/crd/bases
	$(GO) tool controller-gen rbac:roleName=drover-controller paths=./controllers/... paths=./internal/manager/... output:rbac:artifacts:config=config/rbac

verify: ## Fail when generated code or manifests drift from the sources
	./hack/verify.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf $(BIN)
