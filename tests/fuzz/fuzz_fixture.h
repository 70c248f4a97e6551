/* tests/fuzz/fuzz_fixture.h — what the harnesses that resolve requests share: the tiny
 * SD1 fixture (FIXTURE, a diffusers folder; pass -DFIXTURE=... with an absolute path)
 * loaded once on a one-thread CPU backend.  A harness has no error path of its own, so
 * a fixture that cannot be loaded aborts with the reason on stderr.
 * Ownership: the model lives until the process ends.  Thread-safety: call it from
 * LLVMFuzzerInitialize only. */
#ifndef DIFFUSIOND_TESTS_FUZZ_FIXTURE_H
#define DIFFUSIOND_TESTS_FUZZ_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "engine/cpu/cpu_backend.h"
#include "models/sd_model.h"

#ifndef FIXTURE
#define FIXTURE "tests/fixtures/sd/sd1-tiny/diffusers"
#endif

static struct sd_model *fuzz_load_fixture(void)
{
    struct backend *b;
    struct errbuf err;
    struct sd_model_options opt;
    struct sd_model *m = NULL;
    if (cpu_backend_create(1, &b, &err) != STATUS_OK) {
        fprintf(stderr, "cpu backend: %s\n", err.msg);
        abort();
    }
    sd_model_options_default(&opt);
    opt.backend = b;
    if (sd_model_load(FIXTURE, &opt, &m, &err) != STATUS_OK) {
        fprintf(stderr, "%s: %s\n", FIXTURE, err.msg);
        abort();
    }
    return m;
}

#endif
