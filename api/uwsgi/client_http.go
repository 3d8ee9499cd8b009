package uwsgi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Do sends req as an HTTP-style request with modifier1 m1 and modifier2 m2
// (the way nginx's uwsgi_pass does: CGI vars, then the body) and reads the
// raw HTTP response the server writes before closing. The request body is
// read in full first (at most MaxResult bytes) and closed.
//
// Do always uses a connection of its own, which the response's Body owns:
// close the Body when done. ctx keeps governing reads of the Body, each
// bounded by Timeout, and the Body yields at most MaxResult bytes
// (ErrTooLarge after). A server that closes without a byte is ErrNoResult;
// a reply that is not HTTP is ErrProtocol.
func (c *Client) Do(ctx context.Context, m1 Modifier, m2 uint8, req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = readAll(req.Body, c.maxResult())
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("uwsgi: request body: %w", err)
		}
	}
	packet, err := BuildRequest(m1, m2, req, nil, body)
	if err != nil {
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	cn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.readResponse(cn, packet, req)
	if err != nil {
		cn.end()
		cn.close()
		return nil, mapErr(ctx, err)
	}
	resp.Body = &responseBody{ctx: ctx, rc: resp.Body, cn: cn, left: c.maxResult()}
	return resp, nil
}

func (c *Client) readResponse(cn *clientConn, packet []byte, req *http.Request) (*http.Response, error) {
	if _, err := cn.Write(packet); err != nil {
		return nil, err
	}
	if _, err := cn.br.Peek(1); err != nil {
		if err == io.EOF {
			return nil, ErrNoResult
		}
		return nil, err
	}
	resp, err := http.ReadResponse(cn.br, req)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || isTimeout(err) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return resp, nil
}

// responseBody is the Body of a response from Do: it owns the connection.
type responseBody struct {
	ctx  context.Context
	rc   io.ReadCloser
	cn   *clientConn
	left int64 // bytes still allowed by MaxResult

	once sync.Once
}

func (b *responseBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte tells a body of exactly MaxResult from a longer one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("uwsgi: response body: %w", ErrTooLarge)
		}
		return 0, b.mapErr(err)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, b.mapErr(err)
}

func (b *responseBody) mapErr(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return mapErr(b.ctx, err)
}

func (b *responseBody) Close() error {
	b.once.Do(func() {
		b.cn.end()
		b.cn.close()
	})
	return nil
}
