"""Exported models built for Cortex-M microcontrollers and run on QEMU's Arm MPS2 boards.

The C here is our own bare-metal harness (no vendor SDK): startup.c (vector table, reset,
fault handlers, semihosting calls), mps2.ld (the boards' memory map), main.c (reads test
images through semihosting, runs the model, prints its answers and how long and how deep it
went) and stub.c (an empty model, to measure the harness alone). build.py compiles and sizes
programs with arm-none-eabi-gcc; qemu.py runs them.
"""
