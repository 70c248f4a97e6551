# FindCUBLASLT — locate cuBLASLt (cublasLt.h + libcublasLt) when the CUDA toolkit's
# CUDA::cublasLt target is missing (a toolkit without cuBLAS: the library then lives
# only in PyTorch's pip wheels).
#
# Searched, in order: CUBLASLT_ROOT / $ENV{CUBLASLT_ROOT}; the CUDA toolkit; the
# nvidia-cublas* Python wheels (site-packages/nvidia/cu13/{include,lib} for CUDA 13,
# site-packages/nvidia/cublas/{include,lib} for CUDA 12), found through
# `python3 -c "import nvidia"`.  Wheels ship only the versioned libcublasLt.so.N.
#
# Sets CUBLASLT_FOUND, CUBLASLT_INCLUDE_DIR, CUBLASLT_LIBRARY and the imported target
# CUBLASLT::cublasLt.

set(_lt_hints)
set(_lt_wheel_paths)
if(CUBLASLT_ROOT)
  list(APPEND _lt_hints ${CUBLASLT_ROOT})
endif()
if(DEFINED ENV{CUBLASLT_ROOT})
  list(APPEND _lt_hints $ENV{CUBLASLT_ROOT})
endif()
find_program(_lt_python NAMES python3 python)
if(_lt_python)
  execute_process(
    COMMAND ${_lt_python} -c "import nvidia, os; print(';'.join(os.path.join(p, s) for p in nvidia.__path__ for s in ('cu13', 'cublas', 'cu12')))"
    OUTPUT_VARIABLE _lt_wheel OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _lt_py_rc ERROR_QUIET)
  if(_lt_py_rc EQUAL 0)
    set(_lt_wheel_paths ${_lt_wheel})
  endif()
endif()

find_path(CUBLASLT_INCLUDE_DIR cublasLt.h
  HINTS ${_lt_hints} ${CUDAToolkit_INCLUDE_DIRS}
  PATHS ${_lt_wheel_paths}
  PATH_SUFFIXES include)
find_library(CUBLASLT_LIBRARY NAMES cublasLt libcublasLt.so.13 libcublasLt.so.12
  HINTS ${_lt_hints} ${CUDAToolkit_LIBRARY_DIR}
  PATHS ${_lt_wheel_paths}
  PATH_SUFFIXES lib lib64)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CUBLASLT REQUIRED_VARS CUBLASLT_LIBRARY CUBLASLT_INCLUDE_DIR)

if(CUBLASLT_FOUND AND NOT TARGET CUBLASLT::cublasLt)
  add_library(CUBLASLT::cublasLt UNKNOWN IMPORTED)
  set_target_properties(CUBLASLT::cublasLt PROPERTIES
    IMPORTED_LOCATION "${CUBLASLT_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CUBLASLT_INCLUDE_DIR}")
endif()
mark_as_advanced(CUBLASLT_INCLUDE_DIR CUBLASLT_LIBRARY)
