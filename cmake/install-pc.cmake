# install-pc.cmake -- run by `cmake --install` (CMakeLists.txt sets ATOLL_PC_IN, the
# .pc.in files configured when building, and ATOLL_PC_LIBDIR before it): writes each
# .pc file with the prefix being installed to (--prefix, or CMAKE_INSTALL_PREFIX), under
# DESTDIR. Written straight from memory, not through a file in the build tree, so an
# install as root leaves nothing there but CMake's own install_manifest.txt.
foreach(in ${ATOLL_PC_IN})
  get_filename_component(name "${in}" NAME_WLE) # atoll.pc.in -> atoll.pc
  set(PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  file(READ "${in}" text)
  string(CONFIGURE "${text}" text @ONLY)
  set(dest "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/${ATOLL_PC_LIBDIR}/pkgconfig/${name}")
  message(STATUS "Installing: ${dest}")
  file(WRITE "${dest}" "${text}")
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${dest}")
endforeach()
