package uwsgi

import (
	"encoding/binary"
	"fmt"
	"io"
)

// HeaderSize is the size of every uwsgi packet header.
const HeaderSize = 4

// MaxSize is the largest payload a header can announce.
const MaxSize = 65535

// Header is the 4-byte uwsgi packet header: modifier1, a little-endian
// 16-bit payload size, modifier2.
type Header struct {
	Modifier1 Modifier // the packet's kind: ModRPC, ModCache, ... (0 for a WSGI request)
	Size      uint16   // the payload's length in bytes
	Modifier2 uint8    // a sub-kind or status whose meaning depends on Modifier1
}

// ParseHeader decodes the first HeaderSize bytes of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, formatErr("header", len(b), ErrTruncated)
	}
	return Header{
		Modifier1: Modifier(b[0]),
		Size:      binary.LittleEndian.Uint16(b[1:3]),
		Modifier2: b[3],
	}, nil
}

// Append appends the encoded header to dst.
func (h Header) Append(dst []byte) []byte {
	return append(dst, byte(h.Modifier1), byte(h.Size), byte(h.Size>>8), h.Modifier2)
}

// Bytes returns the encoded header.
func (h Header) Bytes() [HeaderSize]byte {
	return [HeaderSize]byte{byte(h.Modifier1), byte(h.Size), byte(h.Size >> 8), h.Modifier2}
}

// String formats the header as uWSGI's documentation writes packets:
// [modifier1, size, modifier2].
func (h Header) String() string {
	return fmt.Sprintf("[%v, %d, %d]", h.Modifier1, h.Size, h.Modifier2)
}

// Packet is a header and its payload (the vars block, array or raw data the
// header's size announces; an HTTP body is not part of it).
type Packet struct {
	Header
	Payload []byte // the Size bytes after the header
}

// AppendPacket appends a packet with the given modifiers and payload to dst.
// A payload over MaxSize bytes is ErrTooLarge.
func AppendPacket(dst []byte, m1 Modifier, m2 uint8, payload []byte) ([]byte, error) {
	if len(payload) > MaxSize {
		return dst, fmt.Errorf("uwsgi: payload of %d bytes: %w (max %d)", len(payload), ErrTooLarge, MaxSize)
	}
	dst = Header{Modifier1: m1, Size: uint16(len(payload)), Modifier2: m2}.Append(dst)
	return append(dst, payload...), nil
}

// ReadHeader reads exactly one header from r. A clean EOF before the first
// byte is io.EOF; EOF inside the header is io.ErrUnexpectedEOF.
func ReadHeader(r io.Reader) (Header, error) {
	var b [HeaderSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return Header{}, err
	}
	return ParseHeader(b[:])
}

// ReadPacket reads one header and its payload from r into buf (grown as
// needed, so callers can reuse it). A size over max is rejected before any
// payload byte is read, with an error wrapping ErrTooLarge.
func ReadPacket(r io.Reader, buf []byte, max int) (Packet, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return Packet{}, err
	}
	if int(h.Size) > max {
		return Packet{Header: h}, fmt.Errorf("uwsgi: packet %v announces %d bytes: %w (max %d)", h, h.Size, ErrTooLarge, max)
	}
	if cap(buf) < int(h.Size) {
		buf = make([]byte, h.Size)
	}
	buf = buf[:h.Size]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Packet{Header: h}, err
	}
	return Packet{Header: h, Payload: buf}, nil
}

// Extract takes one whole packet from the front of buf, the way a server
// feeds it bytes as they arrive. It returns the packet (its payload aliases
// buf) and n, the bytes it used; when buf does not yet hold a whole packet it
// returns n == 0 and need, the number of further bytes required before a
// call can succeed (it needs the header before it knows the total). A
// partial frame is never consumed. Bytes after the packet (an HTTP body, the
// next packet) are left for the caller. A size over max is ErrTooLarge.
func Extract(buf []byte, max int) (p Packet, n, need int, err error) {
	if len(buf) < HeaderSize {
		return Packet{}, 0, HeaderSize - len(buf), nil
	}
	h, _ := ParseHeader(buf)
	if int(h.Size) > max {
		return Packet{}, 0, 0, fmt.Errorf("uwsgi: packet %v announces %d bytes: %w (max %d)", h, h.Size, ErrTooLarge, max)
	}
	total := HeaderSize + int(h.Size)
	if len(buf) < total {
		return Packet{}, 0, total - len(buf), nil
	}
	return Packet{Header: h, Payload: buf[HeaderSize:total:total]}, total, 0, nil
}
