/* The harness: runs the model on the images in the file images.u8 (raw uint8 pixels,
 * INPUT_SIZE bytes each, read through semihosting from QEMU's working directory: the images
 * are not built into the program, so any number of them runs on the same build and none of
 * them counts as flash) and prints one line per image, all numbers in hex:
 *
 *     <image index> <predicted class> <CLASSES logits, the bytes of each> <SysTick ticks>
 *
 * The ticks are those of the predict call alone. Before the first image the unused stack is
 * painted with a pattern; after it, "stack <bytes>" says how deep predict wrote. The model
 * comes in by macros: PREDICT (its function), LOGIT_T (float or int8_t), INPUT_SIZE, CLASSES.
 * No libc: printing is by hand, in hex, to need no division (the Cortex-M0+ has none). */
#include <stdint.h>

#include "semihost.h"

#if !defined(PREDICT) || !defined(LOGIT_T) || !defined(INPUT_SIZE) || !defined(CLASSES)
#error "build with -DPREDICT=... -DLOGIT_T=... -DINPUT_SIZE=... -DCLASSES=..."
#endif

int PREDICT(const unsigned char *pixels, LOGIT_T *logits);

#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
#define PAINT 0xDEADBEEFu

extern uint32_t __stack_limit[];

static unsigned char pixels[INPUT_SIZE];
static LOGIT_T logits[CLASSES];
static char line[16 + 9 * (CLASSES + 3)];

static char *put_hex(char *p, uint32_t v)
{
    int shift = 28;
    while (shift > 0 && (v >> shift) == 0)
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        *p++ = "0123456789abcdef"[(v >> shift) & 0xF];
    *p++ = ' ';
    return p;
}

/* A logit's bytes (float, int32_t or int8_t), zero-extended to 32 bits, little-endian */
static uint32_t logit_bits(const LOGIT_T *logit)
{
    const unsigned char *b = (const unsigned char *)logit;
    uint32_t bits = 0;
    for (unsigned i = 0; i < sizeof *logit; i++)
        bits |= (uint32_t)b[i] << (8 * i);
    return bits;
}

static void say(int console, const char *text)
{
    int len = 0;
    while (text[len])
        len++;
    semihost_write(console, text, len);
}

static uint32_t *stack_pointer(void)
{
    uint32_t *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

int main(void)
{
    int console = semihost_open(":tt", 4);
    int images = semihost_open("images.u8", 1);
    if (images < 0) {
        say(console, "error: cannot open images.u8 in QEMU's working directory\n");
        return 2;
    }
    uint32_t count = (uint32_t)semihost_flen(images) / INPUT_SIZE;
    SYST_RVR = 0xFFFFFF;          /* count down from 2^24 - 1 at the processor clock */
    SYST_CVR = 0;
    SYST_CSR = 5;                 /* enable, processor clock, no interrupt */
    for (uint32_t i = 0; i < count; i++) {
        if (semihost_read(images, pixels, INPUT_SIZE) != 0) {
            say(console, "error: short read from images.u8\n");
            return 3;
        }
        uint32_t *sp = stack_pointer();
        if (i == 0)   /* below main's frame nothing is in use: no interrupts run */
            for (volatile uint32_t *p = __stack_limit; p < sp; p++)
                *p = PAINT;
        uint32_t start = SYST_CVR;
        int k = PREDICT(pixels, logits);
        uint32_t ticks = (start - SYST_CVR) & 0xFFFFFF;
        if (i == 0) {
            volatile uint32_t *p = __stack_limit;
            while (p < sp && *p == PAINT)
                p++;
            char *end = put_hex(line, (uint32_t)((char *)sp - (char *)p));
            end[-1] = '\n';
            *end = 0;
            say(console, "stack ");
            say(console, line);
        }
        char *p = put_hex(line, i);
        p = put_hex(p, (uint32_t)k);
        for (int c = 0; c < CLASSES; c++)
            p = put_hex(p, logit_bits(&logits[c]));
        p = put_hex(p, ticks);
        p[-1] = '\n';
        semihost_write(console, line, (int)(p - line));
    }
    say(console, "done\n");
    return 0;
}
