# Cross build for ARMv6 boards (Raspberry Pi Zero, Zero W, Pi 1; any 32-bit
# Pi) from Debian armel.  Use with a sysroot from make-sysroot.sh armel:
#   toolchains/make-sysroot.sh armel build-armel/sysroot
#   cmake -S . -B build-armel -DCMAKE_TOOLCHAIN_FILE=toolchains/arm-linux-gnueabi.cmake \
#         -DET_STATIC=ON -DET_BUILD_CLOUD=OFF
# Needs Debian's gcc-arm-linux-gnueabi, and qemu-user to run the tests.
#
# Meant for the static agent: Raspberry Pi OS 32-bit is armhf built for
# ARMv6, Debian armel is ARMv5TE with the soft-float ABI, so a dynamically
# linked armel program would look for /lib/ld-linux.so.3 and libraries the
# board does not have.  Linked statically, nothing of the board's is loaded.
#
# Instruction set: exactly Debian armel's baseline (ARMv5TE, ARM state,
# soft float), spelled out rather than left to the compiler's defaults so a
# different default cannot change it silently.  ARMv6 (the Pi's arm1176jzf-s)
# runs every ARMv5TE instruction.  -march=armv6 -mfpu=vfp -mfloat-abi=softfp
# would also link (softfp passes floats in core registers, the same calling
# convention as soft), but it would put VFP and ARMv6-only code (and CP15
# barriers for atomics) only into our own code, about 240 KiB of 5.5 MiB,
# while the libraries (glibc, OpenSSL, SQLite, Paho) stay ARMv5TE soft
# float; the agent's own floating point is a few values per sample, so
# there is little to gain, and it would give up the one-baseline binary.
# -mtune only schedules.
# Atomics: ARMv5TE has no ldrex/strex; GCC calls libgcc's __sync_* (the
# kernel's user helpers at 0xffff0fc0), and OpenSSL's archive asks for
# libatomic (its libcrypto.pc), which cmake/EtStatic.cmake adds.
# toolchains/README.md says which board runs which file.
set(CMAKE_SYSTEM_PROCESSOR arm)
set(ET_TRIPLE arm-linux-gnueabi)
set(ET_QEMU qemu-arm)
# The tests run on the Pi Zero's core: qemu raises SIGILL on any ARMv7
# instruction, which is how an instruction the board lacks would show.
set(ET_QEMU_CPU arm1176)
set(ET_DEBIAN_ARCH armel)
set(ET_TARGET_FLAGS "-march=armv5te -marm -mfloat-abi=soft -mtune=arm1176jzf-s")
include(${CMAKE_CURRENT_LIST_DIR}/debian-sysroot.cmake)
