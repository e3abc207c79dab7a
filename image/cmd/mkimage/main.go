// Command mkimage builds Outpost images for the boards under board/:
//
//	go run ./image/cmd/mkimage -board qemu-amd64 [-out build] [-version v]
//	go run ./image/cmd/mkimage -all
//
// Timestamps in the images are SOURCE_DATE_EPOCH, else the commit time.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/outpost-appliance/outpost/image/board"
	"github.com/outpost-appliance/outpost/image/build"
)

func main() {
	name := flag.String("board", "qemu-amd64", "board to build (a directory under board/)")
	all := flag.Bool("all", false, "build every board")
	out := flag.String("out", "build", "output directory")
	version := flag.String("version", "dev", "outpost version string")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, log, *name, *all, *out, *version); err != nil {
		log.Error("mkimage failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, name string, all bool, out, version string) error {
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	t, err := build.SourceTime(ctx, repo)
	if err != nil {
		return err
	}
	names := []string{name}
	if all {
		if names, err = board.Names(filepath.Join(repo, "board")); err != nil {
			return err
		}
	}
	o := build.Options{Repo: repo, Out: out, Version: version, Time: t, Log: log}
	for _, n := range names {
		start := time.Now()
		r, err := build.Board(ctx, o, n)
		if err != nil {
			return err
		}
		args := []any{"board", n, "seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds())}
		for _, f := range []string{r.Kernel, r.Initramfs, r.Disk} {
			if st, err := os.Stat(f); err == nil {
				args = append(args, filepath.Base(f)+"_MiB", fmt.Sprintf("%.1f", float64(st.Size())/(1<<20)))
			}
		}
		log.Info("built", args...)
	}
	return nil
}
