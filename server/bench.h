/* server/bench.h — `diffusiond bench …` subcommands (benchmarks run side by side
 * with their references in one process run). */
#ifndef DIFFUSIOND_SERVER_BENCH_H
#define DIFFUSIOND_SERVER_BENCH_H

/* `diffusiond bench ops [options]`: GFLOP/s of the SD1.5 U-Net's largest conv and
 * attention shapes and of an SGEMM beside the machine's measured FMA peak. Returns a
 * process exit code; argv[0] is "ops". */
int bench_ops_main(int argc, char **argv);

/* `diffusiond bench model --model PATH [options]`: one U-Net step (batch 2, the CFG
 * pair) and one VAE decode of a checkpoint on the CPU backend, each part in a forked
 * child: median seconds and peak RSS.  Returns a process exit code; argv[0] is
 * "model". */
int bench_model_main(int argc, char **argv);

/* `diffusiond bench load [--model PATH] [options]`: open-loop Poisson arrivals of a
 * mixed workload sent over HTTP to `diffusiond serve` children (one per batching mode
 * and rate; --in-process: the scheduler in this process), per batching mode: latency
 * percentiles, occupancy, goodput at the SLO and the ratios between modes.  Returns a
 * process exit code; argv[0] is "load". */
int bench_load_main(int argc, char **argv);

#endif
