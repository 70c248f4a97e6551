# FindCUDNN — locate cuDNN (headers + libcudnn).
#
# Searched, in order: CUDNN_ROOT / $ENV{CUDNN_ROOT}, $ENV{CUDNN_PATH}, $ENV{CUDNN_HOME};
# the CUDA toolkit
# (CUDAToolkit_INCLUDE_DIRS / CUDAToolkit_LIBRARY_DIR); the system; then the
# nvidia-cudnn-cu* Python wheel (site-packages/nvidia/cudnn/{include,lib}), found
# through `python3 -c "import nvidia.cudnn"`.  The wheel ships only libcudnn.so.9,
# so the library is also looked up by that versioned name.
#
# Sets CUDNN_FOUND, CUDNN_INCLUDE_DIR, CUDNN_LIBRARY, CUDNN_VERSION and the imported
# target CUDNN::cudnn.

set(_cudnn_hints)
set(_cudnn_wheel_paths)
if(CUDNN_ROOT)
  list(APPEND _cudnn_hints ${CUDNN_ROOT})
endif()
foreach(_cudnn_env CUDNN_ROOT CUDNN_PATH CUDNN_HOME)
  if(DEFINED ENV{${_cudnn_env}})
    list(APPEND _cudnn_hints $ENV{${_cudnn_env}})
  endif()
endforeach()
find_program(_cudnn_python NAMES python3 python)
if(_cudnn_python)
  execute_process(
    COMMAND ${_cudnn_python} -c "import nvidia.cudnn, os; print(list(nvidia.cudnn.__path__)[0])"
    OUTPUT_VARIABLE _cudnn_wheel OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _cudnn_py_rc ERROR_QUIET)
  if(_cudnn_py_rc EQUAL 0 AND IS_DIRECTORY "${_cudnn_wheel}")
    set(_cudnn_wheel_paths ${_cudnn_wheel})
  endif()
endif()

find_path(CUDNN_INCLUDE_DIR cudnn_version.h
  HINTS ${_cudnn_hints} ${CUDAToolkit_INCLUDE_DIRS}
  PATHS ${_cudnn_wheel_paths}
  PATH_SUFFIXES include)
find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9
  HINTS ${_cudnn_hints} ${CUDAToolkit_LIBRARY_DIR}
  PATHS ${_cudnn_wheel_paths}
  PATH_SUFFIXES lib lib64 lib/x64)

if(CUDNN_INCLUDE_DIR AND EXISTS "${CUDNN_INCLUDE_DIR}/cudnn_version.h")
  file(STRINGS "${CUDNN_INCLUDE_DIR}/cudnn_version.h" _cudnn_lines
       REGEX "^#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) +[0-9]+")
  foreach(_part MAJOR MINOR PATCHLEVEL)
    string(REGEX MATCH "CUDNN_${_part} +([0-9]+)" _m "${_cudnn_lines}")
    set(_cudnn_${_part} ${CMAKE_MATCH_1})
  endforeach()
  set(CUDNN_VERSION "${_cudnn_MAJOR}.${_cudnn_MINOR}.${_cudnn_PATCHLEVEL}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CUDNN
  REQUIRED_VARS CUDNN_LIBRARY CUDNN_INCLUDE_DIR
  VERSION_VAR CUDNN_VERSION)

if(CUDNN_FOUND AND NOT TARGET CUDNN::cudnn)
  add_library(CUDNN::cudnn UNKNOWN IMPORTED)
  set_target_properties(CUDNN::cudnn PROPERTIES
    IMPORTED_LOCATION "${CUDNN_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CUDNN_INCLUDE_DIR}")
endif()
mark_as_advanced(CUDNN_INCLUDE_DIR CUDNN_LIBRARY)
