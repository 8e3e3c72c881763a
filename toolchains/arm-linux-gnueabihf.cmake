# Cross build for 32-bit ARM boards (Raspberry Pi 2/3/4 with a 32-bit OS):
# Debian armhf.  Use with a sysroot from toolchains/make-sysroot.sh armhf:
#   toolchains/make-sysroot.sh armhf build-armhf/sysroot
#   cmake -S . -B build-armhf -DCMAKE_TOOLCHAIN_FILE=toolchains/arm-linux-gnueabihf.cmake
# Needs Debian's gcc-arm-linux-gnueabihf, and qemu-user to run the tests.
#
# No -march/-mfpu flags: the compiler's defaults are exactly Debian armhf
# (ARMv7-A, VFPv3-D16, Thumb-2, hard float), the ABI of every library in the
# sysroot.  Raspberry Pi OS 32-bit targets ARMv6 (Pi Zero/1) and is a
# different distribution; this file does not build for it.
set(CMAKE_SYSTEM_PROCESSOR arm)
set(ET_TRIPLE arm-linux-gnueabihf)
set(ET_QEMU qemu-arm)
set(ET_DEBIAN_ARCH armhf)
include(${CMAKE_CURRENT_LIST_DIR}/debian-sysroot.cmake)
