# Cross build for 64-bit ARM boards (Raspberry Pi 3/4/5 with a 64-bit OS):
# Debian arm64.  Use with a sysroot from toolchains/make-sysroot.sh arm64:
#   toolchains/make-sysroot.sh arm64 build-aarch64/sysroot
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=toolchains/aarch64-linux-gnu.cmake
# Needs Debian's gcc-aarch64-linux-gnu, and qemu-user to run the tests.
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(ET_TRIPLE aarch64-linux-gnu)
set(ET_QEMU qemu-aarch64)
set(ET_DEBIAN_ARCH arm64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-sysroot.cmake)
