# Shared part of the Debian cross toolchain files (aarch64-linux-gnu.cmake,
# arm-linux-gnueabihf.cmake, arm-linux-gnueabi.cmake).  The including file sets:
#   ET_TRIPLE            GNU triple and Debian multiarch name, e.g. aarch64-linux-gnu
#   ET_QEMU              qemu-user program for the target, e.g. qemu-aarch64
#   ET_QEMU_CPU          optional: the CPU qemu emulates (-cpu), e.g. arm1176
#   ET_TARGET_FLAGS      optional: instruction set flags for compile and link
#   ET_DEBIAN_ARCH       Debian architecture, e.g. arm64
#   CMAKE_SYSTEM_PROCESSOR
#
# The sysroot is a private tree made by toolchains/make-sysroot.sh from the
# target's Debian packages.  Its location comes from, in order: -DET_SYSROOT=,
# the environment variable ET_SYSROOT, or <build dir>/sysroot.
#
# Debian's cross gcc (gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf) carries
# its own target glibc in /usr/<triple> and searches it before any --sysroot:
# its headers come first on the include path, its crt1.o/crti.o and libc.so
# first on the link path.  A program built that way and run under
# `qemu -L <sysroot>` mixes two glibc builds (and a static link would bake in
# the cross package's glibc, not the sysroot's).  So the include path is
# rebuilt with -nostdinc in the order a native gcc uses, and -B/-L make the
# linker take the start files and libraries from the sysroot first.
# libgcc (libgcc.a, crtbegin.o) still comes from the cross gcc itself, as it
# must: it belongs to the compiler; the sysroot carries libgcc_s.so.1 for
# run time.

set(CMAKE_SYSTEM_NAME Linux)

if(NOT ET_SYSROOT)
  if(DEFINED ENV{ET_SYSROOT} AND NOT "$ENV{ET_SYSROOT}" STREQUAL "")
    set(ET_SYSROOT "$ENV{ET_SYSROOT}")
  else()
    set(ET_SYSROOT "${CMAKE_BINARY_DIR}/sysroot")
  endif()
endif()
get_filename_component(ET_SYSROOT "${ET_SYSROOT}" ABSOLUTE)
set(ET_SYSROOT "${ET_SYSROOT}" CACHE PATH "Target sysroot made by toolchains/make-sysroot.sh")
# try_compile projects run in their own binary dir: hand the sysroot on, both
# as a forwarded variable and through the environment of this cmake process.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES ET_SYSROOT)
set(ENV{ET_SYSROOT} "${ET_SYSROOT}")

if(NOT EXISTS "${ET_SYSROOT}/usr/include/stdio.h")
  message(FATAL_ERROR "ET_SYSROOT=${ET_SYSROOT}: no target sysroot there; "
    "make one with: toolchains/make-sysroot.sh ${ET_DEBIAN_ARCH} ${ET_SYSROOT}")
endif()

find_program(ET_CROSS_CC NAMES ${ET_TRIPLE}-gcc ${ET_TRIPLE}-gcc-12)
if(NOT ET_CROSS_CC)
  message(FATAL_ERROR "${ET_TRIPLE}-gcc not found: install Debian's gcc-${ET_TRIPLE}")
endif()
set(CMAKE_C_COMPILER "${ET_CROSS_CC}")
set(CMAKE_LIBRARY_ARCHITECTURE ${ET_TRIPLE})

set(CMAKE_SYSROOT "${ET_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH "${ET_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)   # protoc-c runs on the host
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

execute_process(COMMAND "${ET_CROSS_CC}" -print-file-name=include
                OUTPUT_VARIABLE _et_gcc_include OUTPUT_STRIP_TRAILING_WHITESPACE)
set(_et_compile
  "-nostdinc -isystem ${_et_gcc_include} -isystem ${ET_SYSROOT}/usr/include/${ET_TRIPLE} -isystem ${ET_SYSROOT}/usr/include")
set(_et_link "-B${ET_SYSROOT}/usr/lib/${ET_TRIPLE}/")
if(ET_TARGET_FLAGS)
  string(APPEND _et_compile " ${ET_TARGET_FLAGS}")
  string(APPEND _et_link " ${ET_TARGET_FLAGS}")
endif()
foreach(_d usr/lib/${ET_TRIPLE} lib/${ET_TRIPLE})
  string(APPEND _et_link " -L${ET_SYSROOT}/${_d} -Wl,-rpath-link,${ET_SYSROOT}/${_d}")
endforeach()
set(CMAKE_C_FLAGS_INIT "${_et_compile}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${_et_link}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "${_et_link}")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "${_et_link}")
# A -DCMAKE_C_FLAGS=... on the command line replaces the _INIT value, which
# would silently bring back the cross package's glibc.  Put ours in front.
foreach(_v C_FLAGS:_et_compile EXE_LINKER_FLAGS:_et_link
           SHARED_LINKER_FLAGS:_et_link MODULE_LINKER_FLAGS:_et_link)
  string(REPLACE ":" ";" _v "${_v}")
  list(GET _v 0 _name)
  list(GET _v 1 _flags)
  if(DEFINED CACHE{CMAKE_${_name}})
    string(FIND "$CACHE{CMAKE_${_name}}" "${ET_SYSROOT}/" _pos)
    if(_pos EQUAL -1)
      set_property(CACHE CMAKE_${_name} PROPERTY VALUE "${${_flags}} $CACHE{CMAKE_${_name}}")
    endif()
  endif()
endforeach()
unset(_v)
unset(_pos)
unset(_name)
unset(_flags)
unset(_et_compile)
unset(_et_link)
unset(_et_gcc_include)

# pkg-config must read the target's .pc files and prefix their paths.
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${ET_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR}
    "${ET_SYSROOT}/usr/lib/${ET_TRIPLE}/pkgconfig:${ET_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Plain `ctest` runs the target's test programs under qemu-user, with the
# loader and libc of this same sysroot (-L): a loader and a libc from two
# different glibc builds hang at the first thread.
find_program(ET_QEMU_PROGRAM ${ET_QEMU})
if(ET_QEMU_PROGRAM)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${ET_QEMU_PROGRAM}")
  if(ET_QEMU_CPU)
    list(APPEND CMAKE_CROSSCOMPILING_EMULATOR -cpu ${ET_QEMU_CPU})
  endif()
  list(APPEND CMAKE_CROSSCOMPILING_EMULATOR -L ${ET_SYSROOT})
else()
  message(WARNING "${ET_QEMU} not found (Debian package qemu-user): "
    "the build works, but ctest cannot run the ${ET_TRIPLE} tests")
endif()
