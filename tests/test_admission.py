"""Admission: requests beyond those running wait their turn in a bounded line; refused only when the line is
full or the wait would pass the time limit, with a Retry-After from the measured clips/s."""

from __future__ import annotations

import asyncio

import pytest

from api.admission import Admission, ClipRate
from service.refusals import Busy


def _admission(running=1, waiting=2, rate: float | None = None) -> Admission:
    clip_rate = ClipRate()
    if rate:
        clip_rate.record(10, 10 / rate)
    return Admission(running=lambda: running, waiting=lambda: waiting, fallback_retry_after_s=lambda: 10,
                     rate=clip_rate)


def test_turns_are_first_come_first_served_and_bounded():
    async def scenario():
        admission, order = _admission(running=1, waiting=3), []

        async def request(name: str, hold_s: float):
            async with admission.admit(60) as ticket:
                await admission.turn(ticket, deadline=asyncio.get_running_loop().time() + 60)
                order.append(name)
                await asyncio.sleep(hold_s)

        first = asyncio.create_task(request("a", 0.2))
        await asyncio.sleep(0.01)
        others = [asyncio.create_task(request(name, 0.01)) for name in "bcd"]
        await asyncio.sleep(0.01)
        assert admission.waiting() == 3
        with pytest.raises(Busy, match="3 recognitions are waiting"):
            async with admission.admit(60):
                pass
        await asyncio.gather(first, *others)
        assert order == ["a", "b", "c", "d"] and admission.waiting() == 0

    asyncio.run(scenario())


def test_retry_after_comes_from_clips_ahead_and_the_measured_rate():
    async def scenario():
        admission = _admission(running=1, waiting=0, rate=2.0)  # 2 clips/s
        async with admission.admit(60) as running:
            await admission.turn(running, deadline=asyncio.get_running_loop().time() + 60)
            running.clips_left = 9  # the running request has 9 clips to go: a slot frees in 4.5 s
            with pytest.raises(Busy) as refused:
                async with admission.admit(60):
                    pass
            assert refused.value.retry_after_s == 5

    asyncio.run(scenario())


def test_a_wait_past_the_time_limit_is_refused_at_the_door():
    async def scenario():
        admission = _admission(running=1, waiting=10, rate=1.0)  # 1 clip/s
        async with admission.admit(60) as ahead:
            ahead.clips_left = 100  # 100 s of work ahead
            assert admission.estimated_wait_s() == pytest.approx(100)
            with pytest.raises(Busy, match="about 100 s, past the 60 s") as refused:
                async with admission.admit(60):
                    pass
            assert refused.value.retry_after_s == 40  # when the wait drops under the limit
            async with admission.admit(300):  # a longer limit gets in
                pass

    asyncio.run(scenario())


def test_without_a_measured_rate_the_fallback_retry_after_is_sent():
    async def scenario():
        admission = _admission(running=1, waiting=0)
        async with admission.admit(60) as ticket:
            await admission.turn(ticket, deadline=asyncio.get_running_loop().time() + 60)
            with pytest.raises(Busy) as refused:
                async with admission.admit(60):
                    pass
            assert refused.value.retry_after_s == 10

    asyncio.run(scenario())


def test_waiting_past_the_deadline_gives_up_its_place():
    async def scenario():
        admission = _admission(running=1, waiting=5)
        async with admission.admit(60) as holder:
            await admission.turn(holder, deadline=asyncio.get_running_loop().time() + 60)
            async with admission.admit(60) as late:
                with pytest.raises(TimeoutError):
                    await admission.turn(late, deadline=asyncio.get_running_loop().time() + 0.05)
            assert admission.waiting() == 0
        async with admission.admit(60) as next_one:  # the slot was handed back
            await asyncio.wait_for(admission.turn(next_one, deadline=asyncio.get_running_loop().time() + 1), 1)

    asyncio.run(scenario())
