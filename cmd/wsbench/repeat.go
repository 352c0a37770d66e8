package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
)

// repeat writes a pcap's packets k times into one pcap, each copy shifted
// in time past the end of the last by a minute (so its connections are
// new ones, as after TIME_WAIT): the same traffic k times as long, to
// show that wsdiag's time grows linearly with a capture's length and its
// memory does not. The input is read k times, not held in memory.
func repeat(args []string) int {
	fs := flag.NewFlagSet("repeat", flag.ExitOnError)
	out := fs.String("o", "", "output pcap")
	k := fs.Int("k", 4, "copies")
	fs.Parse(args)
	if *out == "" || fs.NArg() != 1 || *k < 1 {
		fmt.Fprintln(os.Stderr, "usage: wsbench repeat -o OUT [-k 4] IN.pcap")
		return 2
	}
	if err := writeRepeated(fs.Arg(0), *out, *k); err != nil {
		fmt.Fprintln(os.Stderr, "wsbench repeat:", err)
		return 2
	}
	return 0
}

func writeRepeated(in, out string, k int) error {
	first, last, err := span(in)
	if err != nil {
		return err
	}
	shift := last.Sub(first) + time.Minute
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	var w *pcapgo.Writer
	packets := 0
	for c := 0; c < k; c++ {
		src, err := os.Open(in)
		if err != nil {
			return err
		}
		r, err := pcapgo.NewReader(bufio.NewReaderSize(src, 1<<20))
		if err != nil {
			src.Close()
			return fmt.Errorf("%s: %v", in, err)
		}
		if w == nil {
			w = pcapgo.NewWriter(bw)
			if err := w.WriteFileHeader(r.Snaplen(), r.LinkType()); err != nil {
				return err
			}
		}
		for {
			data, ci, err := r.ZeroCopyReadPacketData()
			if err == io.EOF {
				break
			}
			if err != nil {
				src.Close()
				return fmt.Errorf("%s: %v", in, err)
			}
			ci.Timestamp = ci.Timestamp.Add(time.Duration(c) * shift)
			if err := w.WritePacket(ci, data); err != nil {
				return err
			}
			packets++
		}
		src.Close()
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d packets, %d copies of %s, each %s after the last\n", out, packets, k, in, shift.Round(time.Millisecond))
	return nil
}

// span returns the first and the last time stamp of a pcap.
func span(in string) (first, last time.Time, err error) {
	f, err := os.Open(in)
	if err != nil {
		return first, last, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return first, last, fmt.Errorf("%s: %v", in, err)
	}
	for {
		_, ci, err := r.ZeroCopyReadPacketData()
		if err == io.EOF {
			return first, last, nil
		}
		if err != nil {
			return first, last, fmt.Errorf("%s: %v", in, err)
		}
		if first.IsZero() {
			first = ci.Timestamp
		}
		last = ci.Timestamp
	}
}
