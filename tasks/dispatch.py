"""The Redis dispatch of micro-tasks to annotators.

Redis holds a rebuildable copy of what SQL knows about open work, shaped so
that handing out a slot is one atomic Lua call whose cost does not grow with
the size of a project:

    d:ready:3                present once the state is loaded (gone after a Redis restart); the
                             number is this layout's version, so a state an older release
                             loaded reads as missing and is rebuilt
    d:live                   ZSET of live project ids: best priority first, then those with a
                             deadline, then by rate (see _live_score)
    d:p:{pid}                HASH lease (seconds)
    d:match                  HASH pid -> what matching reads of the project, as JSON: need_qual
                             (0/1), cap, prio (priority), rate (minor units of the ranking
                             currency an hour at the usual pace), kind (config kind), kskill (the
                             platform's skill for that kind, "0" if none), deadline (epoch seconds,
                             0 = none), cats and langs (its content categories and required
                             languages), skills (skill id -> minimum level)
    d:p:{pid}:quals          ZSET of the project's qualification micro-tasks (the first, then one
                             more per retake that needed one), scored by seq
    d:p:{pid}:tried          SET of annotators who submitted a qualification micro-task (pass or fail)
    d:p:{pid}:again          HASH annotator -> epoch their last qualification attempt ended unsubmitted
                             (skipped, expired, released); they may take the test again the
                             cooling-off later
    d:p:{pid}:q              ZSET of open micro-tasks with a free slot, scored
                             STARTED + seq for never-handed-out ones, seq otherwise
                             (started ones first, then age)
    d:p:{pid}:ok             SET of annotators who passed the project's qualification
    d:mt:{mt}                HASH free (slots left), seq, pid, qual (0/1)
    d:mt:{mt}:who            SET of annotators who ever had the micro-task
    d:a:{a}:leases           HASH pid -> micro-task of the annotator's live lease
    d:leases                 ZSET "mt:a" scored by lease expiry (epoch seconds)
    d:blocked                SET of blocked annotators
    d:p:{pid}:took           HASH annotator -> live and submitted micro-tasks (for the share cap)
    d:a:{a}:out|langs        SETs of the annotator's opted-out categories and declared languages
    d:a:{a}:skills           HASH skill id -> level
    d:a:{a}:speed            HASH config kind -> the annotator's pace in basis points of the usual (10000)

and, apart from it (a rebuild keeps them), the scoring inbox:

    s:inbox                  SET of micro-tasks a submit finished, waiting for the scoring job
    s:draining               present while a scoring job drains the inbox (expires if one dies)

Eligibility (profile, skills, the project's filters and its cap) is checked
inside the same script that takes the slot, so no change of profile or
skill can race a hand-out. Without a project, the script orders the projects
open to the annotator as `annotate.scoring.matching.order_key` does (priority,
ready before a qualification test, due soon (deadline within the deadline
window, nearest first), expected hourly rate = rate * 10000 / pace, skill
margin, id), from the values above. The script holds Redis for everyone while
it runs, so it reads little: the annotator's profile, levels and pace once, every
live project's entry of d:match in one call, and per project only what changes
with each hand-out (its share cap, its qualification). It decodes entries in
d:live's order (priority, deadline, rate at the usual pace) and stops at the
first priority with work for the annotator, and within it as soon as no
project still to come could outrank the best one seen (its rate at their
fastest pace is lower), so most calls read a fraction of the live projects.

A qualification test is taken once per attempt: one who skipped it or let it
expire may take it again after a cooling-off, on a qualification micro-task
they never had (the script answers `fresh` when none is left, and the caller
makes one); one who submitted it (passed or failed) never again.

The deadline window and the cooling-off are operators' settings that the
caller gives `Dispatch` (DEADLINE_WINDOW_SECONDS, QUALIFICATION_RETAKE_AFTER_SECONDS)
and `next` passes to the script on every call; Redis keeps the facts they are
applied to (deadlines, when attempts ended), so a new value applies to all at once.

SQL stays the system of record: callers change SQL first and Redis after,
except when taking a slot, where the SQL write that follows is guarded
(`taken < overlap`) and undone here if it fails. This module imports no ORM.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Iterable

import redis as redis_lib

STARTED = 10**12  # added to the score of micro-tasks nobody has had yet
SCAN_LIMIT = 200  # started micro-tasks looked at for one annotator before taking a fresh one
READY = "d:ready:3"  # present once the state is loaded (the number is the layout's version; _NEXT names it too)
DRAINING_SECONDS = 120  # how long the inbox counts as drained by a scoring job that stopped saying so

_NEXT = """
local a = ARGV[1]
local want = ARGV[2]
local now = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local urgent = tonumber(ARGV[5])
local cooling = tonumber(ARGV[6])
local STARTED = 1000000000000
if redis.call('EXISTS', 'd:ready:3') == 0 then return {'rebuild'} end
if redis.call('SISMEMBER', 'd:blocked', a) == 1 then return {'blocked'} end

local held = redis.call('HGETALL', 'd:a:' .. a .. ':leases')
for i = 1, #held, 2 do
  if want == '0' or want == held[i] then
    local exp = redis.call('ZSCORE', 'd:leases', held[i + 1] .. ':' .. a)
    if exp and tonumber(exp) > now then return {'held', held[i], held[i + 1], exp} end
    if exp then return {'expired', held[i], held[i + 1], exp} end
    redis.call('HDEL', 'd:a:' .. a .. ':leases', held[i])
  end
end

local projects
if want ~= '0' then
  if not redis.call('ZSCORE', 'd:live', want) then return {'none'} end
  projects = {want}
else
  projects = redis.call('ZRANGE', 'd:live', 0, -1)
end

-- The annotator's profile, skill levels and pace, read once for every project looked at.
local me = 'd:a:' .. a
local out, langs, levels, speeds = {}, {}, {}, {}
for _, c in ipairs(redis.call('SMEMBERS', me .. ':out')) do out[c] = true end
for _, l in ipairs(redis.call('SMEMBERS', me .. ':langs')) do langs[l] = true end
local kv = redis.call('HGETALL', me .. ':skills')
for i = 1, #kv, 2 do levels[kv[i]] = tonumber(kv[i + 1]) end
if want == '0' then
  kv = redis.call('HGETALL', me .. ':speed')
  for i = 1, #kv, 2 do speeds[kv[i]] = tonumber(kv[i + 1]) end
end

-- A project's entry of d:match; nil for one that has none.
local function settings(json)
  if not json then return nil end
  return cjson.decode(json)
end

-- The annotator's profile lets them see the project (content opted out of, languages).
local function welcome(f)
  for _, c in ipairs(f.cats) do
    if out[c] then return false end
  end
  for _, l in ipairs(f.langs) do
    if not langs[l] then return false end
  end
  return true
end

-- Their skill levels and share of the work let them take regular work. The
-- qualification micro-task skips this: passing it is how the skill is granted.
local function qualified(pid, f)
  for skill, least in pairs(f.skills) do
    if (levels[skill] or 0) < least then return false end
  end
  local cap = f.cap
  if cap > 0 and tonumber(redis.call('HGET', 'd:p:' .. pid .. ':took', a) or '0') >= cap then return false end
  return true
end

-- How far above the project's minimums the annotator is in their weakest skill it uses
-- (annotate.scoring.matching.margin); the platform's skill for its kind counts with minimum 0.
local function margin(f, kskill)
  local low = nil
  local seen_kind = false
  for skill, least in pairs(f.skills) do
    local m = (levels[skill] or 0) - least
    if low == nil or m < low then low = m end
    if skill == kskill then seen_kind = true end
  end
  if kskill and kskill ~= '0' and not seen_kind then
    local m = levels[kskill] or 0
    if low == nil or m < low then low = m end
  end
  return low or 0
end

-- The qualification micro-task this annotator may take now: one they never had, unless they
-- submitted one (pass or fail) or are cooling off after an unsubmitted attempt. 'fresh' when
-- they may retake but have had every one: the caller makes a new one.
local function test_for(pid)
  local p = 'd:p:' .. pid
  if redis.call('SISMEMBER', p .. ':tried', a) == 1 then return nil end
  local ended = redis.call('HGET', p .. ':again', a)
  if ended and tonumber(ended) + cooling > now then return nil end
  for _, mt in ipairs(redis.call('ZRANGE', p .. ':quals', 0, -1)) do
    if redis.call('SISMEMBER', 'd:mt:' .. mt .. ':who', a) == 0 then return mt end
  end
  if ended then return 'fresh' end
  return nil
end

local function take(pid, mt, qual)
  local exp = now + tonumber(redis.call('HGET', 'd:p:' .. pid, 'lease'))
  if qual == 0 then
    redis.call('HINCRBY', 'd:p:' .. pid .. ':took', a, 1)
    local key = 'd:mt:' .. mt
    local free = redis.call('HINCRBY', key, 'free', -1)
    if free <= 0 then
      redis.call('ZREM', 'd:p:' .. pid .. ':q', mt)
    else
      redis.call('ZADD', 'd:p:' .. pid .. ':q', tonumber(redis.call('HGET', key, 'seq')), mt)
    end
  end
  redis.call('SADD', 'd:mt:' .. mt .. ':who', a)
  redis.call('HSET', 'd:a:' .. a .. ':leases', pid, mt)
  redis.call('ZADD', 'd:leases', exp, mt .. ':' .. a)
  return {'new', pid, mt, tostring(exp), tostring(qual)}
end

-- Their qualification test of a project (test_for's answer), taken; 'fresh' tells the caller
-- to make one.
local function test_work(pid, qual)
  if qual == 'fresh' then return {'fresh', pid} end
  return take(pid, qual, 1)
end

-- A project's regular work for them, taken: a started micro-task they never had (so items
-- finish sooner), else the oldest one nobody has had; nil if it has none for them.
local function queued_work(pid)
  local q = 'd:p:' .. pid .. ':q'
  local started = redis.call('ZRANGEBYSCORE', q, '-inf', '(' .. STARTED, 'LIMIT', 0, limit)
  for _, mt in ipairs(started) do
    if redis.call('SISMEMBER', 'd:mt:' .. mt .. ':who', a) == 0 then return take(pid, mt, 0) end
  end
  local fresh = redis.call('ZRANGEBYSCORE', q, STARTED, '+inf', 'LIMIT', 0, 1)
  if fresh[1] then return take(pid, fresh[1], 0) end
  return nil
end

-- One project asked for: its qualification micro-task they have not had comes first.
if want ~= '0' then
  local pid = want
  local f = settings(redis.call('HGET', 'd:match', pid))
  if not f or not welcome(f) then return {'none'} end
  if f.need_qual == 1 and redis.call('SISMEMBER', 'd:p:' .. pid .. ':ok', a) == 0 then
    local qual = test_for(pid)
    if qual then return test_work(pid, qual) end
    return {'none'}
  end
  if not qualified(pid, f) then return {'none'} end
  return queued_work(pid) or {'none'}
end

-- Any project: those open to the annotator, in the order of annotate.scoring.matching.order_key
-- (priority desc, ready before a qualification test, due within `urgent` seconds first and the
-- nearest deadline first, expected rate desc, skill margin desc, id asc). d:live lists projects by
-- priority, the first key, then those with a deadline, then by rate at the usual pace, highest
-- first. The script ranks one priority at a time and stops at the first that has work for them,
-- so projects below it are never read; within a priority it stops as soon as the best ready
-- project seen is due soon, or pays this annotator more than any project still to come could.
local function by_order(x, y)
  if x.test ~= y.test then return x.test < y.test end
  if (x.due > 0) ~= (y.due > 0) then return x.due > 0 end
  if x.due ~= y.due then return x.due < y.due end
  if x.rate ~= y.rate then return x.rate > y.rate end
  if x.margin ~= y.margin then return x.margin > y.margin end
  return x.id < y.id
end

-- A ranked project's work for them, taken: its qualification test or its regular work.
local function work_in(e)
  if e.test == 1 then return test_work(e.pid, e.qual) end
  return queued_work(e.pid)
end

-- The first project in that order with work for them.
local function first_with_work(open)
  table.sort(open, by_order)
  for _, e in ipairs(open) do
    local got = work_in(e)
    if got then return got end
  end
  return nil
end

-- Whether ranked project `e` is ready (not a test) and comes before `best` (nil: none yet).
local function better_ready(e, best)
  return e.test == 0 and (best == nil or by_order(e, best))
end

-- The best ready project among those seen, and those seen without it.
local function best_ready(open)
  local best = nil
  for _, e in ipairs(open) do
    if better_ready(e, best) then best = e end
  end
  return best
end

local function without(open, gone)
  local kept = {}
  for _, e in ipairs(open) do
    if e ~= gone then table.insert(kept, e) end
  end
  return kept
end

-- The most their pace multiplies a project's usual rate by is 10000 / fastest.
local fastest = 10000
for _, speed in pairs(speeds) do
  if speed > 0 and speed < fastest then fastest = speed end
end

local all = {}
for first = 1, #projects, 1000 do  -- unpack() has a limit on how many values it spreads
  local part = redis.call('HMGET', 'd:match', unpack(projects, first, math.min(first + 999, #projects)))
  for i = 1, #part do all[first + i - 1] = part[i] end
end
local open, prio, best = {}, nil, nil
for i, pid in ipairs(projects) do
  local f = settings(all[i])
  if f and f.prio ~= prio then
    if #open > 0 then
      local got = first_with_work(open)
      if got then return got end
      open, best = {}, nil
    end
    prio = f.prio
  end
  if f and f.deadline == 0 then
    -- The rest of this priority has no deadline and comes by rate, highest first: none of it
    -- can pay this annotator more than `most`. A ready project seen that is due soon or pays
    -- more comes before all of it.
    local most = math.floor(f.rate * 10000 / fastest)
    while best and (best.due > 0 or best.rate > most) do
      local got = work_in(best)
      if got then return got end
      open = without(open, best)
      best = best_ready(open)
    end
  end
  local entry = nil
  if not f or not welcome(f) then
    -- the annotator's profile keeps them out
  elseif f.need_qual == 1 and redis.call('SISMEMBER', 'd:p:' .. pid .. ':ok', a) == 0 then
    local qual = test_for(pid)
    if qual then entry = {pid = pid, test = 1, qual = qual, margin = margin(f, f.kskill)} end
  elseif qualified(pid, f) then
    entry = {pid = pid, test = 0, margin = margin(f, f.kskill)}
  end
  if entry then
    local speed = speeds[f.kind] or 10000
    if speed <= 0 then speed = 10000 end
    entry.id = tonumber(pid)
    entry.rate = math.floor(f.rate * 10000 / speed)
    entry.due = 0
    if f.deadline > 0 and f.deadline - now <= urgent then entry.due = f.deadline end
    table.insert(open, entry)
    if better_ready(entry, best) then best = entry end
  end
end
if #open > 0 then
  local got = first_with_work(open)
  if got then return got end
end
return {'none'}
"""

# Projects' hourly rates at the usual pace (ARGV: pid, rate, pid, rate, ...), in their d:match entries.
_SET_RATES = """
local SPAN = 1099511627776  -- RATE_SPAN
for i = 1, #ARGV, 2 do
  local entry = redis.call('HGET', 'd:match', ARGV[i])
  if entry then
    local settings = cjson.decode(entry)
    settings.rate = tonumber(ARGV[i + 1])
    redis.call('HSET', 'd:match', ARGV[i], cjson.encode(settings))
    if redis.call('ZSCORE', 'd:live', ARGV[i]) then  -- as _live_score
      local score = -(settings.prio * 2 * SPAN) - math.min(math.max(settings.rate, 0), SPAN - 1)
      if settings.deadline > 0 then score = score - SPAN end
      redis.call('ZADD', 'd:live', score, ARGV[i])
    end
  end
end
return 1
"""

# Give a slot back after SQL has ended the lease (expired, skipped, released).
_RELEASE = """
local mt, a, pid = ARGV[1], ARGV[2], ARGV[3]
if redis.call('ZREM', 'd:leases', mt .. ':' .. a) == 0 then return 0 end
if redis.call('HGET', 'd:a:' .. a .. ':leases', pid) == mt then redis.call('HDEL', 'd:a:' .. a .. ':leases', pid) end
local key = 'd:mt:' .. mt
if redis.call('HGET', key, 'qual') == '1' then
  -- An unsubmitted test: it may be taken again, on another micro-task, after the cooling-off
  -- from now (ARGV[4]), the moment the attempt ended.
  redis.call('HSET', 'd:p:' .. pid .. ':again', a, ARGV[4])
  return 1
end
if tonumber(redis.call('HINCRBY', 'd:p:' .. pid .. ':took', a, -1)) < 0 then
  redis.call('HSET', 'd:p:' .. pid .. ':took', a, 0)
end
local free = redis.call('HINCRBY', key, 'free', 1)
if free > 0 and redis.call('EXISTS', 'd:p:' .. pid) == 1 then
  redis.call('ZADD', 'd:p:' .. pid .. ':q', tonumber(redis.call('HGET', key, 'seq')), mt)
end
return 1
"""

# A submit ends the lease; the slot stays taken. A submitted qualification test is never
# taken again (SQL refusing a take of one means the same: the annotator had it already).
# The submit that finished a micro-task (ARGV[4] = 1) also puts it in the scoring inbox,
# and learns (2) whether it must queue the scoring job, as none drains the inbox.
_FINISH = """
local mt, a, pid = ARGV[1], ARGV[2], ARGV[3]
redis.call('ZREM', 'd:leases', mt .. ':' .. a)
if redis.call('HGET', 'd:a:' .. a .. ':leases', pid) == mt then redis.call('HDEL', 'd:a:' .. a .. ':leases', pid) end
if redis.call('HGET', 'd:mt:' .. mt, 'qual') == '1' then redis.call('SADD', 'd:p:' .. pid .. ':tried', a) end
if ARGV[4] == '1' then
  redis.call('SADD', 's:inbox', mt)
  if redis.call('SET', 's:draining', '1', 'NX', 'EX', ARGV[5]) then return 2 end
end
return 1
"""

_TAKE_FINISHED = """
local taken = redis.call('SPOP', 's:inbox', ARGV[1])
if #taken > 0 then redis.call('SET', 's:draining', '1', 'EX', ARGV[2]) end
return taken
"""

# The inbox is empty: the drain ends. Something came meanwhile: it goes on (1).
_END_DRAIN = """
if redis.call('SCARD', 's:inbox') > 0 then
  redis.call('SET', 's:draining', '1', 'EX', ARGV[1])
  return 1
end
redis.call('DEL', 's:draining')
return 0
"""

# A late submit takes its slot back if nobody else has taken it meanwhile.
_RETAKE = """
local mt, a, pid = ARGV[1], ARGV[2], ARGV[3]
local key = 'd:mt:' .. mt
if redis.call('HGET', key, 'qual') == '1' then return 1 end
local free = tonumber(redis.call('HGET', key, 'free') or '0')
if free <= 0 then return 0 end
free = redis.call('HINCRBY', key, 'free', -1)
if free <= 0 then redis.call('ZREM', 'd:p:' .. pid .. ':q', mt) end
redis.call('SADD', key .. ':who', a)
redis.call('HINCRBY', 'd:p:' .. pid .. ':took', a, 1)
return 1
"""

_EXTEND = """
if redis.call('ZSCORE', 'd:leases', ARGV[1]) then
  redis.call('ZADD', 'd:leases', 'XX', ARGV[2], ARGV[1])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Offer:
    """What the NEXT script answered."""

    kind: str  # new | held | expired | none | blocked | rebuild | fresh (make a qualification micro-task)
    project_id: int | None = None
    micro_task_id: int | None = None
    expires_at: float | None = None
    qualification: bool = False  # a new lease on a qualification micro-task


@dataclass(frozen=True)
class ProjectState:
    id: int
    priority: int
    lease_seconds: int
    needs_qualification: bool
    qualification_micro_task: int | None = None
    qualified: tuple[int, ...] = ()
    categories: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    skills: tuple[tuple[int, int], ...] = ()  # (skill id, minimum level)
    cap: int = 0  # most micro-tasks one annotator may hold or have submitted; 0 = no cap
    took: tuple[tuple[int, int], ...] = ()  # (annotator, micro-tasks held or submitted)
    config_kind: str = ""
    rate: int = 0  # minor units an hour at the usual pace (annotate.scoring.matching.project_rate)
    kind_skill: int = 0  # the platform's skill for config_kind, 0 if there is none
    deadline: int = 0  # epoch seconds, 0 = none
    tried: tuple[int, ...] = ()  # annotators who submitted a qualification micro-task
    ended: tuple[tuple[int, float], ...] = ()  # (annotator, epoch their last unsubmitted attempt ended)


@dataclass(frozen=True)
class AnnotatorState:
    id: int
    languages: tuple[str, ...] = ()
    opted_out: tuple[str, ...] = ()
    skills: tuple[tuple[int, int], ...] = ()  # (skill id, level)
    speeds: tuple[tuple[str, int], ...] = ()  # (config kind, pace in basis points; 10000 is the usual)


@dataclass(frozen=True)
class MicroTaskState:
    id: int
    project_id: int
    seq: int
    free: int  # overlap minus live and submitted assignments
    is_qualification: bool = False
    had_by: tuple[int, ...] = ()  # every annotator who ever had it


@dataclass(frozen=True)
class LeaseState:
    micro_task_id: int
    annotator_id: int
    project_id: int
    expires_at: float


@dataclass
class QueueStats:
    waiting: int = 0
    started: int = 0
    leases: int = 0
    free_slots: int = 0
    extra: dict = field(default_factory=dict)


def _match_entry(project: ProjectState) -> str:
    """What the script reads of a project to match it, as its d:match entry."""
    return json.dumps({
        "need_qual": int(project.needs_qualification), "cap": project.cap, "prio": project.priority,
        "rate": project.rate, "kind": project.config_kind, "kskill": str(project.kind_skill),
        "deadline": project.deadline, "cats": list(project.categories), "langs": list(project.languages),
        "skills": {str(skill): least for skill, least in project.skills}}, separators=(",", ":"), sort_keys=True)


RATE_SPAN = 2**40  # rates at or above it rank alike in d:live; priorities (-100 to 100) times it stay exact


def _live_score(priority: int, deadline: int, rate: int) -> float:
    """ZRANGE is ascending: higher priority first, then projects with a deadline, then the
    higher rate at the usual pace (_NEXT's early stop relies on this order; _SET_RATES
    computes it too)."""
    return -(priority * 2 * RATE_SPAN) - (RATE_SPAN if deadline > 0 else 0) - min(max(rate, 0), RATE_SPAN - 1)


class Dispatch:
    """The dispatch state in one Redis database, handed out with the operators' deadline window
    and qualification retake cooling-off (seconds)."""

    def __init__(self, client: redis_lib.Redis, *, deadline_window: int, retake_after: int):
        self.r = client
        self.deadline_window = deadline_window
        self.retake_after = retake_after
        self._next = client.register_script(_NEXT)
        self._release = client.register_script(_RELEASE)
        self._finish = client.register_script(_FINISH)
        self._retake = client.register_script(_RETAKE)
        self._extend = client.register_script(_EXTEND)
        self._take_finished = client.register_script(_TAKE_FINISHED)
        self._end_drain = client.register_script(_END_DRAIN)
        self._set_rates = client.register_script(_SET_RATES)

    # --- the hot path -------------------------------------------------------

    def next(self, annotator_id: int, project_id: int | None, now: float | None = None,
             scan_limit: int = SCAN_LIMIT) -> Offer:
        now = time.time() if now is None else now
        answer = self._next(args=[annotator_id, project_id or 0, repr(now), scan_limit, self.deadline_window,
                                  self.retake_after])
        kind = answer[0].decode()
        if kind in ("none", "blocked", "rebuild"):
            return Offer(kind)
        if kind == "fresh":
            return Offer(kind, int(answer[1]))
        return Offer(kind, int(answer[1]), int(answer[2]), float(answer[3]),
                     qualification=len(answer) > 4 and answer[4] == b"1")

    def release(self, micro_task_id: int, annotator_id: int, project_id: int, now: float | None = None) -> bool:
        """Give a slot back; an unsubmitted qualification test starts its cooling-off."""
        ended = time.time() if now is None else now
        return bool(self._release(args=[micro_task_id, annotator_id, project_id, repr(ended)]))

    def finish(self, micro_task_id: int, annotator_id: int, project_id: int, *, done: bool = False) -> bool:
        """End a submitted lease. `done`: the submit finished the micro-task, which goes in the
        scoring inbox; True means no scoring job is draining it, so the caller queues one."""
        return self._finish(args=[micro_task_id, annotator_id, project_id, int(done), DRAINING_SECONDS]) == 2

    def retake(self, micro_task_id: int, annotator_id: int, project_id: int) -> bool:
        return bool(self._retake(args=[micro_task_id, annotator_id, project_id]))

    def extend(self, micro_task_id: int, annotator_id: int, expires_at: float) -> bool:
        return bool(self._extend(args=[f"{micro_task_id}:{annotator_id}", repr(expires_at)]))

    def expired(self, now: float | None = None, limit: int = 100) -> list[tuple[int, int]]:
        """(micro-task, annotator) pairs whose lease has run out, oldest first."""
        now = time.time() if now is None else now
        pairs = self.r.zrangebyscore("d:leases", "-inf", now, start=0, num=limit)
        return [tuple(int(x) for x in pair.decode().split(":")) for pair in pairs]  # type: ignore[misc]

    # --- the scoring inbox ------------------------------------------------------

    def add_finished(self, micro_task_ids: Iterable[int]) -> bool:
        """Put micro-tasks in the scoring inbox (a rebuild finds them unscored in SQL);
        True if the caller must queue the scoring job."""
        ids = list(micro_task_ids)
        if not ids:
            return False
        self.r.sadd("s:inbox", *ids)
        return bool(self.r.set("s:draining", "1", nx=True, ex=DRAINING_SECONDS))

    def take_finished(self, count: int) -> list[int]:
        """Up to `count` micro-tasks out of the scoring inbox, for the job draining it."""
        return [int(x) for x in self._take_finished(args=[count, DRAINING_SECONDS])]

    def finished_waiting(self) -> int:
        return int(self.r.scard("s:inbox"))

    def end_drain(self) -> bool:
        """The draining job found the inbox empty. False: it stops; True: more came, go on."""
        return bool(self._end_drain(args=[DRAINING_SECONDS]))

    # --- changes that follow SQL ----------------------------------------------

    def is_ready(self) -> bool:
        return bool(self.r.exists(READY))

    def set_project(self, project: ProjectState) -> None:
        """A live project, or its settings changed."""
        key = f"d:p:{project.id}"
        with self.r.pipeline() as pipe:
            pipe.hset(key, "lease", project.lease_seconds)
            pipe.hset("d:match", project.id, _match_entry(project))
            if project.qualified:
                pipe.sadd(f"{key}:ok", *project.qualified)
            if project.tried:
                pipe.sadd(f"{key}:tried", *project.tried)
            if project.ended:
                pipe.hset(f"{key}:again", mapping={a: repr(t) for a, t in project.ended})
            if project.took:
                pipe.hset(f"{key}:took", mapping=dict(project.took))
            pipe.zadd("d:live", {project.id: _live_score(project.priority, project.deadline, project.rate)})
            pipe.execute()

    def set_rates(self, rates: dict[int, int]) -> None:
        """Projects' hourly rates at the usual pace, refreshed after scoring."""
        if rates:
            self._set_rates(args=[value for pair in rates.items() for value in pair])

    def set_speeds(self, speeds: dict[int, tuple[tuple[str, int], ...]]) -> None:
        """Annotators' pace per config kind, refreshed when their work is scored."""
        with self.r.pipeline() as pipe:
            for annotator_id, kinds in speeds.items():
                pipe.delete(f"d:a:{annotator_id}:speed")
                if kinds:
                    pipe.hset(f"d:a:{annotator_id}:speed", mapping=dict(kinds))
            pipe.execute()

    def stop_project(self, project_id: int) -> None:
        """Paused or done: no new leases; live ones run out or are submitted."""
        self.r.zrem("d:live", project_id)

    def add_micro_tasks(self, micro_tasks: Iterable[MicroTaskState]) -> None:
        with self.r.pipeline(transaction=False) as pipe:
            for count, mt in enumerate(micro_tasks, start=1):
                self._load_micro_task(pipe, mt)
                if count % 5000 == 0:
                    pipe.execute()
            pipe.execute()

    def _load_micro_task(self, pipe, mt: MicroTaskState) -> None:
        key = f"d:mt:{mt.id}"
        pipe.delete(key, f"{key}:who")
        pipe.hset(key, mapping={"free": mt.free, "seq": mt.seq, "pid": mt.project_id,
                                "qual": int(mt.is_qualification)})
        if mt.had_by:
            pipe.sadd(f"{key}:who", *mt.had_by)
        if mt.is_qualification:
            pipe.zadd(f"d:p:{mt.project_id}:quals", {mt.id: mt.seq})
        else:
            if mt.free > 0:
                score = mt.seq if mt.had_by else STARTED + mt.seq
                pipe.zadd(f"d:p:{mt.project_id}:q", {mt.id: score})
            else:
                pipe.zrem(f"d:p:{mt.project_id}:q", mt.id)

    def sync_micro_task(self, mt: MicroTaskState, leases: Iterable[LeaseState] = ()) -> None:
        """Make one micro-task's state match SQL again (after a failed SQL guard)."""
        with self.r.pipeline() as pipe:
            self._load_micro_task(pipe, mt)
            for lease in leases:
                self._load_lease(pipe, lease)
            pipe.execute()

    def _load_lease(self, pipe, lease: LeaseState) -> None:
        pipe.hset(f"d:a:{lease.annotator_id}:leases", lease.project_id, lease.micro_task_id)
        pipe.zadd("d:leases", {f"{lease.micro_task_id}:{lease.annotator_id}": lease.expires_at})

    def set_annotator(self, annotator: AnnotatorState) -> None:
        """What matching knows of an annotator: their profile and skill levels."""
        self.set_annotators([annotator])

    def set_annotators(self, annotators: Iterable[AnnotatorState]) -> None:
        """`set_annotator` for many, in pipelines of a few thousand (one round trip each)."""
        with self.r.pipeline() as pipe:
            for count, annotator in enumerate(annotators, start=1):
                key = f"d:a:{annotator.id}"
                pipe.delete(f"{key}:out", f"{key}:langs", f"{key}:skills", f"{key}:speed")
                if annotator.speeds:
                    pipe.hset(f"{key}:speed", mapping=dict(annotator.speeds))
                if annotator.opted_out:
                    pipe.sadd(f"{key}:out", *annotator.opted_out)
                if annotator.languages:
                    pipe.sadd(f"{key}:langs", *annotator.languages)
                if annotator.skills:
                    pipe.hset(f"{key}:skills", mapping=dict(annotator.skills))
                if count % 2000 == 0:
                    pipe.execute()
            pipe.execute()

    def qualify(self, project_id: int, annotator_id: int) -> None:
        self.r.sadd(f"d:p:{project_id}:ok", annotator_id)

    def set_retake(self, project_id: int, annotator_id: int, *, tried: bool, ended: float | None) -> None:
        """What SQL says of one annotator's qualification attempts on a project: submitted one,
        and when their last unsubmitted one ended."""
        with self.r.pipeline() as pipe:
            if tried:
                pipe.sadd(f"d:p:{project_id}:tried", annotator_id)
            else:
                pipe.srem(f"d:p:{project_id}:tried", annotator_id)
            if ended is None:
                pipe.hdel(f"d:p:{project_id}:again", annotator_id)
            else:
                pipe.hset(f"d:p:{project_id}:again", annotator_id, repr(ended))
            pipe.execute()

    def block(self, annotator_id: int) -> None:
        self.r.sadd("d:blocked", annotator_id)

    def unblock(self, annotator_id: int) -> None:
        self.r.srem("d:blocked", annotator_id)

    # --- rebuilding from SQL ----------------------------------------------------

    def lock_rebuild(self, seconds: int = 120) -> bool:
        return bool(self.r.set("d:rebuilding", "1", nx=True, ex=seconds))

    def unlock_rebuild(self) -> None:
        self.r.delete("d:rebuilding")

    def clear(self) -> None:
        """Remove every dispatch key (only the rebuild does this)."""
        self.r.delete(READY)
        cursor = 0
        while True:
            cursor, keys = self.r.scan(cursor, match="d:*", count=5000)
            keys = [k for k in keys if k != b"d:rebuilding"]
            if keys:
                self.r.delete(*keys)
            if cursor == 0:
                break

    def load(self, projects: Iterable[ProjectState], micro_tasks: Iterable[MicroTaskState],
             leases: Iterable[LeaseState], blocked: Iterable[int], annotators: Iterable[AnnotatorState] = ()) -> None:
        """Load a whole state read from SQL, then mark it ready."""
        self.set_annotators(annotators)
        for project in projects:
            self.set_project(project)
        self.add_micro_tasks(micro_tasks)
        with self.r.pipeline(transaction=False) as pipe:
            for lease in leases:
                self._load_lease(pipe, lease)
            blocked = list(blocked)
            if blocked:
                pipe.sadd("d:blocked", *blocked)
            pipe.set(READY, int(time.time()))
            pipe.execute()

    def mark_ready(self) -> None:
        self.r.set(READY, int(time.time()))

    # --- what operators see ------------------------------------------------------

    def stats(self, project_id: int) -> QueueStats:
        key = f"d:p:{project_id}:q"
        waiting = self.r.zcard(key)
        fresh = self.r.zcount(key, STARTED, "+inf")
        return QueueStats(waiting=waiting, started=waiting - fresh,
                          extra={"live": self.r.zscore("d:live", project_id) is not None})
