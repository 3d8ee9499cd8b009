package uwsgi

import (
	"context"
	"io"
)

// Reload asks a scripthost server to reload its scripts: a graceful
// reload request (modifier1 98) lets the replaced scripts finish their
// calls, a brutal one (97) does not wait for them. Servers accept it only
// on their operations listener; the reply confirms the new scripts serve,
// or is an error frame saying why the reload failed.
func (c *Client) Reload(ctx context.Context, brutal bool) error {
	m := ModReloadGraceful
	if brutal {
		m = ModReloadBrutal
	}
	req := Header{Modifier1: m, Modifier2: ReloadRequest}.Append(nil)
	return c.exchange(ctx, req, ErrRefused, func(cn *clientConn, h Header) (bool, error) {
		if h.Modifier1 != m || h.Modifier2 != ReloadConfirm || h.Size != 0 {
			return false, protocolError("reply %v to a reload request", h)
		}
		return true, nil
	})
}

// Status asks a scripthost server's operations listener which scripts
// generation serves and how the last reload went (modifier1 99, a
// configuration request); the answer is a vars block.
func (c *Client) Status(ctx context.Context) (Vars, error) {
	req := Header{Modifier1: ModConfigRequest, Modifier2: 0}.Append(nil)
	var vars Vars
	err := c.exchange(ctx, req, ErrRefused, func(cn *clientConn, h Header) (bool, error) {
		if h.Modifier1 != ModConfigRequest {
			return false, protocolError("reply %v to a status request", h)
		}
		block := make([]byte, h.Size)
		if _, err := io.ReadFull(cn.br, block); err != nil {
			return false, unexpected(err)
		}
		var err error
		vars, err = ParseVars(nil, block, 0)
		return err == nil, err
	})
	return vars, err
}
