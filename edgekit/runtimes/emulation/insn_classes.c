/*
 * edgekit's qemu TCG plugin: how many guest instructions of each kind a process executes.
 *
 * A "kind" is the mnemonic plus the shape of its first operand, e.g. "fmla.4s", "smlal2.8h",
 * "ldp.q", "ld1.2x16b", "add.x": edgekit.runtimes.emulation.a72_cost maps kinds to Cortex-A72
 * issue classes. Each translated block keeps its kinds; one atomic increment per executed block
 * (thread-safe under several vCPUs, and the same API from qemu 4.2 on).
 *
 * Snapshots: the guest calls lseek(-1, MARK_TAG | n, 0), which fails with EBADF and has no other
 * effect; the plugin then appends "mark n" and the running totals to its output file. The same
 * happens once at exit as "mark end". Usage:
 *     qemu-aarch64 -plugin insn_classes.so,out=/path/counts.txt guest-program ...
 * Built by edgekit (gcc -shared -fPIC) against the installed qemu's qemu-plugin.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_KINDS 8192
#define TABLE 16411
#define LSEEK_AARCH64 62
#define MARK_TAG 0x5EED0000ull /* upper 32 bits of the offset */

typedef struct Block { uint64_t runs; struct Block *next; uint32_t n; uint16_t kind[]; } Block;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *kinds[MAX_KINDS];
static unsigned n_kinds, slots[TABLE];  /* slots: kind index + 1, 0 = free */
static Block *blocks;
static FILE *out;

static uint16_t kind_of(const char *disas) {  /* "fmla v0.4s, v1.4s, v2.s[0]" -> "fmla.4s" */
    char key[64], mnemonic[24] = "", shape[24] = "";
    sscanf(disas, "%23s", mnemonic);
    const char *op = disas + strlen(mnemonic);
    while (*op == ' ') op++;
    if (*op == '{') {  /* register list: "{v0.16b, v1.16b}" -> "2x16b" */
        int regs = 1; const char *p = op, *dot = strchr(op, '.');
        for (; *p && *p != '}'; p++) regs += *p == ',';
        snprintf(shape, sizeof shape, "%dx%.5s", regs, dot && dot < p ? dot + 1 : "?");
        char *end = strpbrk(shape, "},"); if (end) *end = 0;
    } else if (op[0] == 'v' && strchr(op, '.') && strchr(op, '.') < op + 4) {
        sscanf(strchr(op, '.') + 1, "%5[0-9a-z]", shape);  /* arrangement: 4s, 16b, 8h, 2d ... */
    } else if (strchr("xwqdshb", op[0]) && op[1] >= '0' && op[1] <= '9') {
        shape[0] = op[0];  /* register file and width of a scalar operand */
    } else if (!strncmp(op, "sp", 2) || !strncmp(op, "wsp", 3) || !strncmp(op, "xzr", 3)) {
        shape[0] = op[0] == 'w' ? 'w' : 'x';
    }
    snprintf(key, sizeof key, shape[0] ? "%s.%s" : "%s", mnemonic, shape);
    unsigned h = 5381;
    for (const char *c = key; *c; c++) h = h * 33 + (unsigned char)*c;
    for (h %= TABLE; slots[h]; h = (h + 1) % TABLE)  /* open addressing; TABLE > 2 * MAX_KINDS */
        if (!strcmp(kinds[slots[h] - 1], key)) return slots[h] - 1;
    if (n_kinds == MAX_KINDS) return MAX_KINDS - 1;  /* never seen in practice; lumped together */
    kinds[n_kinds] = strdup(key);
    slots[h] = ++n_kinds;
    return n_kinds - 1;
}

static void block_ran(unsigned int vcpu, void *data) {
    __atomic_fetch_add(&((Block *)data)->runs, 1, __ATOMIC_RELAXED);
}

static void translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    size_t n = qemu_plugin_tb_n_insns(tb);
    Block *block = calloc(1, sizeof(Block) + n * sizeof(uint16_t));
    block->n = n;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++) {
        char *text = qemu_plugin_insn_disas(qemu_plugin_tb_get_insn(tb, i));
        block->kind[i] = kind_of(text ? text : "?");
        free(text);
    }
    block->next = blocks;
    blocks = block;
    pthread_mutex_unlock(&lock);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, block_ran, QEMU_PLUGIN_CB_NO_REGS, block);
}

static void snapshot(const char *mark) {
    static uint64_t totals[MAX_KINDS];
    pthread_mutex_lock(&lock);
    memset(totals, 0, sizeof totals);
    for (Block *b = blocks; b; b = b->next) {
        uint64_t runs = __atomic_load_n(&b->runs, __ATOMIC_RELAXED);
        for (uint32_t i = 0; runs && i < b->n; i++) totals[b->kind[i]] += runs;
    }
    fprintf(out, "mark %s\n", mark);
    for (unsigned i = 0; i < n_kinds; i++)
        if (totals[i]) fprintf(out, "%s %llu\n", kinds[i], (unsigned long long)totals[i]);
    fflush(out);
    pthread_mutex_unlock(&lock);
}

static void syscall_made(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                         uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8) {
    if (num == LSEEK_AARCH64 && (int32_t)a1 == -1 && (a2 >> 32) == MARK_TAG) {
        char mark[16];
        snprintf(mark, sizeof mark, "%u", (unsigned)(a2 & 0xffffffffu));
        snapshot(mark);
    }
}

static void exiting(qemu_plugin_id_t id, void *data) {
    snapshot("end");
    fclose(out);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    const char *path = NULL;
    for (int i = 0; i < argc; i++)
        if (!strncmp(argv[i], "out=", 4)) path = argv[i] + 4;
    out = path ? fopen(path, "w") : NULL;
    if (!out) {
        fprintf(stderr, "insn_classes: needs out=PATH, a file it can write\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, translated);
    qemu_plugin_register_vcpu_syscall_cb(id, syscall_made);
    qemu_plugin_register_atexit_cb(id, exiting, NULL);
    return 0;
}
