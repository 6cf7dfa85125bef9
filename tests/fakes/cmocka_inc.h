/**
 * @file
 * cmocka needs <setjmp.h>, <stdarg.h>, <stddef.h> and <stdint.h> before <cmocka.h>; this
 * header keeps that order where clang-format's include sorting cannot reach.
 */
#ifndef COREPIPE_TEST_CMOCKA_INC_H
#define COREPIPE_TEST_CMOCKA_INC_H

// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#endif
