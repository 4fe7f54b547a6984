# Thin wrapper over CMake.  `make` builds, `make test` runs everything the CI runs,
# `make install [PREFIX=/usr/local] [DESTDIR=...]` installs silica, libsilica
# (shared + static), its headers, silica.pc, the man pages and the completions.
BUILD ?= build
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2)

.PHONY: all build install test asan clean deps demo

all: build

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# An existing build directory keeps its configuration (build type, options).
install:
	@[ -f $(BUILD)/CMakeCache.txt ] || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

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
