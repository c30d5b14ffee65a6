"""The tier table of the lease tests: one key with every kind of holding, and a rate for reservations."""

from __future__ import annotations

__all__ = ["TABLE"]

# ws: SURCHI-like, one connection and the newest wins; stream: Struct-like, the second is refused;
# idle: LaserSell-like inactivity timeout, short; position: capacity per wallet the request names;
# sub: subscriptions counted per lease (inside a ws lease); credits: a rate to reserve and settle;
# month: a calendar quota whose overage is counted, not refused (Struct's credits).
TABLE = """
[providers.p.endpoints]
"ws" = ["ws"]
"stream" = ["stream"]
"idle" = ["idle"]
"position" = ["wallets"]
"sub" = ["subs"]
"rest" = ["credits"]
"metered" = ["month"]

[providers.p.tiers.t]
ws = { concurrent = 1, when_full = "evict-oldest" }
stream = { concurrent = 1, when_full = "reject" }
idle = { concurrent = 1, idle = "1s" }
wallets = { capacity = 2, per = "wallet" }
subs = { capacity = 3, per = "lease" }
credits = { rate = "100/1h" }
month = { quota = "1000/month", on_exhaust = "allow" }

[keys.k]
provider = "p"
tier = "t"
"""
