/* llm.c-style AdamW over one flat parameter buffer, through adamant's C ABI.
 *
 * The model's parameters, gradients and both moments are each one contiguous float array
 * (as llm.c's params_memory / grads_memory / m_memory / v_memory). Every step: the learning
 * rate from a warm-up + cosine schedule, the global gradient norm through the two-phase
 * partials/combine reduction, the clip coefficient, then one adamant_adamw_step call over
 * the whole buffer. A step with a non-finite gradient norm is skipped, as llm.c would.
 *
 * It prints one line per step with FNV-1a hashes of the buffers' bytes; the Rust test
 * ffi/tests/examples.rs computes the same lines with adamant's Rust API.
 * Build: cc -std=c11 llmc_adamw.c $(pkg-config --cflags --libs adamant)   */
#include <adamant.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_PARAMETERS ((size_t)(3 * 4096 + 123))
#define STEPS 6

/* The generator shared with the Rust test: a 64-bit LCG; values are exact multiples of 2^-23. */
static uint64_t lcg_state = 0x2545F4914F6CDD1DULL;
static float next_value(void) {
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    uint32_t k = (uint32_t)(lcg_state >> 40); /* 24 bits */
    return ((float)k / 16777216.0f) * 2.0f - 1.0f;
}

static uint64_t fnv1a(const void *data, size_t bytes) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < bytes; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static int fail(const char *what, adamant_status s) {
    fprintf(stderr, "%s: %s (%u)\n", what, adamant_status_string((uint32_t)s), (unsigned)s);
    return 1;
}

int main(void) {
    if (strcmp(adamant_version(), ADAMANT_VERSION_STRING) != 0 ||
        adamant_numeric_contract_version() != ADAMANT_NUMERIC_CONTRACT_VERSION) {
        fprintf(stderr, "header/library mismatch: %s vs %s\n", adamant_version(),
                ADAMANT_VERSION_STRING);
        return 1;
    }
    const size_t n = NUM_PARAMETERS;
    float *params = malloc(n * sizeof(float));
    float *grads = malloc(n * sizeof(float));
    float *m = calloc(n, sizeof(float));
    float *v = calloc(n, sizeof(float));
    size_t num_partials = adamant_reduce_tile_count(n);
    float *partials = malloc(num_partials * sizeof(float));
    if (!params || !grads || !m || !v || !partials) return 1;
    for (size_t i = 0; i < n; i++) params[i] = next_value() * 0.02f;

    adamant_adam_config config = adamant_adamw_config_default();
    config.beta1 = 0.9;
    config.beta2 = 0.95;
    config.eps = 1e-8;
    config.weight_decay = 0.1;

    adamant_schedule schedule = adamant_schedule_default();
    schedule.init_lr = 0.0;
    schedule.peak_lr = 6e-4;
    schedule.final_lr = 6e-5;
    schedule.warmup_steps = 2;
    schedule.total_steps = 10;
    schedule.decay = ADAMANT_DECAY_COSINE;

    uint64_t step = 0; /* steps applied so far */
    for (int iter = 0; iter < STEPS; iter++) {
        for (size_t i = 0; i < n; i++) grads[i] = next_value();
        if (iter == 1) { /* signed zeros, a subnormal, extremes: all finite */
            grads[0] = -0.0f;
            grads[1] = 1e-45f;
            grads[2] = 1.0e18f;
            grads[n - 1] = -1.0e18f;
        }
        if (iter == 3) grads[7] = NAN; /* this step must be skipped */

        adamant_step_options options = adamant_step_options_default();
        adamant_status s = adamant_schedule_lr(&schedule, step, &options.lr);
        if (s != ADAMANT_STATUS_OK) return fail("schedule", s);

        /* Global norm: partials (per 4096-element tile) then combine, as a sharded run
         * would do after gathering every rank's partials. */
        adamant_const_tensor g = {grads, ADAMANT_DTYPE_F32, n};
        s = adamant_reduce_partials(g, ADAMANT_REDUCE_OP_SUM_SQ, partials, num_partials);
        if (s != ADAMANT_STATUS_OK) return fail("partials", s);
        float sum_sq = 0.0f, clip_coef = 1.0f, norm = 0.0f;
        s = adamant_reduce_combine(partials, num_partials, &sum_sq);
        if (s != ADAMANT_STATUS_OK) return fail("combine", s);
        s = adamant_clip_coef_global_norm(sum_sq, 1.0f, 1e-6f, &clip_coef, &norm);
        if (s == ADAMANT_STATUS_SKIPPED_NON_FINITE) {
            printf("iter %d skipped non-finite norm\n", iter);
            continue;
        }
        if (s != ADAMANT_STATUS_OK) return fail("clip", s);
        options.has_clip_coef = 1;
        options.clip_coef = clip_coef;

        adamant_tensor p = {params, ADAMANT_DTYPE_F32, n};
        adamant_tensor mt = {m, ADAMANT_DTYPE_F32, n};
        adamant_tensor vt = {v, ADAMANT_DTYPE_F32, n};
        s = adamant_adamw_step(&config, &options, step, p, g, mt, vt, &step);
        if (s != ADAMANT_STATUS_OK) return fail("adamw", s);
        uint32_t norm_bits;
        memcpy(&norm_bits, &norm, sizeof norm_bits);
        printf("iter %d step %" PRIu64 " norm %08x param %016" PRIx64 " exp_avg %016" PRIx64
               " exp_avg_sq %016" PRIx64 "\n",
               iter, step, (unsigned)norm_bits, fnv1a(params, n * sizeof(float)),
               fnv1a(m, n * sizeof(float)), fnv1a(v, n * sizeof(float)));
    }
    free(params);
    free(grads);
    free(m);
    free(v);
    free(partials);
    return 0;
}
