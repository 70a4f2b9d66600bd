"""The waiting room in Redis, for many app servers at once. Every operation is one round trip
(a command, or a Lua script run by EVALSHA), and every change is atomic. A join and a ticket's
read also answer the ticket's place in line (``TicketInfo.position_hint``): a shopper's join or
poll is one round trip in all.

Keys of a deal share the hash tag ``{deal_id}`` (one Redis Cluster slot, so the scripts may touch
them all)::

    {prefix}:{42}:who      hash    who -> ticket id (one ticket per person)
    {prefix}:{42}:line     zset    the waiting tickets, score = order_key (exact: < 2**53)
    {prefix}:{42}:counts   hash    state -> number of tickets in it
    {prefix}:{42}:lease    string  the admitter's owner, with the lease as its expiry
    {prefix}:{42}:beat     string  when the worker's admitter last looked after the deal
    {prefix}:{42}:t:<id>   hash    the ticket: who, quantity, state, order_key, joined_at, and
                                   each top-level key of its data as ``d:<key>`` -> JSON

Equal scores are ordered by member, bytewise: the same tie-break as the database back end's
``order_by("order_key", "id")`` (under a bytewise collation, as SQLite's and PostgreSQL's "C").
Keeping data one JSON value per top-level key lets a script merge it like ``{**old, **new}``
without decoding JSON in Lua (whose cjson would round numbers to 14 digits).
"""

from __future__ import annotations

import json

import redis

from .base import STATES, TicketInfo, TicketState, WaitingRoom, new_ticket_id, order_key

_DATA = "d:"
_MAX_ID = 64  # the database back end's column width: no ticket id is longer

# KEYS: who, line, counts, ticket (for the new id); ARGV: who, id, quantity, order_key, joined_at,
# the ticket key's prefix. Returns {1, id, {}, rank} for a new ticket, {0, id, fields, rank} for
# the one they have (rank: 0-based place in line, -1 when not waiting).
_JOIN = """
local id = redis.call('HGET', KEYS[1], ARGV[1])
if id then
  return {0, id, redis.call('HGETALL', ARGV[6] .. id), redis.call('ZRANK', KEYS[2], id) or -1}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[4], 'who', ARGV[1], 'quantity', ARGV[3], 'state', 'waiting',
           'order_key', ARGV[4], 'joined_at', ARGV[5])
if #ARGV > 6 then
  redis.call('HSET', KEYS[4], unpack(ARGV, 7))
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
redis.call('HINCRBY', KEYS[3], 'waiting', 1)
return {1, ARGV[2], {}, redis.call('ZRANK', KEYS[2], ARGV[2])}
"""

# KEYS: who, line; ARGV: who, the ticket key's prefix. Returns {} or {id, fields, rank} (rank as in _JOIN).
_TICKET_OF = """
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return {} end
return {id, redis.call('HGETALL', ARGV[2] .. id), redis.call('ZRANK', KEYS[2], id) or -1}
"""

# KEYS: ticket, line; ARGV: id. Returns {fields, rank} (rank as in _JOIN); a poll's one round trip.
_GET = """
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return {fields, -1} end
return {fields, redis.call('ZRANK', KEYS[2], ARGV[1]) or -1}
"""

# KEYS: ticket, line, counts; ARGV: id, state, has only_from ('1'/'0'), only_from, then data
# field/value pairs. Returns 1 if the ticket was changed, 0 if it is unknown or not in only_from.
_UPDATE = """
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return 0 end
if ARGV[3] == '1' and cur ~= ARGV[4] then return 0 end
local new = ARGV[2]
if cur ~= new then
  redis.call('HSET', KEYS[1], 'state', new)
  redis.call('HINCRBY', KEYS[3], cur, -1)
  redis.call('HINCRBY', KEYS[3], new, 1)
  if cur == 'waiting' then
    redis.call('ZREM', KEYS[2], ARGV[1])
  elseif new == 'waiting' then
    redis.call('ZADD', KEYS[2], redis.call('HGET', KEYS[1], 'order_key'), ARGV[1])
  end
end
if #ARGV > 4 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 5))
end
return 1
"""

# KEYS: line; ARGV: n, the ticket key's prefix. Returns {id, fields, id, fields, ...} in order.
_FIRST = """
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', ARGV[2] .. id)
end
return out
"""

# KEYS: lease; ARGV: owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: who, line, counts, lease; ARGV: the ticket key's prefix. Ticket keys go in batches
# (UNLINK frees them in the background; unpack has a limit on its arguments).
_CLEAR = """
local ids = redis.call('HVALS', KEYS[1])
for i = 1, #ids, 500 do
  local batch = {}
  for j = i, math.min(i + 499, #ids) do
    batch[#batch + 1] = ARGV[1] .. ids[j]
  end
  redis.call('UNLINK', unpack(batch))
end
return redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
"""


def _pairs(flat) -> dict:
    return dict(zip(flat[::2], flat[1::2], strict=True))


class RedisWaitingRoom(WaitingRoom):
    name = "redis"

    def __init__(self, url: str, prefix: str = "wr"):
        self.url, self.prefix = url, prefix
        self.client = redis.Redis.from_url(url, decode_responses=True)  # one pool per instance
        self._join = self.client.register_script(_JOIN)
        self._update = self.client.register_script(_UPDATE)
        self._first = self.client.register_script(_FIRST)
        self._get = self.client.register_script(_GET)
        self._ticket_of = self.client.register_script(_TICKET_OF)
        self._release = self.client.register_script(_RELEASE)
        self._clear = self.client.register_script(_CLEAR)

    def close(self) -> None:
        self.client.close()

    # -- keys ---------------------------------------------------------------------------------

    def _key(self, deal_id, part: str) -> str:
        return f"{self.prefix}:{{{int(deal_id)}}}:{part}"

    def _ticket_prefix(self, deal_id) -> str:
        return self._key(deal_id, "t:")

    def _info(self, deal_id, ticket_id: str, fields: dict, rank: int | None = None) -> TicketInfo:
        data = {k[len(_DATA) :]: json.loads(v) for k, v in fields.items() if k.startswith(_DATA)}
        hint = (
            None
            if rank is None or fields["state"] != TicketState.WAITING or rank < 0
            else int(rank) + 1
        )
        return TicketInfo(
            id=ticket_id,
            deal_id=int(deal_id),
            who=fields["who"],
            quantity=int(fields["quantity"]),
            state=fields["state"],
            order_key=int(fields["order_key"]),
            joined_at=float(fields["joined_at"]),
            data=data,
            position_hint=hint,
        )

    # -- the interface ------------------------------------------------------------------------

    def join(self, deal_id, who, quantity, *, before_start, now, data=None):
        ticket_id = new_ticket_id()
        key = order_key(before_start=before_start, now=now)
        tp = self._ticket_prefix(deal_id)
        keys = [
            self._key(deal_id, "who"),
            self._key(deal_id, "line"),
            self._key(deal_id, "counts"),
            tp + ticket_id,
        ]
        clean = json.loads(json.dumps(data)) if data else {}
        args = [who, ticket_id, int(quantity), key, repr(float(now)), tp]
        for k, v in clean.items():
            args += [_DATA + k, json.dumps(v, separators=(",", ":"))]
        out = self._join(keys=keys, args=args)
        if out[0] == 1:
            return TicketInfo(
                id=ticket_id,
                deal_id=int(deal_id),
                who=who,
                quantity=int(quantity),
                state=TicketState.WAITING.value,
                order_key=key,
                joined_at=float(now),
                data=clean,
                position_hint=int(out[3]) + 1,
            ), True
        return self._info(deal_id, out[1], _pairs(out[2]), out[3]), False

    def ticket_of(self, deal_id, who):
        out = self._ticket_of(
            keys=[self._key(deal_id, "who"), self._key(deal_id, "line")],
            args=[who, self._ticket_prefix(deal_id)],
        )
        if not out or not out[1]:
            return None
        return self._info(deal_id, out[0], _pairs(out[1]), out[2])

    def get(self, deal_id, ticket_id):
        ticket_id = str(ticket_id)
        if not ticket_id or len(ticket_id) > _MAX_ID:
            return None
        fields, rank = self._get(
            keys=[self._ticket_prefix(deal_id) + ticket_id, self._key(deal_id, "line")],
            args=[ticket_id],
        )
        return self._info(deal_id, ticket_id, _pairs(fields), rank) if fields else None

    def position(self, deal_id, ticket):
        if ticket.state != TicketState.WAITING:
            return None
        rank = self.client.zrank(self._key(deal_id, "line"), ticket.id)
        return None if rank is None else rank + 1

    def first_waiting(self, deal_id, n):
        if n <= 0:
            return []
        out = self._first(
            keys=[self._key(deal_id, "line")], args=[int(n), self._ticket_prefix(deal_id)]
        )
        return [
            self._info(deal_id, tid, _pairs(fields))
            for tid, fields in zip(out[::2], out[1::2], strict=True)
        ]

    def _update_call(self, deal_id, ticket_id, state, data, only_from):
        args = [ticket_id, state, "0" if only_from is None else "1", only_from or ""]
        if data:
            # through JSON once, as the database's JSONField does: keys become strings, and what
            # JSON cannot hold fails here, before anything is changed
            for k, v in json.loads(json.dumps(data)).items():
                args += [_DATA + k, json.dumps(v, separators=(",", ":"))]
        keys = [
            self._ticket_prefix(deal_id) + ticket_id,
            self._key(deal_id, "line"),
            self._key(deal_id, "counts"),
        ]
        return keys, args

    def update(self, deal_id, ticket_id, *, state, data=None, only_from=None):
        ticket_id = str(ticket_id)
        if not ticket_id or len(ticket_id) > _MAX_ID:
            return False
        keys, args = self._update_call(deal_id, ticket_id, state, data, only_from)
        return self._update(keys=keys, args=args) == 1

    def update_many(self, deal_id, changes, *, state, only_from=None):
        calls = [
            self._update_call(deal_id, str(tid), state, data, only_from)
            for tid, data in changes
            if tid and len(str(tid)) <= _MAX_ID
        ]
        if not calls:
            return 0
        self.client.script_load(_UPDATE)  # EVALSHA in a pipeline needs the script loaded
        pipe = self.client.pipeline(transaction=False)
        for keys, args in calls:
            self._update(keys=keys, args=args, client=pipe)
        return sum(1 for r in pipe.execute() if r == 1)

    def beat(self, deal_id, at):
        self.client.set(self._key(deal_id, "beat"), repr(float(at)), ex=24 * 3600)

    def last_beat(self, deal_id):
        value = self.client.get(self._key(deal_id, "beat"))
        return float(value) if value else None

    def counts(self, deal_id):
        out = dict.fromkeys(STATES, 0)
        for state, n in self.client.hgetall(self._key(deal_id, "counts")).items():
            if state in out or int(n):
                out[state] = int(n)
        return out

    def acquire(self, deal_id, owner, seconds):
        ms = max(1, int(seconds * 1000))
        return bool(self.client.set(self._key(deal_id, "lease"), owner, nx=True, px=ms))

    def release(self, deal_id, owner):
        self._release(keys=[self._key(deal_id, "lease")], args=[owner])

    def clear(self, deal_id):
        self.client.unlink(self._key(deal_id, "beat"))
        keys = [self._key(deal_id, p) for p in ("who", "line", "counts", "lease")]
        self._clear(keys=keys, args=[self._ticket_prefix(deal_id)])
