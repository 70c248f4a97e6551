/* tests/testutil_png.h — PNG files of any channel count for the tests of the image
 * routes (gray, gray + alpha, RGB, RGBA: what a client may upload as a start image or a
 * mask), written with libpng's simplified API.  Linked only with DIFFUSIOND_SERVER=ON
 * (tests/CMakeLists.txt: diffusiond_testutil_png).
 * Ownership: the returned buffer is malloc'ed; the caller frees it.  Thread-safety:
 * reentrant. */
#ifndef DIFFUSIOND_TESTS_TESTUTIL_PNG_H
#define DIFFUSIOND_TESTS_TESTUTIL_PNG_H

#include <stddef.h>
#include <stdint.h>

/* A PNG of w×h pixels of `channels` (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA) 8-bit
 * samples each; *len its size.  Fails the running Check test on error. */
uint8_t *test_png_encode(const uint8_t *px, int w, int h, int channels, size_t *len);

/* Its base64 (standard alphabet, NUL-terminated, malloc'ed). */
char *test_png_base64(const uint8_t *px, int w, int h, int channels);

#endif
