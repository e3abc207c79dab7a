package hostedcache

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// The serving benchmark: 32 concurrent keep-alive clients fetch random held
// 64 KiB blocks over loopback, from Outpost's retrieval server and from
// nginx serving the same MSG_BLK payloads as static files, with the same
// client in the same run. Each server runs in a process of its own, as it
// does on the box, so neither shares the client's Go scheduler. `make
// bench` installs nginx and prints the ratio; p99 latency is reported as a
// metric (iPXE gives up after 3 s to the first byte).
const (
	serveClients = 32
	serveBlocks  = 256
)

// heldBlocks makes stored 64 KiB blocks: 65 552 bytes of AES-CBC
// ciphertext each, and their segment IDs.
func heldBlocks(b *testing.B) (ids [][]byte, blocks [][]byte) {
	for range serveBlocks {
		id := make([]byte, 32)
		crand.Read(id)
		blk := make([]byte, 65552)
		crand.Read(blk)
		ids, blocks = append(ids, id), append(blocks, blk)
	}
	return ids, blocks
}

func BenchmarkServeBlocks(b *testing.B) {
	ids, blocks := heldBlocks(b)
	bodies := make([][]byte, len(ids))
	for i, id := range ids {
		bodies[i], _ = (&pccrr.GetBlks{Crypto: pccrr.CryptoAES128, SegmentID: id, Ranges: []pccrr.BlockRange{{Index: 0, Count: 1}}}).Marshal()
	}
	for _, mode := range []struct{ name, child string }{{"outpost", "store"}, {"outpost-nethttp", "nethttp"}, {"gohttp-static", "static"}} {
		b.Run(mode.name, func(b *testing.B) {
			addr, pid := startOutpost(b, ids, blocks, mode.child)
			runLoad(b, func(c *http.Client, i int) (*http.Response, error) {
				return c.Post("http://"+addr+pccrr.Path, "application/octet-stream", bytes.NewReader(bodies[i]))
			}, len(ids), 4+16+36+12+65552+8+16, pid)
		})
	}
	b.Run("nginx", func(b *testing.B) {
		addr, pid := startNginx(b, blocks)
		runLoad(b, func(c *http.Client, i int) (*http.Response, error) {
			return c.Get(fmt.Sprintf("http://%s/blk/%d", addr, i))
		}, len(ids), 65552, pid)
	})
}

// runLoad runs b.N requests from serveClients keep-alive clients and
// reports MB/s (via SetBytes), requests/s, p99 latency, and the CPU time
// the server's processes (server, and its children) spent per request:
// what bounds throughput on a box whose cores serve and nothing else.
func runLoad(b *testing.B, do func(*http.Client, int) (*http.Response, error), keys int, size int64, server int) {
	var mu sync.Mutex
	var latencies []time.Duration
	b.SetBytes(size)
	parallelism := (serveClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	b.SetParallelism(parallelism)
	// Warm up every client's connection and the server (its buffers, the
	// page cache, the heap) before the clock starts: a server that has
	// just started is not what a branch office meets.
	clients := make(chan *http.Client, parallelism*runtime.GOMAXPROCS(0))
	var warm sync.WaitGroup
	for n := range cap(clients) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
		defer client.CloseIdleConnections()
		clients <- client
		warm.Go(func() {
			for i := range 64 {
				if resp, err := do(client, (n*64+i)%keys); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	warm.Wait()
	b.ResetTimer()
	start, cpu0 := time.Now(), processTreeCPU(server)
	b.RunParallel(func(pb *testing.PB) {
		client := <-clients
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			resp, err := do(client, rng.IntN(keys))
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || n < 65552 {
				b.Errorf("HTTP %d, %d bytes", resp.StatusCode, n)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		latencies = append(latencies, mine...)
		mu.Unlock()
	})
	elapsed, cpu := time.Since(start), processTreeCPU(server)-cpu0
	if len(latencies) > 0 {
		slices.Sort(latencies)
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "req/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64(len(latencies)), "server-µs/req")
	}
}

// processTreeCPU is the user and system time of a process and its
// children (nginx's workers), from /proc (clock ticks of 10 ms).
func processTreeCPU(pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) start after ')'.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	var utime, stime int64
	if len(fields) > 12 {
		utime, _ = strconv.ParseInt(fields[11], 10, 64)
		stime, _ = strconv.ParseInt(fields[12], 10, 64)
	}
	total := time.Duration(utime+stime) * 10 * time.Millisecond
	children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, c := range strings.Fields(string(children)) {
		if child, err := strconv.Atoi(c); err == nil {
			total += processTreeCPU(child)
		}
	}
	return total
}

func listen(b *testing.B, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// startNginx serves the blocks as files /blk/N from an nginx of its own
// (foreground, no default site), tuned as one would for static files.
func startNginx(b *testing.B, blocks [][]byte) (addr string, pid int) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		b.Skip("nginx is not installed (make bench installs it: apt-get install nginx)")
	}
	dir := b.TempDir()
	os.MkdirAll(filepath.Join(dir, "www", "blk"), 0o755)
	for i, blk := range blocks {
		os.WriteFile(filepath.Join(dir, "www", "blk", fmt.Sprint(i)), blk, 0o644)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	// Workers of a root nginx drop to nobody, who cannot read a test's
	// private temporary directory.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%[3]s
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path %[1]s/tmp;
  proxy_temp_path %[1]s/tmp;
  fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp;
  scgi_temp_path %[1]s/tmp;
  server { listen %[2]s; root %[1]s/www; }
}
`, dir, addr, user)
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644)
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "nginx.conf"), "-p", dir, "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	// Its own process group, so that the workers go with the master (a
	// killed master leaves them serving).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("nginx did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, cmd.Process.Pid
}

// serveChildEnv names the directory of blocks a child process of the test
// binary serves from a store of its own (TestServeBenchChild).
const serveChildEnv = "OUTPOST_SERVEBENCH_BLOCKS"

// serveModeEnv selects what the child serves: "store" (the retrieval
// server over a segment store, behind its HTTP/1.1 loop, as the service
// runs it), "nethttp" (the same behind net/http alone) or "static"
// (net/http answering every request with one fixed 64 KiB MSG_BLK from
// memory: the floor that Go's HTTP server alone puts under any handler).
const serveModeEnv = "OUTPOST_SERVEBENCH_MODE"

// startOutpost runs the retrieval server over a segment store holding the
// blocks in a child process (the test binary again), and returns its
// address.
func startOutpost(b *testing.B, ids, blocks [][]byte, mode string) (addr string, pid int) {
	dir := b.TempDir()
	for i := range ids {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%x", ids[i])), blocks[i], 0o644)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeBenchChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), serveChildEnv+"="+dir, serveModeEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	if _, err := fmt.Fscanln(stdout, &addr); err != nil {
		b.Fatalf("the serving child did not start: %v", err)
	}
	return addr, cmd.Process.Pid
}

// TestServeBenchChild is the serving child of BenchmarkServeBlocks (and
// skips otherwise): it stores the blocks, prints its address, and serves
// until its stdin closes.
func TestServeBenchChild(t *testing.T) {
	dir := os.Getenv(serveChildEnv)
	if dir == "" {
		t.Skip("the serving benchmark's child process; runs only under BenchmarkServeBlocks")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids, blocks [][]byte
	for _, e := range entries {
		var id []byte
		if _, err := fmt.Sscanf(e.Name(), "%x", &id); err != nil {
			continue
		}
		blk, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		ids, blocks = append(ids, id), append(blocks, blk)
	}
	src := storeWith(t, ids, blocks)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	retrievalServer := &retrieval.Server{Source: src}
	handler := Handler(&OfferServer{}, retrievalServer)
	if os.Getenv(serveModeEnv) == "static" {
		reply := append(make([]byte, 4+16+36+12), blocks[0]...)
		reply = append(reply, make([]byte, 8+16)...)
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Length", strconv.Itoa(len(reply)))
			w.Write(reply)
		})
	}
	var srv portServer = &http.Server{Handler: handler}
	if os.Getenv(serveModeEnv) == "store" {
		// As the service runs its plain-HTTP ports.
		srv = &retrieval.HTTP1Server{Retrieval: retrievalServer, Fallback: srv.(*http.Server)}
	}
	go srv.Serve(ln)
	fmt.Println(ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
}

// storeWith opens a segment store on disk holding the blocks, each as
// block 0 of a one-block V1 segment offered without hashes (kept as sent).
func storeWith(b testing.TB, ids, blocks [][]byte) retrieval.Source {
	st := openStore(b)
	ctx := context.Background()
	iv := make([]byte, 16)
	for i, id := range ids {
		if err := st.AddOffer(ctx, store.SegmentOffer{SegmentID: id, Version: pccrc.V1, Size: 65536}); err != nil {
			b.Fatal(err)
		}
		if _, err := st.PutBlock(ctx, id, 0, store.Block{Crypto: pccrr.CryptoAES256, IV: iv, Ciphertext: blocks[i]}); err != nil {
			b.Fatal(err)
		}
	}
	return (&Cache{Store: st}).Source()
}
