package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// The crash test: a child process ingests continuously (V1 verified, V2
// replayed, V1 replayed then verified, with reads, deletes, eviction and
// GC running) and is SIGKILLed at a random moment. The store is reopened
// and every block it returns must verify (V1) or be byte-identical to
// what was sent (replay), the accounting must match the contents, and —
// in the iterations without eviction or deletes — every put the child saw
// succeed and synced must be there.

const crashIterations = 32

const (
	envCrashDir   = "OUTPOST_STORE_CRASH_DIR"
	envCrashFirst = "OUTPOST_STORE_CRASH_FIRST"
	envCrashLimit = "OUTPOST_STORE_CRASH_LIMIT"
)

// Segment k of the crash workload.
func crashKind(k int) string {
	switch k % 3 {
	case 0:
		return "v1"
	case 1:
		return "replay"
	}
	return "v1-upgrade" // offered (replay), then SEGMENT_INFO arrives
}

func crashV1(k int) content { return v1Content(uint64(k), 1+(k*7919)%(5*pccrc.BlockSize)) }

func crashReplay(k int) replaySegment {
	return newReplay(uint64(k), 1+(k*104729)%pccrc.MaxSegmentSizeV2)
}

func crashID(k int) []byte {
	if crashKind(k) == "replay" {
		return crashReplay(k).id
	}
	return crashV1(k).id
}

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("run by TestCrashRecovery")
	}
	first, _ := strconv.Atoi(os.Getenv(envCrashFirst))
	limit, _ := strconv.ParseInt(os.Getenv(envCrashLimit), 10, 64)
	opt := testOptions(t, filepath.Join(dir, "store"), nil)
	opt.Logger = testLogger(t)
	opt.LimitBytes = limit
	opt.AccessFlushInterval = 20 * time.Millisecond
	opt.MaintenanceInterval = 50 * time.Millisecond
	opt.GCInterval = 100 * time.Millisecond
	s, err := Open(context.Background(), opt)
	if err != nil {
		t.Fatalf("child: open: %v", err)
	}
	intents, err := os.OpenFile(filepath.Join(dir, "intents"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	acks, err := os.OpenFile(filepath.Join(dir, "acks"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	ctx := context.Background()
	var next atomic.Int64
	next.Store(int64(first))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(first), uint64(w)))
			buf := make([]byte, MaxBlockBytes)
			for {
				k := int(next.Add(1))
				// The intent is on disk before the store hears of k.
				fmt.Fprintf(intents, "%d\n", k)
				// Puts are acknowledged once a Sync after them succeeds.
				var queued []int
				ack := func(index int) { queued = append(queued, index) }
				switch crashKind(k) {
				case "replay":
					r := crashReplay(k)
					if s.AddOffer(ctx, SegmentOffer{SegmentID: r.id, Version: pccrc.V2, Size: uint32(r.size)}) != nil {
						continue
					}
					if _, err := s.PutBlock(ctx, r.id, 0, r.block); err == nil {
						ack(0)
					}
				default:
					c := crashV1(k)
					upgrade := crashKind(k) == "v1-upgrade"
					if upgrade {
						if s.AddOffer(ctx, SegmentOffer{SegmentID: c.id, Version: pccrc.V1, Size: c.seg.Size}) != nil {
							continue
						}
						if _, err := s.PutBlock(ctx, c.id, 0, c.msgBlk(t, 0, pccrr.CryptoAES128, 0)); err == nil {
							ack(0)
						}
					}
					if _, err := s.AddSegmentInfo(ctx, pccrc.V1, pccrc.SHA256, c.seg, nil); err != nil {
						continue
					}
					for i := range c.blocks() {
						if _, err := s.PutBlock(ctx, c.id, uint32(i), c.msgBlk(t, i, pccrr.CryptoAES128, uint64(i))); err == nil {
							ack(i)
						}
					}
				}
				if len(queued) > 0 && s.Sync(ctx) == nil {
					for _, index := range queued {
						fmt.Fprintf(acks, "%d %d\n", k, index)
					}
				}
				// Reads (access times), and deletes when eviction is on.
				if prev := first + 1 + rng.IntN(k-first); prev < k {
					s.ReadBlock(ctx, crashID(prev), 0, buf)
					if limit > 0 && rng.IntN(20) == 0 {
						s.DeleteSegment(ctx, crashID(prev))
					}
				}
			}
		}()
	}
	wg.Wait() // never: the parent kills us
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process 32 times")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	idOf := make(map[string]int) // segment ID -> k, from the intents log
	var intentsRead int
	var kills []time.Duration
	for iter := range crashIterations {
		// Every third run keeps everything (no limit, no deletes), so that
		// acknowledged puts can be checked one by one.
		durable := iter%3 == 2
		limit := int64(12 << 20)
		if durable {
			limit = 0
		}
		first := iter * 100000
		cmd := exec.Command(exe, "-test.run=^TestCrashChild$", "-test.count=1", "-test.v=false")
		cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashFirst+"="+strconv.Itoa(first),
			envCrashLimit+"="+strconv.FormatInt(limit, 10))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if sc.Text() == "ready" {
					ready <- true
				}
			}
			ready <- false
		}()
		select {
		case ok := <-ready:
			if !ok {
				cmd.Wait()
				t.Fatalf("iteration %d: the child exited before it was ready:\n%s", iter, stderr.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("iteration %d: the child did not open the store", iter)
		}
		wait := time.Duration(30+rng.IntN(400)) * time.Millisecond
		time.Sleep(wait)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		kills = append(kills, wait)

		// Learn the segments the child started.
		intentsRead = readIntents(t, filepath.Join(dir, "intents"), intentsRead, idOf)

		// Reopen without a limit, so that nothing is evicted while the
		// contents are checked.
		opt := testOptions(t, filepath.Join(dir, "store"), nil)
		s, err := Open(ctx, opt)
		if err != nil {
			t.Fatalf("iteration %d: reopening after SIGKILL: %v\nchild stderr:\n%s", iter, err, stderr.String())
		}
		segs, blocks, _ := checkContents(t, s) // accounting == contents
		verifyCrashContents(t, s, idOf)
		if durable {
			checkAcks(t, s, filepath.Join(dir, "acks"), first)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if t.Failed() {
			t.Fatalf("iteration %d (killed after %v) failed; child stderr:\n%s", iter, wait, stderr.String())
		}
		t.Logf("iteration %2d: killed after %3dms; %4d segments, %5d blocks", iter, wait.Milliseconds(), segs, blocks)
	}
}

// readIntents reads the intents log from line skip on, adding each
// segment's ID, and returns the lines read. A line cut by the kill is
// left for the next round (it is complete once the child wrote it).
func readIntents(t *testing.T, path string, skip int, idOf map[string]int) int {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	n := len(lines) - 1 // the last element follows the last newline
	for _, line := range lines[skip:n] {
		k, err := strconv.Atoi(line)
		if err != nil {
			continue // a line a previous child's kill cut short
		}
		idOf[string(crashID(k))] = k
	}
	return n
}

// verifyCrashContents checks every held block against what the child
// sent: verified blocks decrypt to the content, replayed ones are
// byte-identical.
func verifyCrashContents(t *testing.T, s *Store, idOf map[string]int) {
	ctx := context.Background()
	buf := make([]byte, MaxBlockBytes)
	var after []byte
	for {
		page, next, err := s.ListSegments(ctx, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range page {
			k, ok := idOf[string(info.SegmentID)]
			if !ok {
				t.Errorf("segment %x was never offered", info.SegmentID)
				continue
			}
			for i := range info.BlockCount {
				if !info.Held.Has(uint32(i)) {
					continue
				}
				blk, err := s.ReadBlock(ctx, info.SegmentID, uint32(i), buf)
				if err != nil {
					t.Errorf("segment %d block %d: %v", k, i, err)
					continue
				}
				var sent Block
				var plain []byte
				var kp []byte
				if crashKind(k) == "replay" {
					sent = crashReplay(k).block
				} else {
					c := crashV1(k)
					sent, plain, kp = c.msgBlk(t, i, pccrr.CryptoAES128, uint64(i)), c.block(i), c.seg.Secret
				}
				if info.Verified.Has(uint32(i)) {
					got, err := pccrr.DecryptBlock(kp, blk.Crypto, blk.IV, blk.Ciphertext, len(plain), nil)
					if err != nil || !bytes.Equal(got, plain) {
						t.Errorf("segment %d block %d (verified) does not decrypt to its content: %v", k, i, err)
					}
				} else if blk.Crypto != sent.Crypto || !bytes.Equal(blk.IV, sent.IV) || !bytes.Equal(blk.Ciphertext, sent.Ciphertext) {
					t.Errorf("segment %d block %d (replay) is not what was sent", k, i)
				}
			}
		}
		if next == nil {
			return
		}
		after = next
	}
}

// checkAcks checks that every put the child saw succeed since first is held.
func checkAcks(t *testing.T, s *Store, path string, first int) {
	ctx := context.Background()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var acked int
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		k, err1 := strconv.Atoi(f[0])
		index, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || k <= first {
			continue
		}
		acked++
		info, err := s.Segment(ctx, crashID(k))
		if err != nil || !info.Held.Has(uint32(index)) {
			t.Errorf("segment %d block %d was acknowledged before the kill but is not held (%v)", k, index, err)
		}
	}
	if acked == 0 {
		t.Logf("no acknowledged puts in this run")
	}
}
