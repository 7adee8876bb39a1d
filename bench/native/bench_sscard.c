/*
 * bench_sscard LIB N ITYPE: time iReadCardBas through libSSCardDriver.so, as a C program
 * sees it. Prints JSON: the first call (dlopen + interpreter start + imports + the read), and
 * the median of N further calls. Written for sbcard's bench/bench_national.py.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: bench_sscard LIB N ITYPE\n"); return 2; }
    int n = atoi(argv[2]), itype = atoi(argv[3]);
    char out[1024];
    double t0 = now_ms();
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 3; }
    long (*read)(int, char *) = (long (*)(int, char *))dlsym(lib, "iReadCardBas");
    long rc = read(itype, out);
    double first = now_ms() - t0;
    if (rc != 0) { fprintf(stderr, "iReadCardBas: %ld\n", rc); return 4; }
    double *times = malloc(sizeof(double) * (n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        double s = now_ms();
        rc = read(itype, out);
        times[i] = now_ms() - s;
        if (rc != 0) { fprintf(stderr, "iReadCardBas: %ld\n", rc); return 4; }
    }
    qsort(times, n, sizeof(double), cmp);
    printf("{\"first_call_ms\": %.3f, \"median_ms\": %.4f, \"calls\": %d}\n", first,
           n ? times[n / 2] : 0.0, n);
    return 0;
}
