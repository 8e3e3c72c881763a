# Every dependency comes from a Debian package; nothing is downloaded.
# In a cross build the toolchain file points CMAKE_FIND_ROOT_PATH at a
# sysroot made by toolchains/make-sysroot.sh, so the same calls find the
# target's libraries there.

find_package(PkgConfig REQUIRED)

# Paho's CMake package references OpenSSL::SSL without finding it itself.
find_package(OpenSSL REQUIRED)
find_package(eclipse-paho-mqtt-c 1.3 REQUIRED CONFIG)
find_package(SQLite3 REQUIRED)
find_package(Threads REQUIRED)

# protobuf-c: the library for the target, the compiler for the host.
find_path(PROTOBUF_C_INCLUDE_DIR protobuf-c/protobuf-c.h REQUIRED)
find_library(PROTOBUF_C_LIBRARY protobuf-c REQUIRED)
find_program(PROTOC_C protoc-c REQUIRED)
add_library(et::protobuf-c UNKNOWN IMPORTED)
set_target_properties(et::protobuf-c PROPERTIES
  IMPORTED_LOCATION ${PROTOBUF_C_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${PROTOBUF_C_INCLUDE_DIR})

# Mbed TLS 2.28 ships no pkg-config or CMake file.
find_path(MBEDTLS_INCLUDE_DIR mbedtls/version.h REQUIRED)
find_library(MBEDTLS_LIBRARY mbedtls REQUIRED)
find_library(MBEDX509_LIBRARY mbedx509 REQUIRED)
find_library(MBEDCRYPTO_LIBRARY mbedcrypto REQUIRED)
add_library(et::mbedtls INTERFACE IMPORTED)
set_target_properties(et::mbedtls PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES ${MBEDTLS_INCLUDE_DIR}
  INTERFACE_LINK_LIBRARIES "${MBEDTLS_LIBRARY};${MBEDX509_LIBRARY};${MBEDCRYPTO_LIBRARY}")

# libinih: INI parsing for the config file.
find_path(INIH_INCLUDE_DIR ini.h REQUIRED)
find_library(INIH_LIBRARY inih REQUIRED)
add_library(et::inih UNKNOWN IMPORTED)
set_target_properties(et::inih PROPERTIES
  IMPORTED_LOCATION ${INIH_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${INIH_INCLUDE_DIR})

# libmicrohttpd: the aggregator's HTTP server for the web view and
# /metrics (Debian's is built with GnuTLS, which gives it HTTPS).
if(ET_BUILD_CLOUD)
  find_path(MICROHTTPD_INCLUDE_DIR microhttpd.h REQUIRED)
  find_library(MICROHTTPD_LIBRARY microhttpd REQUIRED)
  add_library(et::microhttpd UNKNOWN IMPORTED)
  set_target_properties(et::microhttpd PROPERTIES
    IMPORTED_LOCATION ${MICROHTTPD_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${MICROHTTPD_INCLUDE_DIR})
endif()

# libsystemd: sd_notify for Type=notify units (readiness, watchdog, status;
# common/notify/). Optional: without it the daemons speak the protocol
# themselves (notify_socket.c). The static agent goes without it (Debian
# ships no libsystemd.a).
set(ET_HAVE_SYSTEMD OFF)
if(ET_SYSTEMD AND NOT ET_STATIC)
  find_path(SYSTEMD_INCLUDE_DIR systemd/sd-daemon.h)
  find_library(SYSTEMD_LIBRARY systemd)
  if(SYSTEMD_INCLUDE_DIR AND SYSTEMD_LIBRARY)
    set(ET_HAVE_SYSTEMD ON)
    add_library(et::systemd UNKNOWN IMPORTED)
    set_target_properties(et::systemd PROPERTIES
      IMPORTED_LOCATION ${SYSTEMD_LIBRARY}
      INTERFACE_INCLUDE_DIRECTORIES ${SYSTEMD_INCLUDE_DIR})
  else()
    message(STATUS "libsystemd not found (Debian's libsystemd-dev): "
                   "the daemons speak systemd's notify protocol themselves (notify_socket.c)")
  endif()
endif()

if(ET_BUILD_TESTS)
  find_path(CMOCKA_INCLUDE_DIR cmocka.h REQUIRED)
  find_library(CMOCKA_LIBRARY cmocka REQUIRED)
  add_library(et::cmocka UNKNOWN IMPORTED)
  set_target_properties(et::cmocka PROPERTIES
    IMPORTED_LOCATION ${CMOCKA_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${CMOCKA_INCLUDE_DIR})
endif()
