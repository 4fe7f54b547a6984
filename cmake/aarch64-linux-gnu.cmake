# aarch64-linux-gnu.cmake — cross-compile silica for arm64 Linux with Debian's
# gcc-aarch64-linux-gnu and the arm64 multiarch -dev packages (libcjson-dev:arm64,
# libcmocka-dev:arm64, zlib1g-dev:arm64 under /usr/lib/aarch64-linux-gnu);
# scripts/deps.sh installs them.  ctest runs the tests under qemu-aarch64
# (CMAKE_CROSSCOMPILING_EMULATOR); the arm64 loader and libc come from
# /usr/aarch64-linux-gnu (-L), the multiarch libraries from LD_LIBRARY_PATH.
# Usage: cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# look for arm64 libraries/headers/packages only (multiarch layout under /)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/cmake)

# arm64 libraries that cannot be co-installed (oniguruma) are unpacked by
# scripts/deps.sh into a private sysroot inside the build tree
get_filename_component(SILICA_ARM64_SYSROOT "${CMAKE_CURRENT_LIST_DIR}/../build-deps/arm64-sysroot" ABSOLUTE)

# pkg-config must see only the arm64 .pc files
set(ENV{PKG_CONFIG_LIBDIR}
    "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig:${SILICA_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

find_program(SILICA_QEMU_AARCH64 qemu-aarch64)
if(SILICA_QEMU_AARCH64)
  # SILICA_MAX_THREADS=1: qemu-user's thread creation hangs on some hosts
  set(CMAKE_CROSSCOMPILING_EMULATOR env SILICA_MAX_THREADS=1 LD_LIBRARY_PATH=/usr/lib/aarch64-linux-gnu:/lib/aarch64-linux-gnu:${SILICA_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu
      ${SILICA_QEMU_AARCH64} -L /usr/aarch64-linux-gnu)
endif()
