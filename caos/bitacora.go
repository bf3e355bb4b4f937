package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// bitacora prints the run's progress lines, each with the time since the
// run started, safely from several goroutines.
type bitacora struct {
	mu     sync.Mutex
	w      io.Writer
	inicio time.Time
}

func nuevaBitacora(w io.Writer) *bitacora { return &bitacora{w: w, inicio: time.Now()} }

// Printf prints one line.
func (b *bitacora) Printf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(b.w, "[caos %7.1fs] %s\n", time.Since(b.inicio).Seconds(), fmt.Sprintf(format, args...))
}
