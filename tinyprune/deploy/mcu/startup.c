/* Start-up for the MPS2 boards: the vector table, the reset handler that sets up C (copies
 * .data, zeroes .bss, turns on the FPU when there is one) and calls main, fault handlers that
 * end the emulation with a message instead of hanging, and the semihosting calls. */
#include <stdint.h>

#include "semihost.h"

extern uint32_t __data_start[], __data_end[], __data_load[], __bss_start[], __bss_end[];
extern uint32_t __stack_top[];
int main(void);
/* newlib's semihosting stdio (--specs=rdimon.specs), when linked in: printf needs it set up */
extern void initialise_monitor_handles(void) __attribute__((weak));

__attribute__((noreturn)) void reset_handler(void)
{
#if defined(__ARM_FP)
    /* CPACR: full access to coprocessors 10 and 11 (the FPU), before any float instruction. */
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
    __asm volatile("dsb\n isb");
#endif
    for (uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;)
        *dst++ = *src++;
    for (uint32_t *dst = __bss_start; dst < __bss_end;)
        *dst++ = 0;
    if (initialise_monitor_handles)
        initialise_monitor_handles();
    semihost_exit(main());
}

__attribute__((noreturn)) static void fault_handler(void)
{
    static const char message[] = "fault: the program crashed (hard fault, bad memory access "
                                  "or undefined instruction)\n";
    semihost_write(semihost_open(":tt", 4), message, sizeof message - 1);
    semihost_exit(70);
}

/* Initial stack pointer, then handlers: reset, NMI, hard fault, memory management, bus fault,
 * usage fault. Interrupts are never enabled, so the table stops there. */
__attribute__((section(".vectors"), used))
static void (*const vectors[7])(void) = {
    (void (*)(void))__stack_top, reset_handler, fault_handler, fault_handler,
    fault_handler, fault_handler, fault_handler,
};

int semihost_call(int op, void *args)
{
    register int r0 __asm("r0") = op;
    register void *r1 __asm("r1") = args;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

int semihost_open(const char *name, int mode)
{
    int len = 0;
    while (name[len])
        len++;
    uint32_t args[3] = {(uint32_t)name, (uint32_t)mode, (uint32_t)len};
    return semihost_call(SYS_OPEN, args);
}

int semihost_read(int handle, void *buf, int len)
{
    uint32_t args[3] = {(uint32_t)handle, (uint32_t)buf, (uint32_t)len};
    return semihost_call(SYS_READ, args);
}

void semihost_write(int handle, const char *buf, int len)
{
    uint32_t args[3] = {(uint32_t)handle, (uint32_t)buf, (uint32_t)len};
    semihost_call(SYS_WRITE, args);
}

int semihost_flen(int handle)
{
    uint32_t args[1] = {(uint32_t)handle};
    return semihost_call(SYS_FLEN, args);
}

void semihost_exit(int status)
{
    /* ADP_Stopped_ApplicationExit with an exit status: QEMU exits with that status. */
    uint32_t args[2] = {0x20026, (uint32_t)status};
    for (;;)
        semihost_call(SYS_EXIT_EXTENDED, args);
}
