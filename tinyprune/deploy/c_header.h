${about}
 *
 * The API of ${prefix}.c, for firmware: add both files to the build (C99; they include only
 * <stdint.h>, allocate nothing and write no global; the compiler may call memset and memcpy,
 * and soft-float routines on a core without an FPU) and include this header. To classify an
 * image, call ${predict}, as ${prefix}_main.c (written beside them) does.
 *
 * Input:  one 28 x 28 grayscale image, row by row (pixel (r, c) at r * 28 + c):
 *         ${input}
 * Output: ${output}
 *         The return value is the class: the index of the largest logit (the first, on a tie).
 * Flash:  the weight arrays (${weight_bytes} bytes) and all other tables are static const,
 *         in .rodata, which a Cortex-M linker script puts in flash with the code.
 * RAM:    nothing static (no .data, no .bss). A call keeps its buffers on the stack,
 *         ${MACRO}_SCRATCH_BYTES, and its kernels' frames take a few hundred bytes more:
 *         give the calling thread ${MACRO}_STACK_BYTES of stack (with gcc -Os or -O2;
 *         tests/test_mcu.py measures the stack on a Cortex-M3, M4, M33 and M55). Re-entrant:
 *         threads may call it at once, each on its own stack.
 */
#ifndef ${MACRO}_H
#define ${MACRO}_H

#include <stdint.h>

#define ${MACRO}_INPUT_SIZE (1 * 28 * 28)  /* pixels of one image, row by row */
#define ${MACRO}_CLASSES ${classes}  /* logits written, one per class */
#define ${MACRO}_SCRATCH_BYTES ${scratch}  /* the stack a call's buffers take */
#define ${MACRO}_STACK_BYTES (${MACRO}_SCRATCH_BYTES + 512)  /* with its kernels' frames */

${declarations}
#endif
