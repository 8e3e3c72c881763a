# Static linking of edgetel-agent (ET_STATIC=ON): one file for the board.
#
# Every dependency found by EtDependencies.cmake is an imported target that
# points at a shared library (Paho's CMake package even declares its target
# SHARED).  `-static` with a .so on the link line fails, so here each of those
# targets is repointed at the static archive that the same Debian -dev
# package ships beside the .so (libfoo.so[.N] -> libfoo.a), and given the
# system libraries the archive needs, so the link order falls out of the
# target graph instead of a hand-kept list.
#
# This changes the imported targets for the whole build tree, on purpose:
# in an ET_STATIC build the tests link the same archives the agent ships.
# Test programs stay dynamically linked against libc (only the agent gets
# -static); Debian's archives are compiled as PIE, so they link into both.
#
# Caveats of a static glibc, stated where the choice is made:
#  - the linker warns that getaddrinfo/dlopen "require at run time the shared
#    libraries from the glibc version used for linking": OpenSSL's engine and
#    provider loading (unused by the agent) and NSS modules other than `files`
#    and `dns`, which glibc 2.34+ builds into libc itself.  Broker names in
#    /etc/hosts or DNS resolve without any shared library.
#  - security fixes to OpenSSL, Paho, SQLite or glibc need a rebuild of the
#    agent, not an apt upgrade on the board.

include_guard(GLOBAL)

# et_static_archive_for(<out-var> <library path>): the .a beside a .so.
function(et_static_archive_for out lib)
  string(REGEX REPLACE "\\.so(\\.[0-9]+)*$" ".a" archive "${lib}")
  if(archive STREQUAL lib OR NOT EXISTS "${archive}")
    message(FATAL_ERROR "ET_STATIC: no static archive beside ${lib} (looked for ${archive}); "
      "the Debian -dev package of that library ships it, is it installed (or in the sysroot)?")
  endif()
  set(${out} "${archive}" PARENT_SCOPE)
endfunction()

# Repoint one imported library target at its static archive.
function(et_static_repoint target)
  if(NOT TARGET ${target})
    message(FATAL_ERROR "ET_STATIC: imported target ${target} is not defined; "
      "cmake/EtDependencies.cmake should have created it")
  endif()
  get_target_property(configs ${target} IMPORTED_CONFIGURATIONS)
  set(props IMPORTED_LOCATION)
  if(configs)
    foreach(c ${configs})
      string(TOUPPER "${c}" c)
      list(APPEND props IMPORTED_LOCATION_${c})
    endforeach()
  endif()
  set(done FALSE)
  foreach(p ${props})
    get_target_property(loc ${target} ${p})
    if(loc)
      et_static_archive_for(archive "${loc}")
      set_property(TARGET ${target} PROPERTY ${p} "${archive}")
      set(done TRUE)
    endif()
  endforeach()
  if(NOT done)
    message(FATAL_ERROR "ET_STATIC: imported target ${target} has no IMPORTED_LOCATION to repoint")
  endif()
  # A SHARED imported target with a soname would get rpath and soname
  # treatment on the link line; an archive has neither.
  foreach(c "" ${configs})
    if(c)
      string(TOUPPER "_${c}" c)
    endif()
    set_property(TARGET ${target} PROPERTY IMPORTED_SONAME${c})
  endforeach()
  set_property(TARGET ${target} APPEND PROPERTY INTERFACE_LINK_LIBRARIES ${ARGN})
endfunction()

# et_static_executable(<target>): link <target> as one static executable.
function(et_static_executable target)
  # Once per configure run: the imported targets are made anew on each run.
  get_property(repointed GLOBAL PROPERTY ET_STATIC_REPOINTED)
  if(NOT repointed)
    # What each archive itself needs at link time, in dependency order.
    # libcrypto.a needs more on some targets: on Debian armel (ARMv5TE, no
    # 64-bit atomic instructions) its 64-bit atomics are calls into
    # libatomic.  Its libcrypto.pc says so (Libs.private: -latomic), so take
    # the list from there rather than from a list of architectures.
    set(crypto_needs Threads::Threads ${CMAKE_DL_LIBS})
    pkg_check_modules(ET_LIBCRYPTO_PC QUIET libcrypto)
    foreach(lib ${ET_LIBCRYPTO_PC_STATIC_LIBRARIES})
      if(NOT lib STREQUAL "crypto")
        list(APPEND crypto_needs ${lib})
      endif()
    endforeach()
    et_static_repoint(OpenSSL::Crypto ${crypto_needs})
    et_static_repoint(OpenSSL::SSL OpenSSL::Crypto)
    et_static_repoint(eclipse-paho-mqtt-c::paho-mqtt3as)  # already lists OpenSSL, pthread, anl
    et_static_repoint(SQLite::SQLite3 m Threads::Threads ${CMAKE_DL_LIBS})
    et_static_repoint(et::protobuf-c)
    et_static_repoint(et::inih)

    # Mbed TLS has no imported library targets, only an interface list of
    # paths (mbedtls, mbedx509, mbedcrypto: already in link order).
    get_target_property(mbed et::mbedtls INTERFACE_LINK_LIBRARIES)
    set(mbed_static "")
    foreach(lib ${mbed})
      et_static_archive_for(archive "${lib}")
      list(APPEND mbed_static "${archive}")
    endforeach()
    set_property(TARGET et::mbedtls PROPERTY INTERFACE_LINK_LIBRARIES "${mbed_static}")
    set_property(GLOBAL PROPERTY ET_STATIC_REPOINTED TRUE)
  endif()
  target_link_options(${target} PRIVATE -static)
endfunction()
