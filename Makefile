# Outpost build, test and benchmark entry points. Everything runs as root on
# a Debian machine with Go installed; `.ci/run` installs what is missing.

GO        ?= go
BIN       := bin
PKGS      := ./...
FUZZTIME  ?= 10s
BENCHTIME ?= 3x
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.buildVersion=$(VERSION)
export CGO_ENABLED := 0

.PHONY: all build test vet fmt-check generate generate-check unit fuzz bench run run-daemon image images clean FORCE

all: build

## build: the outpost binary for amd64 and arm64 (static, no cgo)
build:
	GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/outpost-linux-amd64 ./firmware/cmd/outpost
	GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/outpost-linux-arm64 ./firmware/cmd/outpost

## test: formatting, vet, the generated BPF code being current, unit and
## integration tests
test: fmt-check vet generate-check unit

fmt-check:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$bad" ]; then echo "not gofmt-formatted:"; echo "$$bad"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

## generate: regenerate the committed BPF objects and their Go bindings
## (ebpf/, bpf2go) with Debian's clang (apt-get install clang llvm libbpf-dev)
generate:
	$(GO) generate ./ebpf/...

# generate-check: regenerate each ebpf/ package's bpf2go output into a
# temporary directory and compare it with the committed files. Without
# clang it is skipped with a message, except under CI, where it must run.
BPF_TOOLS_MISSING = $(shell command -v clang >/dev/null && command -v llvm-strip >/dev/null && [ -e /usr/include/bpf/bpf_helpers.h ] || echo yes)
generate-check:
ifeq ($(BPF_TOOLS_MISSING),yes)
	@if [ "$$CI" = true ]; then echo "generate-check: clang, llvm-strip or libbpf-dev missing (.ci/run installs them)"; exit 1; fi
	@echo "generate-check: SKIPPED: clang, llvm and libbpf-dev are not installed, so the committed BPF objects in ebpf/ are not checked (apt-get install clang llvm libbpf-dev)"
else
	@set -e; stale=0; for gen in $$(find ebpf -name gen.go); do \
	  dir=$$(dirname $$gen); tmp=$$(mktemp -d); \
	  cmd=$$(sed -n 's|^//go:generate go tool bpf2go |$(GO) tool bpf2go -output-dir '"$$tmp"' |p' $$gen); \
	  (cd $$dir && GOPACKAGE=$$($(GO) list -f '{{.Name}}' .) eval "$$cmd") >/dev/null; \
	  for f in $$tmp/*; do \
	    if ! cmp -s $$f $$dir/$$(basename $$f); then echo "generate-check: $$dir/$$(basename $$f) is not what $$gen generates: run make generate"; stale=1; fi; \
	  done; rm -rf $$tmp; \
	done; exit $$stale
	@echo "generate-check: the committed BPF objects and bindings are current"
endif

unit:
	$(GO) test -count=1 -timeout 30m $(PKGS)

## fuzz: a short run of every fuzz target (FUZZTIME each)
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## bench: benchmarks, with each figure also given as a ratio to its baseline
## measured in the same run (machines here are noisy; ratios are what count)
bench:
	@mkdir -p $(BIN)
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -cpu 1,$$(nproc) ./peerdist/pccrc | tee $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench . $$($(GO) list ./peerdist/... | grep -v /pccrc$$) | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./cache/store | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench . -benchtime 20x ./firmware/origin | tee -a $(BIN)/bench.txt
	@command -v nginx >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx
	for round in 1 2 3; do $(GO) test -run '^$$' -bench 'ServeBlocks' -benchtime 30000x ./cache/hostedcache; done | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench 'FastPath' -benchtime 200000x ./ebpf/probexdp | tee -a $(BIN)/bench.txt
	@awk '$$1 ~ /^Benchmark/ { name = $$1; cpu = 1; if (match(name, /-[0-9]+$$/)) { cpu = substr(name, RSTART + 1); name = substr(name, 1, RSTART - 1) } \
	    sub(/#[0-9]+$$/, "", name); \
	    cpus[cpu] = 1; for (i = 2; i < NF; i++) { if ($$(i+1) == "MB/s" && $$i > rate[name, cpu]) rate[name, cpu] = $$i; \
	      if ($$(i+1) == "peak-anon-MiB" && $$i > rss[name, cpu]) rss[name, cpu] = $$i; \
	      if ($$(i+1) == "req/s" && $$i > reqs[name, cpu]) reqs[name, cpu] = $$i; \
	      if ($$(i+1) == "p99-ms" && $$i > p99[name, cpu]) p99[name, cpu] = $$i; \
	      if ($$(i+1) == "server-µs/req" && (!((name, cpu) in scpu) || $$i < scpu[name, cpu])) scpu[name, cpu] = $$i } } \
	  function ratio(a, b, goal,   c) { for (c in cpus) if (((a, c) in rate) && ((b, c) in rate)) \
	    printf "%-40s %5.2fx  (%d core(s): %.0f vs %.0f MB/s; goal %s)\n", \
	      substr(a, 10) " / " substr(b, 10), rate[a, c] / rate[b, c], c, rate[a, c], rate[b, c], goal } \
	  END { print ""; print "Ratios against baselines measured in the same run (the baselines use one core):"; \
	    ratio("BenchmarkContentInfoV1", "BenchmarkRawSHA256", ">= 0.9x"); \
	    ratio("BenchmarkContentInfoV2", "BenchmarkRawSHA512", "none; chunking costs extra"); \
	    ratio("BenchmarkContentInfoV2", "BenchmarkRawSHA512PlusChunking", ">= 0.9x"); \
	    ratio("BenchmarkHashFileV1", "BenchmarkRawSHA256File", "none; outpost origin hashing a 64 MiB file"); \
	    ratio("BenchmarkHashFileV2", "BenchmarkRawSHA256File", "none; V2 hashes with SHA-512 and chunks"); \
	    for (k in rate) { split(k, parts, SUBSEP); if (parts[1] == "BenchmarkBlockEncrypt") \
	      printf "%-40s %5.0f MB/s (%d core(s))\n", "BlockEncrypt (AES-CBC, 64 KiB)", rate[k], parts[2] } \
	    print "(store: best of 3 rounds, 2 GiB of 64 KiB blocks, fsync batching as the store group commits)"; \
	    ratio("BenchmarkStore/Store/Ingest", "BenchmarkStore/PlainFiles/Ingest", ">= 0.8x"); \
	    ratio("BenchmarkStore/Store/Read", "BenchmarkStore/PlainFiles/Read", "none; reads check a CRC32C"); \
	    for (k in rss) { split(k, parts, SUBSEP); if (parts[1] ~ /^BenchmarkStore\/Store\//) \
	      printf "%-40s %5.1f MiB peak anonymous RSS (%d core(s); goal < 150 MiB)\n", substr(parts[1], 10), rss[k], parts[2] } \
	    print "(serving: best of 3 interleaved rounds for req/s and CPU, worst for p99)"; \
	    for (c in cpus) { o = "BenchmarkServeBlocks/outpost"; n = "BenchmarkServeBlocks/nginx"; if (((o, c) in reqs) && ((n, c) in reqs)) \
	      printf "%-40s %5.2fx  (%.0f vs %.0f req/s of 64 KiB blocks, 32 clients; p99 %.1f vs %.1f ms; goal >= 1.0x)\n", \
	        "ServeBlocks outpost / nginx", reqs[o, c] / reqs[n, c], reqs[o, c], reqs[n, c], p99[o, c], p99[n, c]; \
	      if (((o, c) in scpu) && ((n, c) in scpu) && scpu[o, c] > 0) \
	      printf "%-40s %5.2fx  (server CPU per request: %.0f vs %.0f µs; the box'"'"'s ceiling when it serves alone)\n", \
	        "ServeBlocks CPU efficiency outpost/nginx", scpu[n, c] / scpu[o, c], scpu[o, c], scpu[n, c]; \
	      g = "BenchmarkServeBlocks/gohttp-static"; if (((g, c) in scpu) && ((n, c) in scpu) && scpu[g, c] > 0) \
	      printf "%-40s %5.2fx  (%.0f req/s, %.0f µs server CPU per request: Go'"'"'s net/http writing a fixed 64 KiB reply from memory)\n", \
	        "ServeBlocks gohttp-static / nginx", reqs[g, c] / reqs[n, c], reqs[g, c], scpu[g, c]; \
	      h = "BenchmarkServeBlocks/outpost-nethttp"; if (((h, c) in scpu) && ((n, c) in reqs) && scpu[h, c] > 0) \
	      printf "%-40s %5.2fx  (%.0f req/s, %.0f µs server CPU per request: the same store behind net/http alone, without the retrieval loop)\n", \
	        "ServeBlocks outpost-nethttp / nginx", reqs[h, c] / reqs[n, c], reqs[h, c], scpu[h, c] } }' $(BIN)/bench.txt
	@awk '$$1 ~ /^BenchmarkFastPath\// { name = $$1; sub(/-[0-9]+$$/, "", name); sub(/^BenchmarkFastPath\//, "", name); \
	    for (i = 2; i < NF; i++) { if ($$(i+1) == "ns/packet") ns[name] = $$i; if ($$(i+1) == "packets/s") pps[name] = $$i } } \
	  function ratio(what, a, goal) { if ((a in ns) && ns[a] > 0) printf "%-40s %5.0fx  (%.0f vs %.0f ns/packet%s)\n", what, ns["socket-path"] / ns[a], ns["socket-path"], ns[a], goal } \
	  END { if (!("socket-path" in ns)) exit; print ""; print "XDP fast path (BPF_PROG_RUN) against the socket path (receive + pccrd decode + lookup), same run:"; \
	    ratio("socket path / XDP drop, unheld probe", "xdp-drop-unheld", "; goal >= 20x"); \
	    ratio("socket path / XDP capture, held probe", "xdp-capture-held", ""); \
	    printf "%-40s %5.0f ns/packet (goal < 50 ns)\n", "XDP pass of non-3702 traffic", ns["xdp-pass-non3702"]; \
	    for (n in pps) printf "%-40s %13.0f packets/s on one core\n", n, pps[n] }' $(BIN)/bench.txt

## image: build the image of one board (BOARD=qemu-amd64, qemu-arm64,
## pc-amd64 or rpi) into build/$(BOARD)/: vmlinuz, initramfs.cpio.gz and
## disk.img (sdcard.img for rpi); kernels are fetched and cached in build/cache/
BOARD ?= qemu-amd64
image:
	$(GO) run ./image/cmd/mkimage -board $(BOARD) -version $(VERSION)

## images: every board under board/
images:
	$(GO) run ./image/cmd/mkimage -all -version $(VERSION)

## run: build the qemu-amd64 image if needed and boot it in QEMU on this
## terminal, hosted-cache, peer and API ports forwarded to localhost
## (installs QEMU when missing; Ctrl-A X quits)
run:
	$(GO) run ./image/cmd/runvm -version $(VERSION)

## run-daemon: build outpost and run the appliance's services natively as a
## daemon (outpost run) with the example configuration; state goes to
## bin/run/ and ports below 1024 are moved up, so it runs as a normal user
run-daemon: $(BIN)/outpost
	@set -e; data=$(BIN)/run; mkdir -p $$data; \
	echo "$$($(BIN)/outpost version): outpost run --config firmware/outpost.example.toml"; \
	echo "  data directory (store, log ring): $$data/"; \
	echo "  status API: http://localhost:9000/api/v1/status  (or: $(BIN)/outpost status)"; \
	echo "  stop: Ctrl-C"; echo; \
	exec $(BIN)/outpost run --config firmware/outpost.example.toml --data-dir $$data \
	  --set hosted_cache.https_listen=:8443 --set leader.relay_listen=:8081

$(BIN)/outpost: FORCE
	$(GO) build -ldflags '$(LDFLAGS)' -o $@ ./firmware/cmd/outpost

FORCE:

clean:
	rm -rf $(BIN) build
