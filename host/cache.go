package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// serveCache serves modifier1 111. The magic interface (17) is
// byte-compatible with uWSGI's; the simple commands do what uWSGI's plugin
// means to do but does not (a real header instead of 4 garbage bytes, dict
// lookups that find keys).
func (s *Server) serveCache(ctx context.Context, w *PacketWriter, r *Packet) Outcome {
	switch r.Modifier2 {
	case uwsgi.CacheMagic:
		return s.cacheMagic(ctx, w, r)
	case uwsgi.CacheSimpleGet, uwsgi.CacheStream:
		item, err := s.State.Caches.Default().Get(ctx, r.Payload)
		if r.Modifier2 == uwsgi.CacheStream {
			status := uwsgi.ResponseOK
			if err != nil {
				status = uwsgi.ResponseFailed
			}
			out, _ := uwsgi.AppendPacket(w.Scratch(), uwsgi.ModCache, status, nil)
			w.Write(out)
			if err == nil {
				w.Write(item.Value)
			}
			return Close
		}
		if err == nil {
			if out, err := uwsgi.AppendPacket(w.Scratch(), uwsgi.ModCache, uwsgi.CacheSimpleGet, item.Value); err == nil {
				w.Write(out)
			}
		}
		return Close
	case uwsgi.CacheSimpleSet:
		kv, err := uwsgi.ParseArray(nil, r.Payload, 3)
		if err != nil || len(kv) < 2 {
			s.log.Info("invalid cache set", "remote", r.RemoteAddr)
			return Close
		}
		if err := s.State.Caches.Default().Set(ctx, kv[0], kv[1], 0); err != nil {
			s.log.Debug("cache set failed", "err", err)
		}
		return Close
	case uwsgi.CacheSimpleDel:
		s.State.Caches.Default().Delete(ctx, r.Payload)
		return Close
	case uwsgi.CacheDictKey, uwsgi.CacheDictGet:
		return s.cacheDict(ctx, w, r)
	}
	s.log.Warn("unsupported cache command", "modifier2", r.Modifier2, "remote", r.RemoteAddr)
	return Close
}

// cacheDict serves the dict commands: each "key" pair writes the raw value
// (nothing when missing), each "get" pair the raw value or uWSGI's 404.
func (s *Server) cacheDict(ctx context.Context, w *PacketWriter, r *Packet) Outcome {
	cache := s.State.Caches.Default()
	err := uwsgi.EachVar(r.Payload, func(k, v []byte) bool {
		switch string(k) {
		case "key", "get":
			item, err := cache.Get(ctx, v)
			if err == nil {
				w.Write(item.Value)
			} else if string(k) == "get" {
				writeGenericError(w, 404)
				return false
			}
		}
		return true
	})
	if err != nil {
		s.log.Info("invalid cache dict request", "remote", r.RemoteAddr, "err", err)
	}
	return Close
}

// cacheMagic serves the magic interface (111/17).
func (s *Server) cacheMagic(ctx context.Context, w *PacketWriter, r *Packet) Outcome {
	req, err := uwsgi.ParseCacheRequest(r.Payload)
	if err != nil {
		s.log.Info("invalid cache request", "remote", r.RemoteAddr, "err", err)
		// A set/update value may follow that we cannot skip: close.
		r.Fail(w, uwsgi.CodeBadRequest, err.Error())
		return Close
	}
	cache, err := s.State.Caches.Cache(req.Cache)
	if err != nil {
		r.Fail(w, uwsgi.CodeNotFound, err.Error())
		return Close
	}
	var value []byte
	if req.Cmd == uwsgi.CacheCmdSet || req.Cmd == uwsgi.CacheCmdUpdate {
		if max := cache.Config().MaxItemSize; req.Size > max {
			r.Fail(w, uwsgi.CodeTooLarge, fmt.Sprintf("value of %d bytes exceeds the cache's item size %d", req.Size, max))
			return Close
		}
		if cap(r.c.value) < req.Size {
			r.c.value = make([]byte, req.Size)
		}
		value = r.c.value[:req.Size]
		if _, err := io.ReadFull(r.Body(), value); err != nil {
			s.log.Info("cache value not received", "remote", r.RemoteAddr, "size", req.Size, "err", err)
			return Close
		}
	}
	ttl := time.Duration(req.Expires) * time.Second
	get := false
	var item api.Item
	switch req.Cmd {
	case uwsgi.CacheCmdGet:
		item, err = cache.Get(ctx, req.Key)
		get = true
	case uwsgi.CacheCmdExists:
		var ok bool
		if ok, err = cache.Exists(ctx, req.Key); err == nil && !ok {
			err = api.ErrNotFound
		}
	case uwsgi.CacheCmdDel:
		err = cache.Delete(ctx, req.Key)
	case uwsgi.CacheCmdClear:
		err = cache.Clear(ctx)
	case uwsgi.CacheCmdSet:
		err = cache.Set(ctx, req.Key, value, ttl)
	case uwsgi.CacheCmdUpdate:
		err = cache.Update(ctx, req.Key, value, ttl)
	}
	if err != nil {
		if !errors.Is(err, api.ErrNotFound) && !errors.Is(err, api.ErrExists) {
			s.log.Info("cache command failed", "cmd", req.Cmd, "cache", cache.Name(), "err", err)
		}
		return r.Fail(w, codeOf(err), fmt.Sprintf("cache %s %q: %v", req.Cmd, req.Key, err))
	}
	var expires int64
	if !item.Expires.IsZero() {
		expires = item.Expires.Unix()
	}
	w.Write(uwsgi.AppendCacheReply(w.Scratch(), get, item.Value, expires))
	return Keep
}
