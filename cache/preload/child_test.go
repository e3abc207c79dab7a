package preload

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/cache/preload/bandwidth"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/firmware/netnstest"
)

// A child process runs a preload job (the appliance's side) so that a
// test can kill it, or run it in another network namespace.
const envChild = "OUTPOST_PRELOAD_CHILD"

type childParams struct {
	StoreDir, StateFile, URL string
	Versions                 []int
	Limit                    bandwidth.Rate
}

// childReport is one line the child prints: the job, with the blocks it
// counts as held synced to the store first.
type childReport struct {
	Job     Job
	Elapsed float64 // seconds from the first to the last byte fetched
}

func TestMain(m *testing.M) {
	if p := os.Getenv(envChild); p != "" {
		if err := runChild(p); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChild(raw string) error {
	var p childParams
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return err
	}
	ctx := context.Background()
	st, err := store.Open(ctx, store.DefaultOptions(p.StoreDir))
	if err != nil {
		return err
	}
	defer st.Close()
	s := New(Options{StateFile: p.StateFile, Store: func() Store { return st }, MaxAttempts: 1})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan struct{})
	go s.Run(runCtx, func() { close(ready) })
	<-ready
	j, _, err := s.Add(Spec{URL: p.URL, Versions: p.Versions, Limit: p.Limit})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	var first, last time.Time
	var fetched uint64
	for {
		if err := st.Sync(ctx); err != nil {
			return err
		}
		cur, err := s.Job(j.ID)
		if err != nil {
			return err
		}
		now := time.Now()
		if cur.FetchedBytes > fetched {
			if first.IsZero() {
				first = now
			}
			last, fetched = now, cur.FetchedBytes
		}
		enc.Encode(childReport{Job: cur, Elapsed: last.Sub(first).Seconds()})
		if cur.State.Finished() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// child runs the child in ns (nil: here) and returns its reports.
func startChild(t *testing.T, ns *netnstest.NS, p childParams) (*exec.Cmd, <-chan childReport) {
	t.Helper()
	raw, _ := json.Marshal(p)
	var cmd *exec.Cmd
	if ns != nil {
		cmd = ns.Command(context.Background(), os.Args[0], "-test.run=^$")
	} else {
		cmd = exec.Command(os.Args[0], "-test.run=^$")
	}
	cmd.Env = append(os.Environ(), envChild+"="+string(raw))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reports := make(chan childReport, 1024)
	go func() {
		defer close(reports)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r childReport
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				reports <- r
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("child stderr:\n%s", stderr.String())
		}
	})
	return cmd, reports
}

// A job is killed (SIGKILL) half-way; a fresh service on the same store
// and state file resumes it, and fetches exactly the bytes of the blocks
// the store did not hold: the Range bytes at the origin are counted.
func TestPreloadResumesAfterKill(t *testing.T) {
	origin := newTestOrigin(t)
	data := origin.add("/install.wim", 3<<20+12345, 12)
	gate := make(chan struct{})
	origin.gate, origin.gateAfter = gate, 1<<20
	srv := origin.start(t)
	dir := t.TempDir()
	p := childParams{StoreDir: dir + "/store", StateFile: dir + "/preload.json", URL: srv.URL + "/install.wim", Versions: []int{1, 2}}
	cmd, reports := startChild(t, nil, p)
	var last childReport
	for r := range reports {
		last = r
		if r.Job.BytesHeld >= 1<<20 { // over both versions: about half a MiB of content
			break
		}
	}
	if last.Job.State != Running || last.Job.BytesHeld == 0 {
		t.Fatalf("the child never got going: %+v", last.Job)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	close(gate)
	origin.inflight.Wait() // the killed child's answer is over

	// What the store holds after the kill decides what must be fetched.
	st := openStore(t, p.StoreDir)
	defer st.Close()
	v1, v2 := origin.info("/install.wim", 1), origin.info("/install.wim", 2)
	missing, _, err := plan(context.Background(), readOnly{st}, []*content{newContent(v1), newContent(v2)})
	if err != nil {
		t.Fatal(err)
	}
	want := totalBytes(intervals(missing))
	if want == 0 || want >= uint64(len(data)) {
		t.Fatalf("after the kill %d of %d bytes are missing: nothing was kept, or all", want, len(data))
	}
	origin.resetCounts()
	s, _ := newService(t, st, func(o *Options) { o.StateFile = p.StateFile })
	runService(t, s)
	jobs := s.Jobs()
	if len(jobs) != 1 || jobs[0].ID != last.Job.ID {
		t.Fatalf("jobs after the restart: %+v", jobs)
	}
	j := waitJob(t, s, jobs[0].ID, finished)
	if j.State != Completed {
		t.Fatalf("%s: %s", j.State, j.Error)
	}
	if got := uint64(origin.served()); got != want {
		t.Errorf("the resumed job fetched %d bytes; %d were missing (of %d)", got, want, len(data))
	}
	t.Logf("killed after %d of %d bytes; resumed with %d bytes to fetch", uint64(len(data))-want, len(data), want)
	checkStored(t, st, v1, data)
	checkStored(t, st, v2, data)
}

// The bandwidth limit over a real link: the origin in one network
// namespace, the preloading appliance in another, a veth pair between
// them. 20 Mbit/s for about four seconds, measured on the link (the
// veth's byte counter, headers included, from 5% to 95% of the transfer)
// and by the appliance (payload, first to last byte): both within ±10%.
func TestBandwidthLimitOverVeth(t *testing.T) {
	netnstest.RequireRoot(t)
	nsOrigin, nsBox := netnstest.New(t, "pl-o"), netnstest.New(t, "pl-b")
	netnstest.Veth(t, nsOrigin, "wan0", nsBox, "wan1")
	nsOrigin.AddAddr(t, "wan0", "10.91.0.1/24")
	nsBox.AddAddr(t, "wan1", "10.91.0.2/24")

	const limit = bandwidth.Rate(20_000_000)
	origin := newTestOrigin(t)
	size := int(limit.BytesPerSecond() * 4)
	origin.add("/f", size, 13)
	origin.info("/f", 2) // hashed before the clock starts
	var ln net.Listener
	nsOrigin.Do(t, func() (err error) {
		ln, err = net.Listen("tcp", "10.91.0.1:0")
		return err
	})
	srv := &http.Server{Handler: origin}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	// The link's counter, sampled while the transfer runs.
	link, err := nsOrigin.Handle.LinkByName("wan0")
	if err != nil {
		t.Fatal(err)
	}
	txBytes := func() uint64 {
		l, err := nsOrigin.Handle.LinkByIndex(link.Attrs().Index)
		if err != nil || l.Attrs().Statistics == nil {
			t.Errorf("link statistics: %v", err)
			return 0
		}
		return l.Attrs().Statistics.TxBytes
	}
	type wireSample struct {
		at    time.Time
		bytes uint64
	}
	base := txBytes()
	stopSampling := make(chan struct{})
	samplesDone := make(chan []wireSample)
	go func() {
		var samples []wireSample
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				samplesDone <- samples
				return
			case now := <-tick.C:
				samples = append(samples, wireSample{now, txBytes() - base})
			}
		}
	}()

	dir := t.TempDir()
	_, reports := startChild(t, nsBox, childParams{StoreDir: dir + "/store", StateFile: dir + "/preload.json",
		URL: "http://" + ln.Addr().String() + "/f", Limit: limit})
	var last, mid childReport
	for r := range reports {
		last = r
		if r.Job.Progress > 0.4 && r.Job.Progress < 0.8 && mid.Job.ID == "" {
			mid = r
		}
	}
	close(stopSampling)
	samples := <-samplesDone
	if last.Job.State != Completed {
		t.Fatalf("job %s: %s", last.Job.State, last.Job.Error)
	}
	want := limit.BytesPerSecond()
	at := func(fraction float64) wireSample {
		for _, s := range samples {
			if float64(s.bytes) >= fraction*float64(size) {
				return s
			}
		}
		t.Fatalf("the link carried %d bytes, less than %.0f%% of %d", samples[len(samples)-1].bytes, fraction*100, size)
		return wireSample{}
	}
	a, b := at(0.05), at(0.95)
	wire := float64(b.bytes-a.bytes) / b.at.Sub(a.at).Seconds()
	box := float64(last.Job.FetchedBytes) / last.Elapsed
	t.Logf("limit %s: the link carried %.2f Mbit/s (headers included); the appliance read %.2f Mbit/s of payload",
		limit, wire*8/1e6, box*8/1e6)
	// What the API shows mid-way: the rate and an ETA that agrees with it.
	if rate := mid.Job.RateBits / 8; rate < want*0.8 || rate > want*1.2 {
		t.Errorf("mid-way the job showed %.2f Mbit/s", mid.Job.RateBits/1e6)
	} else if eta := float64(mid.Job.RemainingBytes) / rate; mid.Job.ETASeconds < eta*0.99 || mid.Job.ETASeconds > eta*1.01 || eta < 0.5 {
		t.Errorf("mid-way ETA %.2fs for %d bytes at %.0f B/s", mid.Job.ETASeconds, mid.Job.RemainingBytes, rate)
	}
	for name, got := range map[string]float64{"on the link": wire, "at the appliance": box} {
		if got < want*0.9 || got > want*1.1 {
			t.Errorf("%s: %.2f Mbit/s, the limit is %s (±10%%)", name, got*8/1e6, limit)
		}
	}
}
