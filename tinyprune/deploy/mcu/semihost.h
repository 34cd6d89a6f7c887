/* Arm semihosting: the program asks the debugger (here QEMU, run with
 * -semihosting-config enable=on,target=native) to do I/O for it, by a BKPT 0xAB with the
 * operation in r0 and a pointer to its arguments in r1 (Arm's "Semihosting for AArch32 and
 * AArch64", v2). Only the few operations the harness needs. */
#ifndef SEMIHOST_H
#define SEMIHOST_H

#include <stdint.h>

enum {
    SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_WRITE = 0x05, SYS_READ = 0x06,
    SYS_FLEN = 0x0C, SYS_EXIT_EXTENDED = 0x20
};

int semihost_call(int op, void *args);
int semihost_open(const char *name, int mode);      /* mode 1 = "rb", 4 = "w"; -1 on error */
int semihost_read(int handle, void *buf, int len);  /* -> bytes NOT read (0: all of them) */
void semihost_write(int handle, const char *buf, int len);
int semihost_flen(int handle);
void semihost_exit(int status) __attribute__((noreturn));

#endif
