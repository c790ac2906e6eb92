// Test-only: the few glibc symbols that glibc-built libstdc++, libgcc_s and libcrypto (Debian's) take from
// glibc and musl lacks, so that Bun's musl build (which needs libstdc++) and OpenSSL's libcrypto load under
// musl's loader in scripts/check-prebuild-musl.sh. Never part of the package: the addon itself needs none of
// these (it links against musl's libc only).
#define _GNU_SOURCE
#include <locale.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <syslog.h>
#include <time.h>

// libstdc++, libgcc_s
uint32_t arc4random(void) { uint32_t v; while (getrandom(&v, sizeof v, 0) != sizeof v) {} return v; }
size_t __strftime_l(char *s, size_t m, const char *f, const struct tm *t, locale_t l) { return strftime_l(s, m, f, t, l); }
char __libc_single_threaded = 0;
int _dl_find_object(void *pc, void *res) { (void)pc; (void)res; return -1; }
void __cpu_indicator_init(void) {}
struct { unsigned int v, t, s, f[1]; } __cpu_model;

// thread_local destructors (libstdc++'s __cxa_thread_atexit)
struct dtor { void (*f)(void *); void *o; struct dtor *next; };
static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static void run(void *p) { for (struct dtor *d = p, *n; d; d = n) { n = d->next; d->f(d->o); free(d); } }
static void mk(void) { pthread_key_create(&key, run); }
int __cxa_thread_atexit_impl(void (*f)(void *), void *o, void *dso) {
  (void)dso; pthread_once(&once, mk);
  struct dtor *d = malloc(sizeof *d); if (!d) return -1;
  d->f = f; d->o = o; d->next = pthread_getspecific(key); pthread_setspecific(key, d); return 0;
}
// _FORTIFY_SOURCE entry points and the rest (libcrypto, libstdc++ on arm64)
long __fdelt_chk(long d) { return d / (8 * sizeof(long)); }
int __vfprintf_chk(FILE *fp, int flag, const char *fmt, va_list ap) { (void)flag; return vfprintf(fp, fmt, ap); }
int __fprintf_chk(FILE *fp, int flag, const char *fmt, ...) { va_list ap; va_start(ap, fmt); int r = vfprintf(fp, fmt, ap); va_end(ap); (void)flag; return r; }
void __syslog_chk(int pri, int flag, const char *fmt, ...) { va_list ap; va_start(ap, fmt); vsyslog(pri, fmt, ap); va_end(ap); (void)flag; }
void *__memcpy_chk(void *d, const void *s, size_t n, size_t dl) { if (n > dl) abort(); return memcpy(d, s, n); }
void *__memset_chk(void *d, int c, size_t n, size_t dl) { if (n > dl) abort(); return memset(d, c, n); }
char *__strcat_chk(char *d, const char *s, size_t dl) { if (strlen(d) + strlen(s) + 1 > dl) abort(); return strcat(d, s); }
unsigned long __getauxval(unsigned long t) { return getauxval(t); }
_Noreturn void __longjmp_chk(jmp_buf env, int v) { longjmp(env, v); }
// OpenSSL's ASYNC jobs only, which nothing here uses
int getcontext(void *u) { (void)u; return -1; }
void makecontext(void *u, void (*f)(void), int argc, ...) { (void)u; (void)f; (void)argc; }
int setcontext(const void *u) { (void)u; return -1; }
