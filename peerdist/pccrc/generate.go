package pccrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// GenerateV1 computes Content Information 1.0 for the whole content read
// from r, as a BranchCache content server would: 32 MiB segments of 64 KiB
// blocks, hashed with algo (SHA256 unless the caller has a reason), and
// segment secrets keyed by serverSecret. The range covers the whole content
// with dwReadBytesInLastSegment set to the size of the last segment.
func GenerateV1(ctx context.Context, r io.Reader, algo HashAlgo, serverSecret []byte) (*Info, error) {
	if algo != SHA256 && algo != SHA384 && algo != SHA512 {
		return nil, fmt.Errorf("pccrc: generate v1: hash algorithm %v", algo)
	}
	hashSize := algo.Size()
	units, err := hashUnits(ctx, r, splitBlocks, hashSize, func(block, out []byte) {
		h := algo.New()
		h.Write(block)
		h.Sum(out[:0])
	})
	if err != nil {
		return nil, fmt.Errorf("pccrc: generate v1: %w", err)
	}
	ks := algo.ServerKey(serverSecret)
	ci := &Info{Version: V1, Algo: algo}
	var offset uint64
	for len(units.sizes) > 0 {
		n := min(len(units.sizes), MaxBlocksPerSeg)
		seg := Segment{Offset: offset, BlockHashes: make([][]byte, n)}
		hod := algo.New()
		for i := range n {
			seg.Size += units.sizes[i]
			seg.BlockHashes[i] = units.hashes[i*hashSize : (i+1)*hashSize : (i+1)*hashSize]
			hod.Write(seg.BlockHashes[i])
		}
		seg.HashOfData = hod.Sum(nil)
		seg.Secret = algo.SegmentSecret(ks, seg.HashOfData)
		ci.Segments = append(ci.Segments, seg)
		offset += uint64(seg.Size)
		units.sizes = units.sizes[n:]
		units.hashes = units.hashes[n*hashSize:]
	}
	if len(ci.Segments) > 0 {
		ci.ReadBytesInLastSegment = ci.Segments[len(ci.Segments)-1].Size
	}
	return ci, nil
}

// GenerateV2 computes Content Information 2.0 for the whole content read
// from r: content-defined segments of at most 128 KiB (see chunker.go),
// truncated SHA-512, segment secrets keyed by serverSecret. All header
// fields are zero, as IIS sends for a whole-file request.
func GenerateV2(ctx context.Context, r io.Reader, serverSecret []byte) (*Info, error) {
	algo := TruncatedSHA512
	units, err := hashUnits(ctx, r, cutPoint, algo.Size(), func(segment, out []byte) {
		h := algo.New()
		h.Write(segment)
		// Sum into a stack buffer: out has room for only the truncated hash.
		var full [64]byte
		copy(out, h.Sum(full[:0]))
	})
	if err != nil {
		return nil, fmt.Errorf("pccrc: generate v2: %w", err)
	}
	ks := algo.ServerKey(serverSecret)
	ci := &Info{Version: V2, Algo: algo, Segments: make([]Segment, len(units.sizes))}
	var offset uint64
	for i, size := range units.sizes {
		hod := units.hashes[i*32 : (i+1)*32 : (i+1)*32]
		ci.Segments[i] = Segment{Offset: offset, Size: size, HashOfData: hod, Secret: algo.SegmentSecret(ks, hod)}
		offset += uint64(size)
	}
	return ci, nil
}

// splitBlocks cuts V1 content into 64 KiB blocks; only the last may be
// shorter. Segments are every 512 blocks, so block boundaries are all that
// hashing needs.
func splitBlocks(data []byte, atEOF bool) int {
	if len(data) >= BlockSize {
		return BlockSize
	}
	if atEOF {
		return len(data)
	}
	return 0
}

// hashedUnits are the sizes and concatenated hashes of consecutive units
// (V1 blocks or V2 segments) of some content.
type hashedUnits struct {
	sizes  []uint32
	hashes []byte
}

// batchSize is how much content one hashing job covers. It must exceed the
// largest unit (128 KiB) by a good margin so that carrying an unfinished
// unit over to the next batch costs little.
const batchSize = 4 << 20

type hashJob struct {
	seq    int
	buf    []byte
	sizes  []uint32
	hashes []byte
}

// hashUnits reads r to the end, cuts it into units with split and hashes
// each unit with hash (which writes hashSize bytes to out). Reading and
// cutting run in the caller's goroutine while GOMAXPROCS workers hash whole
// batches, so on a multi-core box generation runs at the hash's speed rather
// than hash plus reading plus chunking.
func hashUnits(ctx context.Context, r io.Reader, split func([]byte, bool) int, hashSize int, hash func(unit, out []byte)) (hashedUnits, error) {
	workers := runtime.GOMAXPROCS(0)
	free := make(chan []byte, workers+2)
	for range cap(free) {
		free <- make([]byte, batchSize)
	}
	jobs := make(chan *hashJob)
	done := make(chan *hashJob, workers+2)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for job := range jobs {
				off := 0
				for i, size := range job.sizes {
					hash(job.buf[off:off+int(size)], job.hashes[i*hashSize:(i+1)*hashSize])
					off += int(size)
				}
				free <- job.buf
				done <- job
			}
		})
	}

	var (
		out      hashedUnits
		pending  = map[int]*hashJob{}
		nextSeq  int
		sent     int
		readErr  error
		carry    []byte
		finished bool
	)
	collect := func(job *hashJob) {
		pending[job.seq] = job
		for j, ok := pending[nextSeq]; ok; j, ok = pending[nextSeq] {
			out.sizes = append(out.sizes, j.sizes...)
			out.hashes = append(out.hashes, j.hashes...)
			delete(pending, nextSeq)
			nextSeq++
		}
	}
	for !finished && readErr == nil {
		if err := ctx.Err(); err != nil {
			readErr = err
			break
		}
		var buf []byte
		select {
		case buf = <-free:
		case job := <-done:
			collect(job)
			continue
		}
		n := copy(buf, carry)
		m, err := io.ReadFull(r, buf[n:])
		n += m
		atEOF := false
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			atEOF = true
		default:
			readErr = err
		}
		job := &hashJob{seq: sent, buf: buf}
		off := 0
		for {
			size := split(buf[off:n], atEOF)
			if size == 0 {
				break
			}
			job.sizes = append(job.sizes, uint32(size))
			off += size
		}
		// The unfinished unit moves to the next batch. It is copied before
		// the job is dispatched, so no worker writes this buffer meanwhile.
		carry = append(carry[:0], buf[off:n]...)
		job.hashes = make([]byte, len(job.sizes)*hashSize)
		finished = atEOF
		sent++
		// Finished jobs are collected while waiting for a worker, or
		// workers blocked on a full done channel would never take this one.
		for dispatched := false; !dispatched; {
			select {
			case jobs <- job:
				dispatched = true
			case j := <-done:
				collect(j)
			}
		}
	}
	close(jobs)
	for nextSeq < sent {
		collect(<-done)
	}
	wg.Wait()
	if readErr != nil {
		return hashedUnits{}, readErr
	}
	return out, nil
}
