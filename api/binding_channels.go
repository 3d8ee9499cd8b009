package api

import (
	"context"
	"errors"
)

// channelFuncs are the channel functions (Daphne's channels: consumers,
// channels, groups). A bad name or a message that cannot travel is an
// argument error (raised); a channel or layer that is full, or a message
// over the size limit, is a runtime condition: nil, as the cache
// functions answer when an item cannot be stored.
var channelFuncs = []Func{
	{Name: "channel_send", Params: "channel, msg", Doc: "send msg (a table/object/map) to channel; true, or nil when the channel is full or the message too large",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			ch, err := channelArg(a, 0)
			if err != nil {
				return nil, err
			}
			msg, err := messageArg(a, 1)
			if err != nil {
				return nil, err
			}
			return sendResult(a, 1, env.State.Channels.Send(ctx, ch, msg))
		}},
	{Name: "group_add", Params: "group, channel", Doc: "add channel to group (for a day, the group expiry); true",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			g, ch, err := groupArgs(a)
			if err != nil {
				return nil, err
			}
			if err := env.State.Channels.GroupAdd(ctx, g, ch); err != nil {
				if errors.Is(err, ErrLayerFull) {
					return nil, nil
				}
				return nil, err
			}
			return ok, nil
		}},
	{Name: "group_discard", Params: "group, channel", Doc: "remove channel from group (no error if it is not a member); true",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			g, ch, err := groupArgs(a)
			if err != nil {
				return nil, err
			}
			return ok, env.State.Channels.GroupDiscard(ctx, g, ch)
		}},
	{Name: "group_send", Params: "group, msg", Doc: "send msg to every channel of group (a full channel misses it); true, or nil when the message is too large",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			g, err := a.String(0)
			if err != nil {
				return nil, err
			}
			if err := CheckGroupName(g); err != nil {
				return nil, a.err(0, "%v", err)
			}
			msg, err := messageArg(a, 1)
			if err != nil {
				return nil, err
			}
			return sendResult(a, 1, env.State.Channels.GroupSend(ctx, g, msg))
		}},
	{Name: "new_channel", Params: "[prefix]", Doc: `a new unique channel name: prefix (default "specific"), "!" and a random part`,
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			prefix, err := a.OptString(0, "")
			if err != nil {
				return nil, err
			}
			name, err := env.State.Channels.NewChannel(ctx, prefix)
			if errors.Is(err, ErrChannelName) {
				return nil, a.err(0, "%v", err)
			}
			if err != nil {
				return nil, err
			}
			return name, nil
		}},
	{Name: "register_consumer", Registers: true, Params: "channel, func",
		Doc: "run func(msg) for every message of channel (msg.channel is the channel's name); one consumer per channel, the last registration wins",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			ch, err := channelArg(a, 0)
			if err != nil {
				return nil, err
			}
			fn, err := a.Callable(1)
			if err != nil {
				return nil, err
			}
			return ok, env.RegisterConsumer(ch, LoadingFile(ctx), func(ctx context.Context, msg map[string]Value) error {
				_, err := fn.Call(ctx, []Value{msg})
				return err
			})
		}},
}

// channelArg reads argument i, a channel name.
func channelArg(a Args, i int) (string, error) {
	ch, err := a.String(i)
	if err != nil {
		return "", err
	}
	if err := CheckChannelName(ch); err != nil {
		return "", a.err(i, "%v", err)
	}
	return ch, nil
}

// groupArgs reads a group name (#1) and a channel name (#2).
func groupArgs(a Args) (group, channel string, err error) {
	if group, err = a.String(0); err != nil {
		return "", "", err
	}
	if err := CheckGroupName(group); err != nil {
		return "", "", a.err(0, "%v", err)
	}
	channel, err = channelArg(a, 1)
	return group, channel, err
}

// messageArg reads argument i, a message: a map (an empty Lua table
// converts to a list and is taken as an empty map).
func messageArg(a Args, i int) (map[string]Value, error) {
	if i >= len(a.Vals) {
		return nil, a.err(i, "table expected, got no value")
	}
	switch m := a.Vals[i].(type) {
	case map[string]Value:
		return m, nil
	case []Value:
		if len(m) == 0 {
			return map[string]Value{}, nil
		}
	}
	return nil, a.err(i, "table expected, got %s", typeName(a.Vals[i]))
}

// sendResult turns a layer's send error into the function's result.
func sendResult(a Args, msgArg int, err error) (Value, error) {
	switch {
	case err == nil:
		return ok, nil
	case errors.Is(err, ErrChannelFull), errors.Is(err, ErrLayerFull), errors.Is(err, ErrMessageTooLarge):
		return nil, nil
	case errors.Is(err, ErrMessage):
		return nil, a.err(msgArg, "%v", err)
	}
	return nil, err
}
