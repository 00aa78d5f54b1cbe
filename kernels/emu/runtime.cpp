// The emulated device's runtime: fibers and their scheduler (see runtime.h), launch
// checks, and guarded device memory.
//
// Device memory is host memory: every segment is its own mapping whose end touches an
// inaccessible guard page (and another guard page precedes it), fresh segments are
// filled with 0xFF bytes, and a fault inside a kernel is caught (SIGSEGV/SIGBUS) and
// reported as an out-of-bounds access naming the allocation, the kernel, the block and
// the thread, instead of being silently read.
#include "runtime.h"
#include "fiber.h"

#include <map>
#include <mutex>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace kiln_emu {

ThreadState *g_thread;
uint3 g_block_idx;
dim3 g_block_dim;
dim3 g_grid_dim;

namespace {

const size_t kStackBytes = 256 << 10;
const uint32_t kMaxDynamicShared = 48 << 10; // without an opt-in attribute, as on the GPU
const size_t kMaxStaticShared = 48 << 10;    // a kernel's static limit on the GPU
const unsigned char kPoison = 0xff;          // NaN for floats, -1 for integers

size_t page_size() {
    static size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }

// ---- Guarded memory.

struct Mapping {
    char *base;   // start of the mapping (a guard page)
    size_t len;   // whole mapping, guards included
    size_t bytes; // usable bytes, ending right before the trailing guard page
};

// `bytes` usable bytes ending exactly at a guard page (so aligned only as far as
// `bytes` is a multiple of a power of two, up to the page size).
bool map_guarded(size_t bytes, Mapping &m, char *&ptr) {
    size_t body = round_up(bytes, page_size());
    m.len = body + 2 * page_size();
    void *base = mmap(nullptr, m.len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                      -1, 0);
    if (base == MAP_FAILED) return false;
    m.base = (char *)base;
    if (mprotect(m.base + page_size(), body, PROT_READ | PROT_WRITE) != 0) {
        munmap(base, m.len);
        return false;
    }
    ptr = m.base + page_size() + body - bytes;
    m.bytes = bytes;
    return true;
}

std::mutex g_memory_mutex;
std::map<uintptr_t, Mapping> g_segments; // by usable start address

// The block's dynamic shared memory: [start, end), and the guard page after it.
uintptr_t g_shared_start, g_shared_end;

// What `addr` is, relative to the device memory around it.
std::string describe_address(uintptr_t addr) {
    std::lock_guard<std::mutex> lock(g_memory_mutex);
    char buf[256];
    if (addr >= g_shared_end && addr < g_shared_end + page_size() && g_shared_end) {
        snprintf(buf, sizeof buf, "%zu bytes past the end of the block's %zu-byte dynamic "
                 "shared memory", (size_t)(addr - g_shared_end),
                 (size_t)(g_shared_end - g_shared_start));
        return buf;
    }
    auto next = g_segments.upper_bound(addr);
    if (next != g_segments.begin()) {
        auto seg = std::prev(next);
        uintptr_t start = seg->first, end = start + seg->second.bytes;
        if (addr >= end && addr < (uintptr_t)seg->second.base + seg->second.len) {
            snprintf(buf, sizeof buf,
                     "%zu bytes past the end of the %zu-byte device allocation at 0x%zx",
                     (size_t)(addr - end), seg->second.bytes, (size_t)start);
            return buf;
        }
    }
    if (next != g_segments.end() && addr >= (uintptr_t)next->second.base) {
        snprintf(buf, sizeof buf, "%zu bytes before the %zu-byte device allocation at 0x%zx",
                 (size_t)(next->first - addr), next->second.bytes, (size_t)next->first);
        return buf;
    }
    return "not in any live device allocation (a freed, host or wild address)";
}

// ---- Fibers and the scheduler.

enum class Wait { Runnable, Block, Warp, Done };

struct Fiber {
    ThreadState state;
    Context ctx;
    Wait wait;
    unsigned int mask;   // of the warp barrier it waits at
    const void *publish; // all-gather: this lane's data, or null for a plain barrier
    void *gather;        // all-gather: where every lane's data goes
    int bytes;
};

typedef void (*Entry)(void *const *args);

// The launch in progress. Static, so its state is well defined after a fault's
// siglongjmp back into `kiln_emu_launch`.
struct Launch {
    Entry entry;
    void *const *args;
    const char *name;
    std::vector<Fiber> fibers;
    std::vector<char *> stacks;
    Context scheduler;
    Fiber *current;
    char *dynamic_shared;
    uint32_t dynamic_bytes;
    // Static shared memory: the slot of each KILN_SHARED declaration met in this launch
    // (keyed by the declaration's `static` key), packed from `static_shared`.
    char *static_shared;
    size_t static_used;
    std::vector<std::pair<const void *, size_t>> static_slots;
    std::string error;
} g_launch;

std::mutex g_launch_mutex;

// What a faulting address inside a kernel is.
std::string describe_fault(uintptr_t addr) {
    for (char *stack : g_launch.stacks)
        if (addr < (uintptr_t)stack && addr >= (uintptr_t)stack - page_size())
            return "in a fiber's stack guard page: the kernel's locals overflow the "
                   "emulator's 256 KiB stack per thread";
    return describe_address(addr);
}

std::string where() {
    char buf[160];
    snprintf(buf, sizeof buf, "block (%u, %u, %u), thread (%u, %u, %u)", g_block_idx.x,
             g_block_idx.y, g_block_idx.z, g_thread ? g_thread->idx.x : 0,
             g_thread ? g_thread->idx.y : 0, g_thread ? g_thread->idx.z : 0);
    return buf;
}

void fiber_main() {
    g_launch.entry(g_launch.args);
    g_launch.current->wait = Wait::Done;
    context_switch(g_launch.current->ctx, g_launch.scheduler);
}

bool ensure_stacks(size_t n) {
    while (g_launch.stacks.size() < n) {
        Mapping m;
        char *ptr;
        if (!map_guarded(kStackBytes, m, ptr)) return false;
        // The stack grows down into the leading guard page.
        g_launch.stacks.push_back(m.base + page_size());
    }
    return true;
}

void start_block(unsigned int threads) {
    memset(g_launch.static_shared, kPoison, g_launch.static_used);
    if (g_launch.dynamic_bytes) memset(g_launch.dynamic_shared, kPoison, g_launch.dynamic_bytes);
    for (unsigned int t = 0; t < threads; ++t) {
        Fiber &f = g_launch.fibers[t];
        f.state.idx.x = t % g_block_dim.x;
        f.state.idx.y = t / g_block_dim.x % g_block_dim.y;
        f.state.idx.z = t / (g_block_dim.x * g_block_dim.y);
        f.state.lane = t % 32;
        f.state.warp = t / 32;
        f.wait = Wait::Runnable;
        context_start(f.ctx, g_launch.stacks[t], kStackBytes, fiber_main);
    }
}

// Releases every warp barrier whose mask has fully arrived; false with `error` set
// when a lane of a waiting mask has exited.
bool release_warps(unsigned int threads, bool &released) {
    for (unsigned int t = 0; t < threads; ++t) {
        Fiber &f = g_launch.fibers[t];
        if (f.wait != Wait::Warp) continue;
        unsigned int base = t - t % 32;
        unsigned int present = threads - base >= 32 ? 0xffffffffu : (1u << (threads - base)) - 1;
        unsigned int group = f.mask & present;
        bool complete = true;
        for (unsigned int l = 0; l < 32; ++l) {
            if (!((group >> l) & 1u)) continue;
            Fiber &o = g_launch.fibers[base + l];
            if (o.wait == Wait::Done) {
                g_thread = &f.state;
                g_launch.error = "lane " + std::to_string(l) +
                                 " exited before a warp-synchronous call (__syncwarp, "
                                 "__shfl_*_sync, votes, wmma) whose mask includes it, at " +
                                 where();
                return false;
            }
            if (o.wait != Wait::Warp || o.mask != f.mask) complete = false;
        }
        if (!complete) continue;
        // Stage every published part once, then hand each gathering lane the whole set.
        unsigned char staged[32 * kMaxExchange];
        int bytes = f.publish ? f.bytes : 0;
        for (unsigned int l = 0; l < 32; ++l) {
            if (!((group >> l) & 1u)) continue;
            Fiber &o = g_launch.fibers[base + l];
            if ((o.publish != nullptr) != (bytes > 0) || (o.publish && o.bytes != bytes)) {
                g_thread = &o.state;
                g_launch.error = "lanes of one warp meet at different warp-synchronous calls, at " +
                                 where();
                return false;
            }
            if (bytes) memcpy(staged + l * bytes, o.publish, bytes);
        }
        for (unsigned int l = 0; l < 32; ++l) {
            if (!((group >> l) & 1u)) continue;
            Fiber &o = g_launch.fibers[base + l];
            if (bytes) memcpy(o.gather, staged, 32 * (size_t)bytes);
            o.wait = Wait::Runnable;
        }
        released = true;
    }
    return true;
}

// Runs one block to completion; false with `error` set when it fails. Between two
// barriers the threads run one after another, in index order or in reverse order
// (alternating between neighbouring blocks, and between launches): a thread that
// reads shared memory another thread writes without a barrier between them then sees
// the slot unwritten in one of the two orders, whichever thread comes first.
bool run_block(unsigned int threads, bool reverse) {
    start_block(threads);
    for (;;) {
        bool alive = false;
        for (unsigned int i = 0; i < threads; ++i) {
            unsigned int t = reverse ? threads - 1 - i : i;
            Fiber &f = g_launch.fibers[t];
            if (f.wait != Wait::Runnable) continue;
            g_launch.current = &f;
            g_thread = &f.state;
            context_switch(g_launch.scheduler, f.ctx);
            if (!g_launch.error.empty()) return false;
        }
        unsigned int at_block = 0, done = 0;
        for (unsigned int t = 0; t < threads; ++t) {
            at_block += g_launch.fibers[t].wait == Wait::Block;
            done += g_launch.fibers[t].wait == Wait::Done;
            alive |= g_launch.fibers[t].wait != Wait::Done;
        }
        if (!alive) return true;
        bool released = false;
        if (!release_warps(threads, released)) return false;
        if (released) continue;
        if (at_block + done == threads) {
            if (done) {
                g_launch.error = "__syncthreads() reached by " + std::to_string(at_block) +
                                 " threads of the block while " + std::to_string(done) +
                                 " had exited (a barrier in divergent code)";
                return false;
            }
            for (unsigned int t = 0; t < threads; ++t) g_launch.fibers[t].wait = Wait::Runnable;
            continue;
        }
        g_launch.error = "deadlock: " + std::to_string(at_block) +
                         " threads wait in __syncthreads() while others wait in a warp-"
                         "synchronous call whose lanes never all arrive";
        return false;
    }
}

void suspend(Wait wait) {
    Fiber *f = g_launch.current;
    f->wait = wait;
    context_switch(f->ctx, g_launch.scheduler);
}

// ---- Faults inside kernels.

struct sigaction g_previous_segv, g_previous_bus;
__thread sigjmp_buf *t_fault_jump;
__thread uintptr_t t_fault_address;

void on_fault(int sig, siginfo_t *info, void *) {
    if (t_fault_jump) {
        sigjmp_buf *jump = t_fault_jump;
        t_fault_jump = nullptr;
        t_fault_address = (uintptr_t)info->si_addr;
        siglongjmp(*jump, sig);
    }
    // Not an emulated kernel: give the fault back to whoever handled it before (Rust's
    // stack-overflow reporter, or the default action) by retrying the access.
    sigaction(sig, sig == SIGSEGV ? &g_previous_segv : &g_previous_bus, nullptr);
}

void install_fault_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &g_previous_segv);
        sigaction(SIGBUS, &sa, &g_previous_bus);
    });
}

std::string check_config(const uint32_t grid[3], const uint32_t block[3], uint32_t shared) {
    uint64_t threads = (uint64_t)block[0] * block[1] * block[2];
    if (!grid[0] || !grid[1] || !grid[2] || grid[0] > 0x7fffffffu || grid[1] > 65535 ||
        grid[2] > 65535)
        return "invalid grid (x in 1..2^31-1, y and z in 1..65535)";
    if (!threads || threads > 1024 || block[0] > 1024 || block[1] > 1024 || block[2] > 64)
        return "invalid block (at most 1024 threads; x, y <= 1024, z <= 64)";
    if (shared > kMaxDynamicShared)
        return "dynamic shared memory above 48 KiB needs an opt-in the backend does not make";
    return "";
}

bool prepare_dynamic_shared(uint32_t bytes) {
    static char *buffer;
    static size_t capacity;
    if (!buffer) {
        Mapping m;
        if (!map_guarded(kMaxDynamicShared, m, buffer)) return false;
        capacity = kMaxDynamicShared;
    }
    // Ends at the guard page, so reading past `bytes` (rounded to 16) faults.
    size_t used = round_up(bytes, 16);
    g_launch.dynamic_shared = buffer + capacity - used;
    g_launch.dynamic_bytes = bytes;
    std::lock_guard<std::mutex> lock(g_memory_mutex);
    g_shared_start = (uintptr_t)g_launch.dynamic_shared;
    g_shared_end = (uintptr_t)(buffer + capacity);
    return true;
}

// The static shared memory of a launch: mapped once (ending at a guard page), its
// slots assigned anew as the launch's declarations are met.
bool prepare_static_shared() {
    if (!g_launch.static_shared) {
        Mapping m;
        if (!map_guarded(kMaxStaticShared, m, g_launch.static_shared)) return false;
    }
    g_launch.static_used = 0;
    g_launch.static_slots.clear();
    return true;
}

void copy_error(const std::string &msg, char *err, size_t err_len) {
    snprintf(err, err_len, "%s", msg.c_str());
}

} // namespace

void sync_block() { suspend(Wait::Block); }

void sync_warp(unsigned int mask) {
    if (!((mask >> g_thread->lane) & 1u)) fail("a warp-synchronous call whose mask leaves out the calling lane");
    g_launch.current->publish = nullptr;
    g_launch.current->gather = nullptr;
    g_launch.current->mask = mask;
    suspend(Wait::Warp);
}

unsigned int warp_all_gather(unsigned int mask, const void *mine, int bytes, void *all) {
    if (!((mask >> g_thread->lane) & 1u)) fail("a warp-synchronous call whose mask leaves out the calling lane");
    Fiber *f = g_launch.current;
    f->publish = mine;
    f->gather = all;
    f->bytes = bytes;
    f->mask = mask;
    suspend(Wait::Warp);
    f->publish = nullptr;
    f->gather = nullptr;
    unsigned int threads = (unsigned int)g_launch.fibers.size();
    unsigned int base = g_thread->warp * 32;
    unsigned int present = threads - base >= 32 ? 0xffffffffu : (1u << (threads - base)) - 1;
    return mask & present;
}

void fail(const char *what) {
    g_launch.error = std::string(what) + ", at " + where();
    context_switch(g_launch.current->ctx, g_launch.scheduler);
    abort(); // never resumed
}

void *dynamic_shared() { return g_launch.dynamic_shared; }

void *static_shared(const void *key, size_t bytes) {
    for (const auto &slot : g_launch.static_slots)
        if (slot.first == key) return g_launch.static_shared + slot.second;
    // First met by the first block: a new slot, poisoned like the rest.
    size_t at = round_up(g_launch.static_used, 16);
    if (at + bytes > kMaxStaticShared) fail("static shared memory above 48 KiB");
    memset(g_launch.static_shared + at, kPoison, bytes);
    g_launch.static_slots.push_back({key, at});
    g_launch.static_used = at + bytes;
    return g_launch.static_shared + at;
}

bool is_shared(const void *p, size_t bytes) {
    uintptr_t a = (uintptr_t)p;
    bool in_static = a >= (uintptr_t)g_launch.static_shared &&
                     a + bytes <= (uintptr_t)g_launch.static_shared + g_launch.static_used;
    bool in_dynamic = a >= (uintptr_t)g_launch.dynamic_shared &&
                      a + bytes <= (uintptr_t)g_launch.dynamic_shared + g_launch.dynamic_bytes;
    return in_static || in_dynamic;
}

} // namespace kiln_emu

using namespace kiln_emu;

// Runs `entry(args)` for every thread of every block, blocks in order. Returns 0, or 1
// with a message in `err`. One launch at a time (the device's single stream).
extern "C" int kiln_emu_launch(Entry entry, void *const *args, const char *name,
                               const uint32_t grid[3], const uint32_t block[3],
                               uint32_t shared_bytes, char *err, size_t err_len) {
    std::lock_guard<std::mutex> lock(g_launch_mutex);
    std::string bad = check_config(grid, block, shared_bytes);
    if (!bad.empty()) {
        copy_error(bad, err, err_len);
        return 1;
    }
    unsigned int threads = block[0] * block[1] * block[2];
    if (!ensure_stacks(threads) || !prepare_dynamic_shared(shared_bytes) ||
        !prepare_static_shared()) {
        copy_error("cannot map fiber stacks or shared memory", err, err_len);
        return 1;
    }
    install_fault_handler();
    g_launch.entry = entry;
    g_launch.args = args;
    g_launch.name = name;
    g_launch.error.clear();
    g_launch.fibers.resize(threads);
    g_block_dim = {block[0], block[1], block[2]};
    g_grid_dim = {grid[0], grid[1], grid[2]};
    g_thread = nullptr;

    sigjmp_buf jump;
    if (sigsetjmp(jump, 1) != 0) {
        copy_error("invalid memory access: address 0x" +
                       [] {
                           char b[32];
                           snprintf(b, sizeof b, "%zx", (size_t)t_fault_address);
                           return std::string(b);
                       }() +
                       " is " + describe_fault(t_fault_address) + ", at " + where(),
                   err, err_len);
        g_thread = nullptr;
        return 1;
    }
    t_fault_jump = &jump;
    static uint64_t serial;
    uint64_t block_serial = ++serial;
    bool ok = true;
    for (uint32_t z = 0; ok && z < grid[2]; ++z)
        for (uint32_t y = 0; ok && y < grid[1]; ++y)
            for (uint32_t x = 0; ok && x < grid[0]; ++x) {
                g_block_idx = {x, y, z};
                ok = run_block(threads, (block_serial++ & 1) != 0);
            }
    t_fault_jump = nullptr;
    g_thread = nullptr;
    if (!ok) copy_error(g_launch.error, err, err_len);
    return ok ? 0 : 1;
}

// A device allocation of `bytes`, poisoned, ending at a guard page; 0 when out of memory.
extern "C" uint64_t kiln_emu_alloc(size_t bytes) {
    Mapping m;
    char *ptr;
    if (!map_guarded(bytes, m, ptr)) return 0;
    memset(ptr, kPoison, bytes);
    std::lock_guard<std::mutex> lock(g_memory_mutex);
    g_segments[(uintptr_t)ptr] = m;
    return (uint64_t)(uintptr_t)ptr;
}

// Frees an allocation; 1 when `ptr` is not one.
extern "C" int kiln_emu_free(uint64_t ptr) {
    std::lock_guard<std::mutex> lock(g_memory_mutex);
    auto seg = g_segments.find((uintptr_t)ptr);
    if (seg == g_segments.end()) return 1;
    munmap(seg->second.base, seg->second.len);
    g_segments.erase(seg);
    return 0;
}

// 1 when [ptr, ptr + bytes) lies inside one live allocation.
extern "C" int kiln_emu_contains(uint64_t ptr, size_t bytes) {
    std::lock_guard<std::mutex> lock(g_memory_mutex);
    auto next = g_segments.upper_bound((uintptr_t)ptr);
    if (next == g_segments.begin()) return 0;
    auto seg = std::prev(next);
    return ptr + bytes <= seg->first + seg->second.bytes;
}

// Writes a description of `ptr` (relative to the allocations around it) to `out`.
extern "C" void kiln_emu_describe(uint64_t ptr, char *out, size_t out_len) {
    snprintf(out, out_len, "%s", describe_address((uintptr_t)ptr).c_str());
}
