# Thin wrapper over CMake.  `make` builds, `make test` runs everything the CI runs.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2)

.PHONY: all build test asan clean deps demo

all: build

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSILICA_SANITIZE=ON >/dev/null
	cmake --build build-asan -j $(JOBS)

deps:
	./scripts/deps.sh

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

clean:
	rm -rf build build-* .venv
