import GateRedis

/// The sale's Lua scripts: every change to a sale's stock happens inside one of them, so Redis
/// runs each atomically and no interleaving of nodes can oversell.
///
/// Time is Redis's own (`TIME`), so reservation expiry means the same on every node whatever
/// their clocks say. Keys come in the order of `SaleKeys.all`: meta, holders, orders, expiry.
enum SaleScripts {
    /// Shared prelude: `now` in milliseconds from Redis's clock.
    private static let now = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        """

    /// Returns an expired reservation to stock (the caller has checked it is `reserved`).
    private static let expire = """
        local function expire(id, o)
          o.status = 'expired'
          redis.call('HSET', KEYS[3], id, cjson.encode(o))
          redis.call('ZREM', KEYS[4], id)
          if redis.call('HGET', KEYS[2], o.account) == id then
            redis.call('HDEL', KEYS[2], o.account)
          end
          redis.call('HINCRBY', KEYS[1], 'sold', -1)
        end
        """

    /// ARGV: total, pay timeout (ms), force ("1" or "0").
    /// → {1} created; {-1, sold} refused because tickets are sold and force is off.
    /// The order counter survives a forced re-init, so order ids are never reused.
    static let initialize = RedisScript("""
        \(now)
        local sold = tonumber(redis.call('HGET', KEYS[1], 'sold') or '0')
        local paid = tonumber(redis.call('HGET', KEYS[1], 'paid') or '0')
        if (sold > 0 or paid > 0) and ARGV[3] ~= '1' then
          return {-1, sold}
        end
        local seq = redis.call('HGET', KEYS[1], 'seq') or '0'
        redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
        redis.call('HSET', KEYS[1], 'total', ARGV[1], 'sold', 0, 'paid', 0,
          'pay_timeout_ms', ARGV[2], 'seq', seq, 'created_ms', now)
        return {1}
        """)

    /// ARGV: account, node name.
    /// → {1, sold, total, order, expires}; {-1, sold, total} sold out; {-2, sold, total, order}
    /// the account already holds `order`; {-3} no such sale.
    static let buy = RedisScript("""
        local meta = redis.call('HMGET', KEYS[1], 'total', 'sold', 'pay_timeout_ms')
        if not meta[1] then
          return {-3}
        end
        local total = tonumber(meta[1])
        local sold = tonumber(meta[2])
        local held = redis.call('HGET', KEYS[2], ARGV[1])
        if held then
          return {-2, sold, total, held}
        end
        if sold >= total then
          return {-1, sold, total}
        end
        \(now)
        local id = tostring(redis.call('HINCRBY', KEYS[1], 'seq', 1))
        local expires = now + tonumber(meta[3])
        redis.call('HSET', KEYS[3], id, cjson.encode({account = ARGV[1], node = ARGV[2],
          created = now, expires = expires, status = 'reserved'}))
        redis.call('HSET', KEYS[2], ARGV[1], id)
        redis.call('ZADD', KEYS[4], expires, id)
        redis.call('HINCRBY', KEYS[1], 'sold', 1)
        return {1, sold + 1, total, id, expires}
        """)

    /// ARGV: order id, account.
    /// → {1} paid now; {2} was already paid; {-4} no such order; {-6} expired (returned to
    /// stock here if the reaper had not yet); {-7} the order belongs to another account.
    static let pay = RedisScript("""
        \(expire)
        local raw = redis.call('HGET', KEYS[3], ARGV[1])
        if not raw then
          return {-4}
        end
        local o = cjson.decode(raw)
        if o.account ~= ARGV[2] then
          return {-7}
        end
        if o.status == 'paid' then
          return {2}
        end
        if o.status == 'expired' then
          return {-6}
        end
        \(now)
        if o.expires <= now then
          expire(ARGV[1], o)
          return {-6}
        end
        o.status = 'paid'
        o.paid = now
        redis.call('HSET', KEYS[3], ARGV[1], cjson.encode(o))
        redis.call('ZREM', KEYS[4], ARGV[1])
        redis.call('HINCRBY', KEYS[1], 'paid', 1)
        return {1}
        """)

    /// ARGV: the most reservations to return in one run.
    /// → how many expired reservations went back to stock. Idempotent: an order is returned
    /// only while it is `reserved`, so reapers on every node may run at once.
    static let reap = RedisScript("""
        \(expire)
        \(now)
        local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
        local returned = 0
        for _, id in ipairs(ids) do
          local raw = redis.call('HGET', KEYS[3], id)
          if raw then
            local o = cjson.decode(raw)
            if o.status == 'reserved' then
              expire(id, o)
              returned = returned + 1
            else
              redis.call('ZREM', KEYS[4], id)
            end
          else
            redis.call('ZREM', KEYS[4], id)
          end
        end
        return returned
        """)

    /// Every script, for loading at start-up.
    static let all = [initialize, buy, pay, reap]
}
