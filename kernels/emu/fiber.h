// Fiber contexts for the emulator's scheduler: start a function on a stack of its own,
// switch between contexts. On x86-64 a switch saves and restores the callee-saved
// registers and the floating-point control words in a few instructions; elsewhere it
// falls back to ucontext, whose swapcontext also makes a signal-mask system call per
// switch (several times slower; the emulator switches at every barrier).
#pragma once

#include <stddef.h>

#if defined(__x86_64__)

extern "C" void kiln_emu_switch(void **save_sp, void *load_sp);

// Saves the current context's stack pointer in *save_sp (after pushing rbp, rbx,
// r12-r15, MXCSR and the x87 control word) and resumes the one saved at load_sp.
asm(R"(
    .text
    .globl kiln_emu_switch
    .type kiln_emu_switch, @function
kiln_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size kiln_emu_switch, .-kiln_emu_switch
    .section .note.GNU-stack,"",@progbits
    .text
)");

struct Context {
    void *sp;
};

// Prepares `c` to run `entry` (which must never return) on [stack, stack + size).
inline void context_start(Context &c, char *stack, size_t size, void (*entry)()) {
    // The frame kiln_emu_switch pops, from the top: a fake return address (so `entry`
    // starts with the stack aligned as after a call), `entry` for its `ret`, six
    // callee-saved registers, and the control words (copied from this thread).
    unsigned long *top = (unsigned long *)(((size_t)(stack + size)) & ~(size_t)15);
    unsigned long *sp = top - 9;
    unsigned int mxcsr;
    unsigned short fpcw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpcw));
    sp[0] = (unsigned long)mxcsr | ((unsigned long)fpcw << 32);
    for (int i = 1; i <= 6; ++i) sp[i] = 0;
    sp[7] = (unsigned long)entry;
    sp[8] = 0;
    c.sp = sp;
}

inline void context_switch(Context &from, Context &to) { kiln_emu_switch(&from.sp, to.sp); }

#else

#include <ucontext.h>

struct Context {
    ucontext_t uc;
};

inline void context_start(Context &c, char *stack, size_t size, void (*entry)()) {
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = size;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
}

inline void context_switch(Context &from, Context &to) { swapcontext(&from.uc, &to.uc); }

#endif
