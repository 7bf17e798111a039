# Front door of mini-kvstore. CMake does the building; these targets are the
# commands a user types. `make help` lists them.

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
DATA_DIR   ?= db
C_SOURCES   = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
# No "Entering directory" lines from the makes that cmake --build runs.
MAKEFLAGS  += --no-print-directory

.PHONY: help deps build test test-sanitize bench fmt fmt-check lint clean run server \
        install-tools pre-commit docker docker-up docker-down

help: ## Show the available commands
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-15s %s\n", $$1, $$2}'

deps: ## Install the Debian packages the build and tests need (when missing)
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt ## Build the library, programs, tests and examples into build/
	cmake --build $(BUILD) -j $(JOBS)

# The build before run and server: warnings and errors (standard error) show,
# the progress lines go to $(BUILD)/build.log, and one line says it is done.
.PHONY: build-quiet
build-quiet: deps $(BUILD)/CMakeCache.txt
	@cmake --build $(BUILD) -j $(JOBS) >$(BUILD)/build.log || \
	  { echo "make: the build failed; its log: $(BUILD)/build.log" >&2; exit 1; }
	@echo "built $(BUILD)/ (log: $(BUILD)/build.log)"

test: build ## Build and run the whole test suite
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-sanitize: deps ## The suite under ASan+UBSan, and the concurrent tests under TSan
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DKV_SANITIZE=ON
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(BUILD_ASAN) --output-on-failure -j $(JOBS)
	cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=Debug -DKV_TSAN=ON
	cmake --build $(BUILD_TSAN) -j $(JOBS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --test-dir $(BUILD_TSAN) --output-on-failure -j $(JOBS) -L concurrent

bench: build ## Benchmark against LevelDB, RocksDB, LMDB and Redis (and HTTP against nginx) into docs/BENCHMARKS.md
	@scripts/install-deps.sh --bench
	BUILD=$(BUILD) bench/run.sh

fmt: ## Format the C sources with clang-format
	clang-format -i $(C_SOURCES)

fmt-check: ## Fail when a C source is not formatted
	clang-format --dry-run --Werror $(C_SOURCES)

# clang-tidy needs every header a file includes, so it lints what the build
# compiles (compile_commands.json): the peers' benchmark adapters are built, and
# linted, only where their libraries are installed (install-deps.sh --bench).
# cppcheck needs no header and reads every C file.
lint: build ## clang-tidy (the files the build compiles) and cppcheck over the sources
	@scripts/install-deps.sh --tools
	clang-tidy -p $(BUILD) --quiet $$(scripts/built-sources.py $(BUILD) tests/fuzz/)
	cppcheck --error-exitcode=1 --enable=warning,performance,portability --inline-suppr \
	  --suppress=missingIncludeSystem -I include -I src/store --std=c11 --quiet \
	  $(filter %.c,$(C_SOURCES))

install-tools: ## Install the formatting and lint tools
	@scripts/install-deps.sh --tools

pre-commit: fmt-check lint test ## What to run before committing

clean: ## Remove the build directories
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_FUZZ)

run: build-quiet ## Start the interactive CLI on DATA_DIR (default: db)
	@$(BUILD)/kvstore --data-dir $(DATA_DIR)

server: build-quiet ## Start the HTTP volume server on its defaults (127.0.0.1:9002, data/)
	@$(BUILD)/volume-server

# ---- installing: the GNU directories under PREFIX (the configured prefix,
# /usr/local, when not given), staged below DESTDIR when it is set
PREFIX  ?=
DESTDIR ?=
.PHONY: install uninstall

install: build ## Install both programs, the libraries, kvstore.h, kvstore.pc and the man pages (PREFIX, DESTDIR)
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) $(if $(PREFIX),--prefix "$(PREFIX)")

uninstall: ## Remove the files make install puts under PREFIX (and DESTDIR)
	@BUILD=$(BUILD) PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" scripts/uninstall.sh

docker: ## Build the container image mini-kvstore:latest (Dockerfile)
	docker build -t $(IMAGE) .

KV_TLS_DIR ?= .tls

docker-up: ## Start the cluster: gateway on https://127.0.0.1:9000 and RESP (TLS) :6379, nodes on :9001-9003
	scripts/tls-cert.sh $(KV_TLS_DIR) && chmod 644 $(KV_TLS_DIR)/gateway.key
	KV_TLS_DIR=$(abspath $(KV_TLS_DIR)) $(COMPOSE) up -d --build

docker-down: ## Stop the cluster (the data stays in its named volumes)
	$(COMPOSE) down

# ---- deployment: containers and the local cluster
IMAGE   ?= mini-kvstore:latest
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.PHONY: test-docker cluster-start cluster-stop cluster-status

test-docker: ## Set up podman (root), build the images, test the compose cluster, tear down
	scripts/test-docker.sh

cluster-start: build ## The cluster without containers (scripts/cluster.sh, ./cluster)
	BUILD=$(BUILD) scripts/cluster.sh start

cluster-stop: ## Stop the local cluster
	BUILD=$(BUILD) scripts/cluster.sh stop

cluster-status: ## What the local cluster runs
	BUILD=$(BUILD) scripts/cluster.sh status

.PHONY: soak
SOAK_SECS ?= 600

soak: build ## Crash loop (kill -9 under load, restart, verify) for SOAK_SECS seconds (default 600)
	KV_BUILD_DIR=$(abspath $(BUILD)) SOAK_SECS=$(SOAK_SECS) python3 tests/e2e/test_crash_loop.py

# ---- fuzzing (libFuzzer, clang): targets and seed corpora in tests/fuzz/
.PHONY: fuzz fuzz-smoke fuzz-build
BUILD_FUZZ   ?= build-fuzz
FUZZ_SECS    ?= 60
# Working directories of the store targets: on tmpfs, fsync costs nothing.
FUZZ_TMPDIR  ?= $(shell test -w /dev/shm && echo /dev/shm || echo /tmp)
FUZZ_TARGETS  = fuzz_segment fuzz_records fuzz_snapshot fuzz_http fuzz_cli_parse fuzz_resp_parse

fuzz-build: deps ## Build the libFuzzer targets into build-fuzz/fuzz/ (clang)
	@scripts/install-deps.sh --tools
	cmake -S . -B $(BUILD_FUZZ) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKV_FUZZ=ON
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target $(FUZZ_TARGETS)

fuzz: fuzz-build ## Run each fuzz target for FUZZ_SECS seconds (default 60); new inputs go to build-fuzz/corpus/
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(BUILD_FUZZ)/corpus/$$t $(BUILD_FUZZ)/artifacts; \
	  echo "== $$t ($(FUZZ_SECS) s)"; \
	  TMPDIR=$(FUZZ_TMPDIR) $(BUILD_FUZZ)/fuzz/$$t -max_total_time=$(FUZZ_SECS) -timeout=30 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=$(BUILD_FUZZ)/artifacts/$$t- \
	    $(BUILD_FUZZ)/corpus/$$t tests/fuzz/corpus/$$t 2> $(BUILD_FUZZ)/$$t.log || \
	    { tail -60 $(BUILD_FUZZ)/$$t.log; exit 1; }; \
	  grep -E 'stat::number_of_executed_units|stat::new_units_added' $(BUILD_FUZZ)/$$t.log; \
	done

fuzz-smoke: ## Each fuzz target for about 10 seconds (CI)
	$(MAKE) fuzz FUZZ_SECS=10

.PHONY: valgrind
valgrind: build ## volume-server under valgrind memcheck through the e2e API test: zero errors, zero leaks
	tests/valgrind/run.sh $(BUILD)
