# install-files.cmake: run by `cmake --install` (cmake/install.cmake) to write the files
# that name the install prefix, which is only known then (--prefix may override it).
set(root "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}")

set(pc "prefix=${CMAKE_INSTALL_PREFIX}
exec_prefix=\${prefix}
libdir=\${prefix}/${NOOK_LIBDIR}
includedir=\${prefix}/${NOOK_INCLUDEDIR}

Name: nook
Description: local-first language-model runtime (GGUF models, llama.cpp-exact engine)
Version: ${NOOK_VERSION_NUM}
Requires.private: libpcre2-8 libutf8proc jansson libmicrohttpd libcurl libcrypto
Cflags: -I\${includedir}
Libs: -L\${libdir} -lnook
Libs.private: -lpthread -lm
")
file(MAKE_DIRECTORY "${root}/${NOOK_LIBDIR}/pkgconfig")
file(WRITE "${root}/${NOOK_LIBDIR}/pkgconfig/nook.pc" "${pc}")
message(STATUS "Installing: ${root}/${NOOK_LIBDIR}/pkgconfig/nook.pc")

file(READ "${NOOK_SRC}/packaging/nook.service.in" unit)
string(REPLACE "@BINDIR@" "${CMAKE_INSTALL_PREFIX}/${NOOK_BINDIR}" unit "${unit}")
file(MAKE_DIRECTORY "${root}/lib/systemd/user")
file(WRITE "${root}/lib/systemd/user/nook.service" "${unit}")
message(STATUS "Installing: ${root}/lib/systemd/user/nook.service")
