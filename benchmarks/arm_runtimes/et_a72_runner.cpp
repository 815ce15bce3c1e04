// ExecuTorch (XNNPACK delegate) runner for the Cortex-A72 cost estimate; C++ twin of a72_driver.py.
//   et_a72_runner MODEL.pte INPUT.f32 RUNS [THREADS]
// Loads the program and method, copies the raw float32 input into input 0, runs once (XNNPACK packs
// weights at load/first run), marks 1, runs RUNS more, marks 2. A mark is a failing
// lseek(-1, MARK_TAG | n) that insn_classes.c sees. Prints the output's first values.
#include <executorch/extension/data_loader/file_data_loader.h>
#include <executorch/extension/memory_allocator/malloc_memory_allocator.h>
#include <executorch/runtime/executor/method.h>
#include <executorch/runtime/executor/program.h>
#include <executorch/runtime/platform/runtime.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace executorch { namespace extension { namespace threadpool {
class ThreadPool { public: bool _unsafe_reset_threadpool(unsigned int); };
ThreadPool* get_threadpool();
}}}

using namespace executorch::runtime;
using executorch::extension::FileDataLoader;
using executorch::extension::MallocMemoryAllocator;

static void mark(unsigned long n) { lseek(-1, (off_t)((0x5EED0000UL << 32) | n), SEEK_SET); }

int main(int argc, char** argv) {
  if (argc < 4) { fprintf(stderr, "usage: %s MODEL.pte INPUT.f32 RUNS [THREADS]\n", argv[0]); return 2; }
  int runs = atoi(argv[3]);
  unsigned threads = argc > 4 ? (unsigned)atoi(argv[4]) : 1;
  runtime_init();
  executorch::extension::threadpool::get_threadpool()->_unsafe_reset_threadpool(threads);
  auto loader = FileDataLoader::from(argv[1]);
  if (!loader.ok()) { fprintf(stderr, "error: cannot open %s\n", argv[1]); return 3; }
  auto program = Program::load(&loader.get());
  if (!program.ok()) { fprintf(stderr, "error: cannot load program (0x%x)\n", (int)program.error()); return 3; }
  auto meta = program->method_meta("forward");
  if (!meta.ok()) { fprintf(stderr, "error: no forward method\n"); return 3; }
  size_t nbuf = meta->num_memory_planned_buffers();
  Span<uint8_t>* spans = new Span<uint8_t>[nbuf];
  for (size_t i = 0; i < nbuf; ++i) {
    size_t size = (size_t)meta->memory_planned_buffer_size(i).get();
    spans[i] = Span<uint8_t>((uint8_t*)calloc(size ? size : 1, 1), size);
  }
  HierarchicalAllocator planned({spans, nbuf});
  MallocMemoryAllocator method_allocator, temp_allocator;
  MemoryManager memory(&method_allocator, &planned, &temp_allocator);
  auto method = program->load_method("forward", &memory);
  if (!method.ok()) { fprintf(stderr, "error: cannot load method (0x%x)\n", (int)method.error()); return 3; }
  // input 0 lives in planned memory: fill it from the file
  auto& in = method->mutable_input(0);
  if (!in.isTensor()) { fprintf(stderr, "error: input 0 is not a tensor\n"); return 3; }
  auto tensor = in.toTensor();
  FILE* f = fopen(argv[2], "rb");
  if (!f) { fprintf(stderr, "error: cannot open %s\n", argv[2]); return 3; }
  size_t want = tensor.nbytes(), got = fread(tensor.mutable_data_ptr(), 1, want, f);
  fclose(f);
  if (got != want) { fprintf(stderr, "error: input has %zu bytes, the model wants %zu\n", got, want); return 3; }
  Error e = method->execute();
  if (e != Error::Ok) { fprintf(stderr, "error: execute failed (0x%x)\n", (int)e); return 4; }
  mark(1);
  for (int i = 0; i < runs; ++i) method->execute();
  mark(2);
  auto out = method->get_output(0).toTensor();
  const float* o = out.const_data_ptr<float>();
  printf("out");
  for (ssize_t i = 0; i < out.numel() && i < 10; ++i) printf(" %.6g", o[i]);
  printf("\ndone %d\n", runs);
  return 0;
}
