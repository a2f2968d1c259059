# Thin wrapper over CMake (the build of record).
#   make          build into ./build (RelWithDebInfo)
#   make test     build, then run every test (fast and model) with ctest
#   make asan     build and test under AddressSanitizer + UBSan in ./build-asan
BUILD ?= build
JOBS ?= $(shell nproc)
WERROR ?= 0
CMAKE_FLAGS ?=

ifeq ($(WERROR),1)
CMAKE_FLAGS += -DNOOK_WERROR=ON
endif

.PHONY: all test asan clean
all:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

test: all
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 900

asan:
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DNOOK_SANITIZE=ON"

clean:
	rm -rf build build-asan build-fuzz
