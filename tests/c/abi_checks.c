/* The C ABI from C11: every error class through a real C caller, buffers checked byte for
 * byte after each error; built with -Wall -Wextra -Wpedantic -Werror and ASan/UBSan by
 * scripts/test-c.sh, against libadamant.a and libadamant.so. Prints "ok N checks". */
#include <adamant.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

static int checks = 0;
static int failures = 0;

#define CHECK(cond)                                                   \
    do {                                                              \
        checks++;                                                     \
        if (!(cond)) {                                                \
            failures++;                                               \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                             \
    } while (0)

#define N 16
/* One arena for every buffer so one memcmp covers them all. */
static _Alignas(16) unsigned char arena[8 * 64];
static unsigned char snapshot[sizeof arena];

static float *region(int r) { return (float *)(void *)(arena + 64 * r); }

static adamant_tensor view(int r) {
    adamant_tensor t = {region(r), ADAMANT_DTYPE_F32, N};
    return t;
}

static adamant_const_tensor cview(int r) {
    adamant_const_tensor t = {region(r), ADAMANT_DTYPE_F32, N};
    return t;
}

static void fill(void) {
    for (int r = 0; r < 8; r++)
        for (int i = 0; i < N; i++) region(r)[i] = (float)(r * N + i) * 0.01f - 0.3f;
    memcpy(snapshot, arena, sizeof arena);
}

static int untouched(void) { return memcmp(snapshot, arena, sizeof arena) == 0; }

/* AdamW with the given views; returns the status and checks out_step on error. */
static adamant_status adamw(const adamant_adam_config *c, const adamant_step_options *o,
                            uint64_t step, adamant_tensor p, adamant_const_tensor g,
                            adamant_tensor m, adamant_tensor v) {
    uint64_t out = 12345;
    adamant_status s = adamant_adamw_step(c, o, step, p, g, m, v, &out);
    if (s != ADAMANT_STATUS_OK) CHECK(out == 12345);
    return s;
}

int main(void) {
    adamant_adam_config cfg = adamant_adamw_config_default();
    adamant_step_options opt = adamant_step_options_default();
    adamant_status s;

    fill();
    s = adamw(&cfg, &opt, 0, view(0), cview(1), view(2), view(3));
    CHECK(s == ADAMANT_STATUS_OK && !untouched());

    fill();
    CHECK(adamw(NULL, &opt, 0, view(0), cview(1), view(2), view(3)) == ADAMANT_STATUS_NULL_POINTER);
    adamant_tensor p = view(0);
    p.data = NULL;
    CHECK(adamw(&cfg, &opt, 0, p, cview(1), view(2), view(3)) == ADAMANT_STATUS_NULL_POINTER);
    p = view(0);
    p.len = N - 1;
    CHECK(adamw(&cfg, &opt, 0, p, cview(1), view(2), view(3)) == ADAMANT_STATUS_LENGTH_MISMATCH);
    p = view(0);
    p.data = arena + 1;
    CHECK(adamw(&cfg, &opt, 0, p, cview(1), view(2), view(3)) == ADAMANT_STATUS_MISALIGNED);
    CHECK(adamw(&cfg, &opt, 0, view(0), cview(1), view(2), view(2)) == ADAMANT_STATUS_OVERLAP);
    p = view(0);
    p.dtype = 3;
    CHECK(adamw(&cfg, &opt, 0, p, cview(1), view(2), view(3)) == ADAMANT_STATUS_INVALID_ENUM);
    adamant_adam_config bad = cfg;
    bad.beta2 = 1.0;
    CHECK(adamw(&bad, &opt, 0, view(0), cview(1), view(2), view(3)) == ADAMANT_STATUS_INVALID_CONFIG);
    adamant_tensor m16 = view(2), v16 = view(3);
    m16.dtype = v16.dtype = ADAMANT_DTYPE_F16;
    CHECK(adamw(&cfg, &opt, 0, view(0), cview(1), m16, v16) == ADAMANT_STATUS_UNSUPPORTED_DTYPE);
    adamant_step_options o2 = opt;
    o2.found_inf = 1;
    CHECK(adamw(&cfg, &o2, 0, view(0), cview(1), view(2), view(3)) == ADAMANT_STATUS_SKIPPED_FOUND_INF);
    CHECK(adamw(&cfg, &opt, UINT64_MAX, view(0), cview(1), view(2), view(3)) == ADAMANT_STATUS_STEP_OVERFLOW);
    p = view(0);
    p.len = SIZE_MAX;
    adamant_const_tensor g = cview(1);
    g.len = SIZE_MAX;
    CHECK(adamw(&cfg, &opt, 0, p, g, view(2), view(3)) == ADAMANT_STATUS_LENGTH_TOO_LARGE);
    CHECK(untouched());

    /* A non-finite gradient in the second tensor of a multi call: nothing written at all. */
    region(5)[3] = INFINITY;
    memcpy(snapshot, arena, sizeof arena);
    o2 = opt;
    o2.check_finite = 1;
    adamant_tensor ps[2] = {view(0), view(4)};
    adamant_const_tensor gs[2] = {cview(1), cview(5)};
    adamant_tensor ms[2] = {view(2), view(6)};
    adamant_tensor vs[2] = {view(3), view(7)};
    uint64_t out = 9;
    s = adamant_adamw_step_multi(&cfg, &o2, 0, ps, gs, ms, vs, 2, &out);
    CHECK(s == ADAMANT_STATUS_SKIPPED_NON_FINITE && out == 9 && untouched());
    s = adamant_adamw_step_multi(&cfg, &opt, 0, ps, gs, ms, vs, 2, &out);
    CHECK(s == ADAMANT_STATUS_OK && out == 1 && !untouched());

    /* CUDA entry points without an NVIDIA driver (this test runs on machines without one):
     * the library loaded, valid calls report no driver and touch nothing, bad arguments
     * still report their own status first. The "device" pointers are host memory here. */
    CHECK(adamant_cuda_available() == ADAMANT_STATUS_NO_CUDA_DRIVER);
    memcpy(snapshot, arena, sizeof arena);
    {
        static float lr = 1e-3f, found = 0.0f;
        static uint64_t dstep = 5;
        adamant_cuda_step_args a = {&lr, &dstep, NULL, NULL, &found, 1};
        CHECK(adamant_cuda_adamw_step(&cfg, &a, view(0), cview(1), view(2), view(3), NULL) ==
              ADAMANT_STATUS_NO_CUDA_DRIVER);
        CHECK(adamant_cuda_adamw_step_multi(&cfg, &a, ps, gs, ms, vs, 2, NULL) ==
              ADAMANT_STATUS_NO_CUDA_DRIVER);
        CHECK(adamant_cuda_step_commit(&dstep, &found, NULL) == ADAMANT_STATUS_NO_CUDA_DRIVER);
        CHECK(adamant_cuda_adamw_step(&cfg, &a, view(0), cview(1), view(2), view(2), NULL) ==
              ADAMANT_STATUS_OVERLAP);
        a.found_inf = NULL;
        CHECK(adamant_cuda_adamw_step(&cfg, &a, view(0), cview(1), view(2), view(3), NULL) ==
              ADAMANT_STATUS_NULL_POINTER);
        CHECK(lr == 1e-3f && found == 0.0f && dstep == 5 && untouched());

        /* Tensor table: bytes query -> encode (host work, succeeds without a driver) -> the
         * caller's device copy -> step_table (no driver here). Errors write nothing. */
        size_t tb = adamant_cuda_tensor_table_bytes(2);
        CHECK(tb == 128 && adamant_cuda_tensor_table_bytes(0) == 0);
        _Alignas(8) static unsigned char table[128], dev_table[128];
        adamant_cuda_tensor_table desc;
        memset(&desc, 0, sizeof desc);
        memset(table, 0xab, sizeof table);
        adamant_tensor bad_ms[2] = {view(2), view(6)};
        bad_ms[1].dtype = ADAMANT_DTYPE_BF16;
        CHECK(adamant_cuda_tensor_table_encode(ADAMANT_CUDA_RULE_ADAM, NULL, ps, gs, bad_ms, vs,
                                               2, table, tb, &desc) ==
              ADAMANT_STATUS_UNSUPPORTED_DTYPE);
        CHECK(adamant_cuda_tensor_table_encode(ADAMANT_CUDA_RULE_ADAM, NULL, ps, gs, ms, vs, 2,
                                               table, tb - 1, &desc) ==
              ADAMANT_STATUS_LENGTH_MISMATCH);
        CHECK(adamant_cuda_tensor_table_encode(7, NULL, ps, gs, ms, vs, 2, table, tb, &desc) ==
              ADAMANT_STATUS_INVALID_ENUM);
        CHECK(desc.count == 0 && table[0] == 0xab && table[127] == 0xab);
        CHECK(adamant_cuda_tensor_table_encode(ADAMANT_CUDA_RULE_ADAM, NULL, ps, gs, ms, vs, 2,
                                               table, tb, &desc) == ADAMANT_STATUS_OK);
        CHECK(desc.count == 2 && desc.total_chunks == 2 && desc.state_count == 2 &&
              desc.rule == ADAMANT_CUDA_RULE_ADAM && desc.clip_coef == NULL);
        memcpy(dev_table, table, tb); /* cudaMemcpy on a real device */
        a.found_inf = &found;
        CHECK(adamant_cuda_adamw_step_table(&cfg, &a, &desc, dev_table, NULL) ==
              ADAMANT_STATUS_NO_CUDA_DRIVER);
        adamant_lion_config lion = adamant_lion_config_default();
        CHECK(adamant_cuda_lion_step_table(&lion, &a, &desc, dev_table, NULL) ==
              ADAMANT_STATUS_INVALID_CONFIG);
        CHECK(adamant_cuda_adamw_step_table(&cfg, &a, &desc, dev_table + 4, NULL) ==
              ADAMANT_STATUS_MISALIGNED);
        CHECK(lr == 1e-3f && found == 0.0f && dstep == 5 && untouched());
    }

    /* Adam-mini, clipping and compression on the device: the table encodes are host work
     * and succeed; the launches report no driver; argument errors come first. */
    memcpy(snapshot, arena, sizeof arena);
    {
        const adamant_status NO_DRIVER = ADAMANT_STATUS_NO_CUDA_DRIVER;
        static float lr = 1e-3f, found = 0.0f;
        static uint64_t dstep = 5;
        adamant_cuda_step_args a = {&lr, &dstep, NULL, NULL, &found, 1};
        adamant_adam_mini_config mc = adamant_adam_mini_config_default();
        adamant_block_layout lay[2] = {{ADAMANT_BLOCK_KIND_ROWS, 4, NULL, 0, 1},
                                       {ADAMANT_BLOCK_KIND_ELEMENT, 0, NULL, 0, 0}};
        adamant_tensor mp[2] = {view(0), view(4)}, mm[2] = {view(2), view(6)};
        adamant_tensor mv[2] = {view(3), view(7)};
        adamant_const_tensor mg[2] = {cview(1), cview(5)};
        mv[0].len = 4;
        size_t tb = 0, sl = 0;
        CHECK(adamant_cuda_adam_mini_table_bytes(lay, mp, 2, &tb) == ADAMANT_STATUS_OK &&
              tb == 112 + 3 * 64);
        CHECK(adamant_cuda_adam_mini_scratch_len(lay, mp, 2, &sl) == ADAMANT_STATUS_OK && sl == 8);
        static _Alignas(8) unsigned char table[112 + 3 * 64];
        static float scratch[8];
        adamant_cuda_adam_mini_table desc;
        CHECK(adamant_cuda_adam_mini_table_encode(lay, mp, mg, mm, mv, NULL, 2, scratch, sl, table,
                                                  tb, &desc) == ADAMANT_STATUS_OK &&
              desc.segment_count == 1 && desc.plain_count == 1 && desc.scan_count == 2);
        CHECK(adamant_cuda_adam_mini_step_table(&mc, &a, &desc, table, NULL) == NO_DRIVER);
        lay[0].block_len = 3;
        CHECK(adamant_cuda_adam_mini_table_encode(lay, mp, mg, mm, mv, NULL, 2, scratch, sl, table,
                                                  tb, &desc) == ADAMANT_STATUS_LENGTH_MISMATCH);

        size_t cb = 0, cl = 0;
        CHECK(adamant_cuda_clip_table_bytes(2, &cb) == ADAMANT_STATUS_OK && cb == 64);
        CHECK(adamant_cuda_clip_scratch_len(mg, 2, &cl) == ADAMANT_STATUS_OK && cl == 8);
        static _Alignas(8) unsigned char ctable[64];
        static float cscratch[8], gamma[2] = {1.0f, 1.0f}, coefs[2], record[4];
        static uint64_t cstep = 3;
        adamant_cuda_clip_table cd;
        CHECK(adamant_cuda_clip_table_encode(mg, 2, cscratch, cl, ctable, cb, &cd) ==
                  ADAMANT_STATUS_OK &&
              cd.count == 2 && cd.grad_dtype == ADAMANT_DTYPE_F32);
        adamant_adagc_config ac = adamant_adagc_config_default();
        CHECK(adamant_cuda_adagc_coefs(&ac, &cd, ctable, NULL, gamma, 2, &cstep, coefs, record,
                                       NULL) == NO_DRIVER);
        CHECK(adamant_cuda_adagc_coefs(&ac, &cd, ctable, NULL, gamma, 1, &cstep, coefs, record,
                                       NULL) == ADAMANT_STATUS_LENGTH_MISMATCH);
        CHECK(adamant_cuda_adagc_commit(&ac, &cd, gamma, 2, &cstep, record, &found, NULL) ==
              NO_DRIVER);
        CHECK(adamant_cuda_clip_coef_global_norm(1.0f, 1e-6f, &cd, ctable, NULL, coefs, record,
                                                 NULL) == NO_DRIVER);
        CHECK(adamant_cuda_clip_coef_global_norm(1.0f, 1e-3f, &cd, ctable, NULL, coefs, record,
                                                 NULL) == ADAMANT_STATUS_INVALID_CONFIG);
        CHECK(gamma[0] == 1.0f && cstep == 3 && coefs[0] == 0.0f && record[0] == 0.0f);

        static _Alignas(4) unsigned char packed[32], packed2[16];
        static float status = 0.0f, deq[16], err[16];
        size_t pl = 0, pl8 = 0;
        CHECK(adamant_quant_packed_len(16, 8, 4, &pl) == ADAMANT_STATUS_OK && pl == 16);
        CHECK(adamant_quant_packed_len(8, 8, 4, &pl8) == ADAMANT_STATUS_OK && pl8 == 8);
        CHECK(adamant_cuda_quantize(cview(1), 8, 4, packed, pl, &status, NULL) == NO_DRIVER);
        CHECK(adamant_cuda_quantize(cview(1), 8, 5, packed, pl, &status, NULL) ==
              ADAMANT_STATUS_INVALID_ENUM);
        CHECK(adamant_cuda_quantize(cview(1), 8, 4, packed, pl, NULL, NULL) ==
              ADAMANT_STATUS_NULL_POINTER);
        CHECK(adamant_cuda_dequantize(packed, pl, 8, 4, deq, 16, &status, NULL) == NO_DRIVER);
        adamant_loco_config lc = adamant_loco_config_default();
        lc.group_len = 8;
        lc.error_int8 = 0;
        adamant_loco_sizes z;
        CHECK(adamant_loco_layout_sizes(&lc, 16, 2, 1, &z) == ADAMANT_STATUS_OK);
        uint64_t ostep = 7;
        CHECK(adamant_cuda_loco_compress(&lc, 0, 2, 1, cview(1), err, z.error_len, packed,
                                         z.compress_len, &ostep, &status, NULL) == NO_DRIVER);
        CHECK(adamant_cuda_loco_reduce_hop(&lc, 0, 16, 2, 1, packed, z.compress_len, err, 0,
                                           packed2, 0, &status,
                                           NULL) == ADAMANT_STATUS_LENGTH_MISMATCH);
        CHECK(adamant_cuda_loco_decompress_reduce(&lc, 16, 2, 1, packed, z.received_len, deq,
                                                  z.shard_len, &status, NULL) == NO_DRIVER);
        CHECK(adamant_cuda_ef_worker_compress(cview(1), 2, 8, 4, 0, err, 16, packed, 2 * pl8,
                                              &status, NULL) == NO_DRIVER);
        CHECK(adamant_cuda_ef_server_compress(8, 8, 4, 4, 2, packed, 2 * pl8, 0, err, 8, packed2,
                                              pl8, &status, NULL) == NO_DRIVER);
        CHECK(adamant_cuda_ef_decompress(packed, 2 * pl8, 2, 8, 4, deq, 16, &status, NULL) ==
              NO_DRIVER);
        static const unsigned char zeros[32];
        CHECK(status == 0.0f && ostep == 7 && deq[0] == 0.0f && err[0] == 0.0f &&
              memcmp(packed, zeros, sizeof packed) == 0);
        CHECK(lr == 1e-3f && found == 0.0f && dstep == 5 && untouched());
    }

    /* Status strings: static, non-empty, unknown codes named as such. */
    for (uint32_t c = 0; c <= ADAMANT_STATUS_NO_CUDA_DRIVER; c++)
        CHECK(adamant_status_string(c) != NULL && adamant_status_string(c)[0] != '\0');
    CHECK(strcmp(adamant_status_string(999), "unknown status code") == 0);
    CHECK(adamant_dtype_size(ADAMANT_DTYPE_BF16) == 2 && adamant_dtype_size(7) == 0);
    CHECK(strcmp(adamant_version(), ADAMANT_VERSION_STRING) == 0);

    if (failures) {
        fprintf(stderr, "%d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("ok %d checks\n", checks);
    return 0;
}
