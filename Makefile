# Decant — common tasks. `make help` lists them.
.DEFAULT_GOAL := help
NODE_MODULES := node_modules/.package-lock.json

$(NODE_MODULES): package.json package-lock.json
	@echo "Installing dependencies (npm ci): the first time, better-sqlite3 may build from source, which takes a few minutes."
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# Start-time V8 flags of the sidecar, as in the image (deploy/Dockerfile, NODE_OPTIONS): a
# young generation of 2 x 4 MB instead of 2 x 16 MB (lower peak RSS, same throughput).
NODE_FLAGS := --max-semi-space-size=4

.PHONY: run
run: $(NODE_MODULES) ## run the sidecar on the embedded default (sqlite:./data/decant.db)
	node $(NODE_FLAGS) bin/decant.js serve $(if $(CONFIG),--config $(CONFIG),)

# SPEC=test/server/health.test.ts (files or globs) runs only those test files.
.PHONY: test
test: $(NODE_MODULES) ## prepare this machine (packages, servers, databases; see README), then run every test
	scripts/test-prepare.sh
	npm run typecheck
	$(if $(SPEC),npx mocha $(SPEC),npm test)

.PHONY: model
model: ## check the migration protocol's spin model (model/check.sh)
	command -v spin || (apt-get update -qq && apt-get install -y -qq spin gcc)
	model/check.sh

.PHONY: build
build: $(NODE_MODULES) ## compile TypeScript to dist/
	npx tsc -p tsconfig.build.json

.PHONY: lint
lint: $(NODE_MODULES) ## type-check everything and lint the protocol with buf
	npm run typecheck
	npx buf lint proto

.PHONY: bench
bench: $(NODE_MODULES) ## run the benchmarks (ratios against baselines measured in the same run)
	npm run bench

.PHONY: proto
proto: $(NODE_MODULES) ## check the protocol files (buf lint + breaking-change check is manual) and regenerate src/wire/generated
	npx buf lint proto
	scripts/gen-wire-types.sh

# --- Deployment: container image (deploy/Dockerfile) and Kubernetes manifests (k8s/) ---
IMAGE ?= decant:dev

.PHONY: image
image: ## build the container image (IMAGE=decant:dev) from deploy/Dockerfile; needs a Docker engine
	docker build -f deploy/Dockerfile -t $(IMAGE) .

.PHONY: k8s-validate
k8s-validate: $(NODE_MODULES) ## validate k8s/ (schemas, kustomize overlays, config, probes, secrets)
	npx mocha --no-config --node-option import=tsx --timeout 120000 --exit test/deploy/k8s.test.ts

.PHONY: demo demo-dynamodb
demo: $(NODE_MODULES) ## run a whole live migration on SQLite in one command (ARGS="--hold --port 50051 --metrics-port 9464 --api dynamodb")
	node bin/decant.js demo $(ARGS)

demo-dynamodb: $(NODE_MODULES) ## the demo with an unmodified AWS SDK client speaking the DynamoDB API
	node bin/decant.js demo --api dynamodb $(ARGS)
