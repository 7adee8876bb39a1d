/*
 * sscard_call: load libSSCardDriver.so with dlopen, the way HIS/POS programs do, and call one
 * national function (or many, from several threads). Written for sbcard's tests.
 *
 *   sscard_call LIB FUNCTION [ARGS...]     prints the return code, then each output buffer
 *   sscard_call LIB threads N ITYPE        N threads call iReadCardBas(ITYPE) 5 times each;
 *                                          prints "threads ok" when every answer is the same
 *   sscard_call LIB seq ITYPE F1 F2 ...    calls the (int iType, char*) functions F1, F2, ...
 *                                          in turn on one card; prints each code and output
 *
 * Every output buffer is 1024 bytes (the national convention) followed by a guard zone that
 * must still hold its pattern after the call: the library must never write past 1024 bytes.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF 1024
#define GUARD 256

typedef long (*fn_i_s)(int, char *);
typedef long (*fn_s_s)(char *, char *);
typedef long (*fn_i_s_s)(int, char *, char *);
typedef long (*fn_ss)(char *, char *);
typedef long (*fn_u_s)(unsigned char *, char *);
typedef long (*fn_s)(char *);

static void *lib;

static char *buffer(void) {
    char *b = malloc(BUF + GUARD);
    memset(b, 0xA5, BUF + GUARD);
    return b;
}

static int guard_ok(const char *b) {
    for (int i = BUF; i < BUF + GUARD; i++)
        if ((unsigned char)b[i] != 0xA5) return 0;
    return memchr(b, 0, BUF) != NULL;
}

static void *sym(const char *name) {
    void *f = dlsym(lib, name);
    if (!f) { fprintf(stderr, "no symbol %s\n", name); exit(3); }
    return f;
}

struct job { int itype; char first[BUF]; int ok; };

static void *worker(void *arg) {
    struct job *job = arg;
    fn_i_s read = (fn_i_s)sym("iReadCardBas");
    job->ok = 1;
    for (int i = 0; i < 5; i++) {
        char *out = buffer();
        long rc = read(job->itype, out);
        if (rc != 0 || !guard_ok(out)) job->ok = 0;
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
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 3; }
    const char *f = argv[2];
    if (strcmp(f, "threads") == 0 && argc == 5) return threads(atoi(argv[3]), atoi(argv[4]));
    if (strcmp(f, "seq") == 0 && argc >= 5) {
        for (int i = 4; i < argc; i++) {
            char *out = buffer();
            long rc = ((fn_i_s)sym(argv[i]))(atoi(argv[3]), out);
            if (!guard_ok(out)) { fprintf(stderr, "OVERFLOW\n"); return 4; }
            printf("%ld\n%s\n", rc, out);
            free(out);
        }
        return 0;
    }
    char *a = buffer(), *b = buffer();
    long rc;
    int outs = 1;
    if (!strcmp(f, "iReadCardBas") || !strcmp(f, "iReadCardBas_HSM_Step1")
        || !strcmp(f, "iVerifyPIN") || !strcmp(f, "iChangePIN")) {
        rc = ((fn_i_s)sym(f))(atoi(argv[3]), a);
    } else if (strstr(f, "_Step2") || strstr(f, "_Step3")) {
        rc = ((fn_s_s)sym(f))(argv[3], a);
    } else if (!strcmp(f, "iReloadPIN") || !strcmp(f, "iUnblockPIN") || strstr(f, "_Step1")) {
        rc = ((fn_i_s_s)sym(f))(atoi(argv[3]), argv[4], a);
    } else if (!strcmp(f, "iGetReaderInfo")) {
        rc = ((fn_ss)sym(f))(a, b); outs = 2;
    } else if (!strcmp(f, "iGetCardType")) {
        rc = ((fn_u_s)sym(f))((unsigned char *)a, b); outs = 2;
    } else if (!strcmp(f, "iGetDeviceInfo")) {
        rc = ((fn_s)sym(f))(a);
    } else if (!strcmp(f, "iWriteCard")) {
        rc = ((long (*)(int, char *, char *, char *, char *))sym(f))(
            atoi(argv[3]), argv[4], argv[5], argv[6], a);
    } else if (!strcmp(f, "iReadCard")) {
        rc = ((long (*)(int, int, char *, char *, char *))sym(f))(
            atoi(argv[3]), atoi(argv[4]), argv[5], argv[6], a);
    } else if (!strcmp(f, "writeread")) {    /* iWriteCard, then iReadCard by RK, one card */
        rc = ((long (*)(int, char *, char *, char *, char *))sym("iWriteCard"))(
            1, argv[3], argv[4], argv[5], a);
        if (rc == 0)
            rc = ((long (*)(int, int, char *, char *, char *))sym("iReadCard"))(
                1, 2, argv[3], argv[4], a);
    } else if (!strcmp(f, "PKI_SignData")) {
        rc = ((long (*)(char *, char *, int, char *))sym(f))(argv[3], argv[4], atoi(argv[5]), a);
    } else {
        fprintf(stderr, "sscard_call does not know how to call %s\n", f);
        return 2;
    }
    if (!guard_ok(a) || (outs == 2 && !guard_ok(b))) { fprintf(stderr, "OVERFLOW\n"); return 4; }
    printf("%ld\n%s\n", rc, a);
    if (outs == 2) printf("%s\n", b);
    return 0;
}
