# find_package(stagegate) for an installed stagegate: the targets stagegate::sg_registry,
# stagegate::sg_reports, stagegate::sg_harness, stagegate::sg_kernels, stagegate::sg_datasets
# and stagegate::sg_common, with the system libraries they need.
include(CMakeFindDependencyMacro)
find_dependency(OpenSSL 3)
find_dependency(Threads)
find_dependency(HDF5 COMPONENTS C)
find_dependency(ZLIB)
find_dependency(PkgConfig)
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
pkg_check_modules(HWLOC REQUIRED IMPORTED_TARGET hwloc)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(SQLITE REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
include(${CMAKE_CURRENT_LIST_DIR}/stagegateTargets.cmake)
