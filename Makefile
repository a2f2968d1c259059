# Thin wrapper over CMake (the build of record).
#   make          build into ./build (RelWithDebInfo)
#   make test     build, then run every test (fast and model) with ctest
#   make asan     build and test under AddressSanitizer + UBSan in ./build-asan
#   make install  install into PREFIX (default /usr/local; DESTDIR honoured): cmake/install.cmake
#   make deb      build the Debian package nook_VERSION_ARCH.deb (packaging/deb/build.sh)
#   make fuzz     build the libFuzzer targets (clang) in ./build-fuzz
#   make fuzz-long  run each fuzz target for FUZZ_TIME seconds (default 600) and report
#                 executions, coverage and crashes per target (tests/fuzz/run.sh)
#   make soak     the server's load and fault test for SOAK_TIME seconds (default 300)
#   make tsan     the server's tests under ThreadSanitizer in ./build-tsan
#   make clang    build with clang in ./build-clang and run the numeric tests (tensor_, model_)
BUILD ?= build
JOBS ?= $(shell nproc)
WERROR ?= 0
FUZZ_TIME ?= 600
SOAK_TIME ?= 300
TSAN_TESTS ?= server|serve|clients
TSAN_EXCLUDE ?= clients_structured
PREFIX ?= /usr/local
CMAKE_FLAGS ?=

ifeq ($(WERROR),1)
CMAKE_FLAGS += -DNOOK_WERROR=ON
endif

.PHONY: all test asan tsan clang soak install deb fuzz fuzz-long clean
all:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

test: all
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 900

asan:
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DNOOK_SANITIZE=ON"

soak: all
	cd tests/clients && NOOK=$(CURDIR)/$(BUILD)/nook LOAD_SECONDS=$(SOAK_TIME) LOAD_CLIENTS=16 node load.mjs

# Optimised (RelWithDebInfo) so that the threads meet as they do in production and the run
# is short enough for .ci/run; TSAN_TESTS picks the tests (a ctest -R pattern).
tsan:
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNOOK_TSAN=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build build-tsan -j$(JOBS)
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" ctest --output-on-failure -j$(JOBS) -R "$(TSAN_TESTS)" -E "$(TSAN_EXCLUDE)" --timeout 900

# The kernels promise bits that do not depend on the compiler: clang contracts a*b + c into
# an fma where gcc does not (-ffp-contract=on), which once gave the f16 decode path other
# bits than the scalar description, found only by hand. CLANG_TESTS picks the tests.
CLANG_TESTS ?= ^(tensor_|model_)
clang:
	CC=clang cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	cmake --build build-clang -j$(JOBS)
	cd build-clang && ctest --output-on-failure -j$(JOBS) -R "$(CLANG_TESTS)" --timeout 900

install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

deb: all
	packaging/deb/build.sh $(BUILD) .

fuzz:
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DNOOK_FUZZ=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build build-fuzz -j$(JOBS)

fuzz-long: fuzz
	tests/fuzz/run.sh build-fuzz $(FUZZ_TIME)

clean:
	rm -rf build build-asan build-fuzz build-tsan build-clang
