package host

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Request bodies are read whole before an app runs, so that a slow client
// never holds an interpreter: the app reads them from memory, or from an
// unlinked temporary file when they are large.

// ErrBodyTooLarge: a request body over Limits.MaxBody.
var ErrBodyTooLarge = errors.New("host: request body too large")

// requestBody is a request body read in full: in memory, or spilled to an
// unlinked temporary file. Its reads follow one cursor, whether the app
// reads api.Request.Body or the raw connection (uwsgi.recv).
type requestBody struct {
	mem  []byte
	file *os.File
	size int64
	off  int64
	// When mem is the connection's read buffer itself (the body came with
	// the packet), owed bytes are consumed from br once mem was read.
	br   *bufio.Reader
	owed int
}

// Read reads the body; io.EOF after its last byte.
func (b *requestBody) Read(p []byte) (int, error) {
	if b.off >= b.size {
		b.settle()
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), b.size-b.off)]
	var n int
	var err error
	if b.file != nil {
		n, err = b.file.ReadAt(p, b.off)
		if err == io.EOF && n == len(p) {
			err = nil
		}
	} else {
		n = copy(p, b.mem[b.off:])
	}
	b.off += int64(n)
	if b.off >= b.size {
		b.settle()
	}
	return n, err
}

// remaining reports the unread bytes.
func (b *requestBody) remaining() int64 { return b.size - b.off }

// peek returns up to n unread bytes without consuming them.
func (b *requestBody) peek(n int) ([]byte, error) {
	n = int(min(int64(n), b.remaining()))
	if b.file == nil {
		return b.mem[b.off : b.off+int64(n)], nil
	}
	p := make([]byte, n)
	got, err := b.file.ReadAt(p, b.off)
	if got == n {
		err = nil
	}
	return p[:got], err
}

// settle consumes the bytes the body borrowed from the read buffer.
func (b *requestBody) settle() {
	if b.owed > 0 {
		b.br.Discard(b.owed)
		b.owed = 0
	}
	b.mem = nil
}

// release frees the body at the end of the request.
func (b *requestBody) release() {
	b.settle()
	if b.file != nil {
		b.file.Close()
	}
	*b = requestBody{}
}

// bodySource reads a body from a client: each read waits at most the
// per-read timeout, and none goes past the deadline of the whole body.
type bodySource struct {
	r           io.Reader
	setDeadline func(time.Time) error
	perRead     time.Duration
	until       time.Time
}

func (s bodySource) Read(p []byte) (int, error) {
	t := time.Now().Add(s.perRead)
	if s.until.Before(t) {
		t = s.until
	}
	s.setDeadline(t)
	return s.r.Read(p)
}

// Spilled bodies are copied in chunks of this size.
const spillChunk = 32 << 10

// fill reads size bytes from src (size < 0: until EOF) into b: in memory
// up to memMax bytes, else into an unlinked temporary file in dir. A body
// over maxBody (0: no limit) fails with ErrBodyTooLarge; a short body with
// io.ErrUnexpectedEOF. scratch, when large enough, holds a memory body.
func (b *requestBody) fill(src io.Reader, size, memMax, maxBody int64, dir string, scratch []byte) error {
	if size >= 0 && size <= memMax {
		if int64(cap(scratch)) >= size {
			b.mem = scratch[:size]
		} else {
			b.mem = make([]byte, size)
		}
		b.size = size
		_, err := io.ReadFull(src, b.mem)
		return err
	}
	var head []byte
	if size < 0 {
		// Unknown length: memory first, a file once it is over memMax.
		limit := memMax + 1
		if maxBody > 0 {
			limit = min(limit, maxBody+1)
		}
		var err error
		head, err = io.ReadAll(io.LimitReader(src, limit))
		if err != nil {
			return err
		}
		if maxBody > 0 && int64(len(head)) > maxBody {
			return fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, maxBody)
		}
		if int64(len(head)) <= memMax {
			b.mem, b.size = head, int64(len(head))
			return nil
		}
	}
	f, err := os.CreateTemp(dir, "scripthost-body-")
	if err != nil {
		return fmt.Errorf("host: spilling a request body: %w", err)
	}
	// Unlinked at once: the file lives as long as it is open, and a crash
	// leaves nothing behind.
	os.Remove(f.Name())
	b.file = f
	if _, err := f.Write(head); err != nil {
		return fmt.Errorf("host: spilling a request body: %w", err)
	}
	rest := io.Reader(src)
	if size >= 0 {
		rest = io.LimitReader(src, size)
	} else if maxBody > 0 {
		rest = io.LimitReader(src, maxBody+1-int64(len(head)))
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, rest, make([]byte, spillChunk))
	b.size = int64(len(head)) + n
	switch {
	case err != nil:
		return err
	case size >= 0 && n < size:
		return io.ErrUnexpectedEOF
	case size < 0 && maxBody > 0 && b.size > maxBody:
		return fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, maxBody)
	}
	return nil
}
