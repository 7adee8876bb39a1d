/*
 * sscard_call: load libSSCardDriver.so with dlopen, the way HIS/POS programs do, and call the
 * national functions. Written for sbcard's tests. Compiled against the library's own
 * SSCardDriver.h (-I its folder): every call below is type-checked against the header.
 *
 *   sscard_call LIB FUNCTION [ARGS...]     one call: prints the return code, then each output
 *   sscard_call LIB serve                  many calls, one library load: reads lines
 *                                          "FUNCTION\tARG\t...\n" on stdin, answers each with
 *                                          "CODE\tOUT1[\tOUT2]\n" (GBK, as the library gives it)
 *   sscard_call LIB list                   the function table: "NAME INPUTS OUTPUTS" per line
 *   sscard_call LIB sizes                  each function's buffer size: "NAME SIZE" per line
 *   sscard_call LIB threads N ITYPE        N threads call iReadCardBas(ITYPE) 5 times each;
 *                                          prints "threads ok" when every answer is the same
 *   sscard_call LIB seq ITYPE F1 F2 ...    calls the (int iType, char*) functions F1, F2, ...
 *                                          in turn on one card; prints each code and output
 *   sscard_call LIB writeread INFO ADDR DATA   iWriteCard, then iReadCard by RK, one card
 *
 * Every output buffer is the header's size for its function (SSCARD_MAX_OUTPUT_<function>:
 * 1024 for most, 1024*20 for iReadCard and iReadCard_HSM_Step2, 512 for the PIN functions),
 * followed by a guard zone that must still hold its pattern after the call: the library must
 * never write past the size the header gives.
 * PINs are never arguments of this program: the library asks its PIN source (driver.toml).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "SSCardDriver.h"

#define GUARD 256
#define MAX_ARGS 8
#define LINE 65536   /* a serve line: pWriteData may be 1024*20 (spec §3.1.1 表7) */

static void *lib;

static char *buffer(int size) {
    char *b = malloc(size + GUARD);
    memset(b, 0xA5, size + GUARD);
    return b;
}

static int guard_ok(const char *b, int size) {
    for (int i = size; i < size + GUARD; i++)
        if ((unsigned char)b[i] != 0xA5) return 0;
    return memchr(b, 0, size) != NULL;
}

static void *sym(const char *name) {
    void *f = dlsym(lib, name);
    if (!f) { fprintf(stderr, "no symbol %s\n", name); exit(3); }
    return f;
}

/* The function table: name, number of inputs, number of output buffers, the call.
 * I(n): input n as int, S(n): input n as char*, O(n): output buffer n. */
#define I(n) atoi(in[n])
#define S(n) (in[n])
#define O(n) (out[n])
#define U(n) ((unsigned char *)out[n])
#define FUNCTIONS(X) \
    X(iReadCardBas, 1, 1, (I(0), O(0))) \
    X(iReadCardBas_HSM_Step1, 1, 1, (I(0), O(0))) \
    X(iReadCardBas_HSM_Step2, 1, 1, (S(0), O(0))) \
    X(iVerifyPIN, 1, 1, (I(0), O(0))) \
    X(iChangePIN, 1, 1, (I(0), O(0))) \
    X(iReloadPIN, 2, 1, (I(0), S(1), O(0))) \
    X(iReloadPIN_HSM_Step1, 2, 1, (I(0), S(1), O(0))) \
    X(iReloadPIN_HSM_Step2, 1, 1, (S(0), O(0))) \
    X(iReloadPIN_HSM_Step3, 1, 1, (S(0), O(0))) \
    X(iUnblockPIN, 2, 1, (I(0), S(1), O(0))) \
    X(iUnblockPIN_HSM_Step1, 2, 1, (I(0), S(1), O(0))) \
    X(iUnblockPIN_HSM_Step2, 1, 1, (S(0), O(0))) \
    X(iUnblockPIN_HSM_Step3, 1, 1, (S(0), O(0))) \
    X(iReadCard, 4, 1, (I(0), I(1), S(2), S(3), O(0))) \
    X(iReadCard_HSM_Step1, 3, 1, (I(0), S(1), S(2), O(0))) \
    X(iReadCard_HSM_Step2, 1, 1, (S(0), O(0))) \
    X(iWriteCard, 4, 1, (I(0), S(1), S(2), S(3), O(0))) \
    X(iWriteCard_HSM_Step1, 3, 1, (I(0), S(1), S(2), O(0))) \
    X(iWriteCard_HSM_Step2, 2, 1, (S(0), S(1), O(0))) \
    X(iGetCardType, 0, 2, (U(0), O(1))) \
    X(iGetReaderInfo, 0, 2, (O(0), O(1))) \
    X(iGetDeviceInfo, 0, 1, (O(0))) \
    X(iDoDebit, 3, 1, (I(0), S(1), S(2), O(0))) \
    X(iDoDebit_HSM_Step1, 3, 1, (I(0), S(1), S(2), O(0))) \
    X(iDoDebit_HSM_Step2, 1, 1, (S(0), O(0))) \
    X(iReadDebitRecord, 1, 1, (I(0), O(0))) \
    X(PKI_SignData, 3, 1, (S(0), S(1), I(2), O(0))) \
    X(PKI_VerifySign, 5, 1, (S(0), S(1), S(2), S(3), I(4), O(0)))

struct function { const char *name; int inputs, outputs, size; };

/* The size is the header's macro for the function: one missing from the header fails to build. */
#define ENTRY(name, nin, nout, args) { #name, nin, nout, SSCARD_MAX_OUTPUT_##name },
static const struct function TABLE[] = { FUNCTIONS(ENTRY) };
#define COUNT (sizeof TABLE / sizeof TABLE[0])

static const struct function *find(const char *name) {
    for (size_t i = 0; i < COUNT; i++)
        if (!strcmp(TABLE[i].name, name)) return &TABLE[i];
    return NULL;
}

/* The call itself, cast to the header's prototype (__typeof__ is not evaluated: no link). */
#define DISPATCH(name, nin, nout, args) \
    if (!strcmp(f, #name)) return ((__typeof__(&name))sym(#name)) args;

static long dispatch(const char *f, char **in, char **out) {
    FUNCTIONS(DISPATCH)
    fprintf(stderr, "sscard_call does not know %s\n", f);
    exit(2);
}

/* One call with guarded buffers; the outputs are left in out[] (caller frees). */
static long call(const struct function *fn, char **in, char **out) {
    for (int i = 0; i < fn->outputs; i++) out[i] = buffer(fn->size);
    long rc = dispatch(fn->name, in, out);
    for (int i = 0; i < fn->outputs; i++)
        if (!guard_ok(out[i], fn->size)) { fprintf(stderr, "OVERFLOW in %s\n", fn->name); exit(4); }
    return rc;
}

static int serve(void) {
    static char line[LINE];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        char *fields[MAX_ARGS + 1];
        int n = 0;
        for (char *p = line;; ) {
            fields[n++] = p;
            char *tab = strchr(p, '\t');
            if (!tab || n > MAX_ARGS) break;
            *tab = 0;
            p = tab + 1;
        }
        const struct function *fn = find(fields[0]);
        if (!fn || n - 1 != fn->inputs) {
            printf("ERROR\tno function %s with %d inputs\n", fields[0], n - 1);
            fflush(stdout);
            continue;
        }
        char *out[2];
        long rc = call(fn, fields + 1, out);
        printf("%ld", rc);
        for (int i = 0; i < fn->outputs; i++) { printf("\t%s", out[i]); free(out[i]); }
        printf("\n");
        fflush(stdout);
    }
    return 0;
}

struct job { int itype; char first[SSCARD_MAX_OUTPUT_iReadCardBas]; int ok; };

static void *worker(void *arg) {
    struct job *job = arg;
    __typeof__(&iReadCardBas) read = (__typeof__(&iReadCardBas))sym("iReadCardBas");
    job->ok = 1;
    for (int i = 0; i < 5; i++) {
        char *out = buffer(SSCARD_MAX_OUTPUT_iReadCardBas);
        long rc = read(job->itype, out);
        if (rc != 0 || !guard_ok(out, SSCARD_MAX_OUTPUT_iReadCardBas)) job->ok = 0;
        if (i == 0) strcpy(job->first, out);
        else if (strcmp(job->first, out) != 0) job->ok = 0;
        free(out);
    }
    return NULL;
}

static int threads(int n, int itype) {
    pthread_t t[64];
    struct job jobs[64];
    if (n > 64) n = 64;
    for (int i = 0; i < n; i++) {
        jobs[i].itype = itype;
        pthread_create(&t[i], NULL, worker, &jobs[i]);
    }
    int ok = 1;
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        if (!jobs[i].ok || strcmp(jobs[i].first, jobs[0].first) != 0) ok = 0;
    }
    printf(ok ? "threads ok\n%s\n" : "threads FAILED\n%s\n", jobs[0].first);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: sscard_call LIB FUNCTION [ARGS...]\n"); return 2; }
    const char *f = argv[2];
    if (!strcmp(f, "list")) {
        for (size_t i = 0; i < COUNT; i++)
            printf("%s %d %d\n", TABLE[i].name, TABLE[i].inputs, TABLE[i].outputs);
        return 0;
    }
    if (!strcmp(f, "sizes")) {
        for (size_t i = 0; i < COUNT; i++) printf("%s %d\n", TABLE[i].name, TABLE[i].size);
        return 0;
    }
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 3; }
    if (!strcmp(f, "serve")) return serve();
    if (!strcmp(f, "threads") && argc == 5) return threads(atoi(argv[3]), atoi(argv[4]));
    if (!strcmp(f, "seq") && argc >= 5) {
        for (int i = 4; i < argc; i++) {
            const struct function *fn = find(argv[i]);
            if (!fn || fn->inputs != 1 || fn->outputs != 1) {
                fprintf(stderr, "seq: %s is not a (int iType, char*) function\n", argv[i]);
                return 2;
            }
            char *out[2];
            long rc = call(fn, argv + 3, out);
            printf("%ld\n%s\n", rc, out[0]);
            free(out[0]);
        }
        return 0;
    }
    char *out[2];
    long rc;
    int outs = 1;
    if (!strcmp(f, "writeread") && argc == 6) {
        char one[] = "1", two[] = "2";
        char *w[] = { one, argv[3], argv[4], argv[5] };
        rc = call(find("iWriteCard"), w, out);
        if (rc == 0) {
            free(out[0]);
            char *r[] = { one, two, argv[3], argv[4] };
            rc = call(find("iReadCard"), r, out);
        }
    } else {
        const struct function *fn = find(f);
        if (!fn || argc - 3 != fn->inputs) {
            fprintf(stderr, "sscard_call does not know how to call %s with %d arguments\n",
                    f, argc - 3);
            return 2;
        }
        rc = call(fn, argv + 3, out);
        outs = fn->outputs;
    }
    printf("%ld\n", rc);
    for (int i = 0; i < outs; i++) printf("%s\n", out[i]);
    return 0;
}
