/* empty.c: libnook.so is made of the nook modules' archives linked whole (cmake/install.cmake);
 * CMake wants at least one source of its own for the target. */
typedef int nook_empty_translation_unit;
