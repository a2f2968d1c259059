# install.cmake: `make install` (issue 15 item 4). Included at the end of CMakeLists.txt.
#   bin/nook                       the command (links nook's own code statically, so it runs
#                                  without LD_LIBRARY_PATH wherever it is installed)
#   lib/libnook.a, lib/libnook.so  every nook module in one library; the shared one exports
#                                  only the public API (nook_*, include/nook.h)
#   include/nook.h, lib/pkgconfig/nook.pc
#   share/man/man1/nook.1          generated from the command's own --help (packaging/gen-man.sh)
#   share/bash-completion/completions/nook, share/zsh/site-functions/_nook
#   lib/systemd/user/nook.service  runs `nook serve` as a user service
# Install: cmake --install build --prefix PREFIX (DESTDIR in the environment), or `make install`.
if(NOOK_FUZZ)
  return()   # a libFuzzer build is for fuzzing only
endif()
include(GNUInstallDirs)
set(NOOK_VERSION_NUM 0.1.0)   # the one place the version is written: nook --version, nook.pc, nook.1, .deb
if(TARGET nook)
  target_compile_definitions(nook PRIVATE NOOK_VERSION="${NOOK_VERSION_NUM}")
endif()

set(NOOK_LIB_MODULES nook_base nook_tensor nook_gguf nook_tokenizer nook_chat nook_sampling nook_model
    nook_convert nook_grammar nook_engine nook_net nook_store nook_router nook_specialist nook_server)
set(nook_static_modules "")
foreach(mod ${NOOK_LIB_MODULES})
  if(TARGET ${mod})
    get_target_property(mtype ${mod} TYPE)
    if(mtype STREQUAL "STATIC_LIBRARY")
      # position-independent so the same objects also make libnook.so; with
      # -fno-semantic-interposition (clang's default) calls inside nook stay direct, so
      # the code is what the executable's default PIE build already was
      set_target_properties(${mod} PROPERTIES POSITION_INDEPENDENT_CODE ON)
      if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
        target_compile_options(${mod} PRIVATE -fno-semantic-interposition)
      endif()
      list(APPEND nook_static_modules ${mod})
    endif()
  endif()
endforeach()

# libnook.so: the modules' objects whole, exporting nook_* only
file(WRITE ${CMAKE_BINARY_DIR}/nook.map "{ global: nook_*; local: *; };\n")
add_library(nook_shared SHARED ${CMAKE_SOURCE_DIR}/packaging/empty.c)
set_target_properties(nook_shared PROPERTIES OUTPUT_NAME nook VERSION ${NOOK_VERSION_NUM} SOVERSION 0
                      LINK_DEPENDS ${CMAKE_BINARY_DIR}/nook.map)
set(nook_archives "")
foreach(mod ${nook_static_modules})
  list(APPEND nook_archives "$<TARGET_FILE:${mod}>")
endforeach()
add_dependencies(nook_shared ${nook_static_modules})
set_property(TARGET nook_shared APPEND PROPERTY LINK_DEPENDS ${nook_archives})
target_link_libraries(nook_shared PRIVATE -Wl,--whole-archive ${nook_archives} -Wl,--no-whole-archive
  Threads::Threads m PkgConfig::PCRE2 PkgConfig::UTF8PROC PkgConfig::JANSSON PkgConfig::MHD PkgConfig::CURL
  PkgConfig::CRYPTO)
target_link_options(nook_shared PRIVATE -Wl,--version-script=${CMAKE_BINARY_DIR}/nook.map)
if(NOT NOOK_SANITIZE)   # the sanitizer runtimes come with the executable, not the library
  target_link_options(nook_shared PRIVATE -Wl,--no-undefined)
endif()

# libnook.a: the modules' archives merged (ar's MRI script)
set(mri "CREATE ${CMAKE_BINARY_DIR}/libnook.a\n")
foreach(mod ${nook_static_modules})
  string(APPEND mri "ADDLIB $<TARGET_FILE:${mod}>\n")
endforeach()
string(APPEND mri "SAVE\nEND\n")
file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/libnook.mri CONTENT "${mri}")
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/libnook.a
  COMMAND ${CMAKE_COMMAND} -E rm -f ${CMAKE_BINARY_DIR}/libnook.a
  COMMAND ${CMAKE_AR} -M < ${CMAKE_BINARY_DIR}/libnook.mri
  DEPENDS ${nook_static_modules} ${CMAKE_BINARY_DIR}/libnook.mri
  COMMENT "Merging the nook modules into libnook.a")
add_custom_target(nook_static_lib ALL DEPENDS ${CMAKE_BINARY_DIR}/libnook.a)

# nook.1 from the command's own help text (one source: the verbs' option tables)
if(TARGET nook)
  add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/nook.1
    COMMAND sh ${CMAKE_SOURCE_DIR}/packaging/gen-man.sh $<TARGET_FILE:nook> ${NOOK_VERSION_NUM} > ${CMAKE_BINARY_DIR}/nook.1
    DEPENDS nook ${CMAKE_SOURCE_DIR}/packaging/gen-man.sh
    COMMENT "Generating nook.1 from nook --help")
  add_custom_target(nook_man ALL DEPENDS ${CMAKE_BINARY_DIR}/nook.1)
  install(TARGETS nook RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(FILES ${CMAKE_BINARY_DIR}/nook.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()
install(TARGETS nook_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${CMAKE_BINARY_DIR}/libnook.a DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${CMAKE_SOURCE_DIR}/include/nook.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_SOURCE_DIR}/packaging/completion/nook.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME nook)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/completion/_nook DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/site-functions)
# nook.pc and the systemd unit name the install prefix, which `cmake --install --prefix`
# may choose at install time: packaging/install-files.cmake writes them then.
install(CODE "
  set(NOOK_SRC \"${CMAKE_SOURCE_DIR}\")
  set(NOOK_VERSION_NUM \"${NOOK_VERSION_NUM}\")
  set(NOOK_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(NOOK_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(NOOK_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  include(\"${CMAKE_SOURCE_DIR}/packaging/install-files.cmake\")
")
