package probexdp

// The BPF object and its Go bindings are generated from probe.c and
// committed, so that building Outpost needs no clang. `make generate`
// regenerates them with Debian's clang; `make test` checks that the
// committed files are current. Both multiarch include directories are
// named so that either build host finds <asm/types.h>.
//
//go:generate go tool bpf2go -tags linux -target bpfel -type event -type counters -type config -go-package probexdp xdp probe.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu
