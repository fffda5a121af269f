from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plumvoice_async import Call, CallEvent, CallType, DetailedCall, Period
from plumvoice_async.testing._dataset import MAX_SIZE, CallDataset

SESSION_ID = re.compile(r"[0-9]{6};[0-9]{3};[0-9]{10}")
EVERYTHING = (0, 10**12)


def all_calls(dataset: CallDataset) -> list[Call]:
    return dataset.page(*EVERYTHING, limit=len(dataset))


def brute_force(calls: list[Call], start: int, end: int, number: str | None) -> list[Call]:
    chosen = [
        call
        for call in calls
        if start <= call.start.timestamp() <= end and (number is None or call.dest == number)
    ]
    return sorted(chosen, key=lambda call: (call.start, call.session_id))


def test_same_seed_same_calls_and_different_seeds_differ():
    first, again, other = CallDataset(seed=7), CallDataset(seed=7), CallDataset(seed=8)
    assert all_calls(first) == all_calls(again)
    assert first.detailed_page(*EVERYTHING, limit=50) == again.detailed_page(*EVERYTHING, limit=50)
    first_ids = {call.session_id for call in all_calls(first)}
    other_ids = {call.session_id for call in all_calls(other)}
    assert first_ids.isdisjoint(other_ids)


def test_calls_follow_the_documented_shape_and_the_documented_order():
    dataset = CallDataset(size=3000, spacing=7, numbers=("6177123000", "6177123001"))
    calls = all_calls(dataset)
    assert len(calls) == 3000
    assert all(a.start < b.start for a, b in itertools.pairwise(calls))
    assert len({call.session_id for call in calls}) == 3000
    assert all(SESSION_ID.fullmatch(call.session_id) for call in calls)
    assert [call.dest for call in calls[:4]] == ["6177123000", "6177123001"] * 2
    assert all(call.start.tzinfo is UTC and call.end >= call.start for call in calls)
    assert all(call.log is True for call in calls)
    types = [call.type for call in calls]
    assert types.count(CallType.INBOUND) > types.count(CallType.OUTBOUND) > 0
    assert types.count(CallType.TRANSFER) > 0
    # plum-api.md 2.2: an outbound call's source is the literal "Outbound".
    assert all((call.src == "Outbound") == (call.type is CallType.OUTBOUND) for call in calls)
    assert all(call.src.isdigit() for call in calls if call.type is not CallType.OUTBOUND)


SMALL_START = 1_000_000
SMALL = CallDataset(
    seed=3,
    size=300,
    start=SMALL_START,
    spacing=6,
    numbers=("6170000001", "6170000002", "6170000003"),
)
SMALL_CALLS = all_calls(SMALL)


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(SMALL_START - 10, SMALL_START + 1900),
    length=st.integers(-5, 1900),
    number=st.sampled_from([None, "6170000001", "6170000002", "6170000003", "5550000000"]),
    offset=st.integers(0, 300),
    limit=st.integers(0, 300),
)
def test_counts_and_pages_match_a_brute_force(start, length, number, offset, limit):
    expected = brute_force(SMALL_CALLS, start, start + length, number)
    assert SMALL.count(start, start + length, number) == len(expected)
    got = SMALL.page(start, start + length, number, offset=offset, limit=limit)
    assert got == expected[offset : offset + limit]


def test_a_page_at_the_end_of_five_million_calls_builds_only_that_page():
    dataset = CallDataset(size=5_000_000, spacing=3)
    assert dataset.count(*EVERYTHING) == 5_000_000
    # 5,000,000 = 3 * 1,666,666 + 2: the first two numbers get one call more.
    assert [dataset.count(*EVERYTHING, number) for number in dataset.numbers] == [
        1_666_667,
        1_666_667,
        1_666_666,
    ]
    assert dataset.materialised == 0

    last = dataset.page(*EVERYTHING, offset=4_999_990, limit=1000)
    assert len(last) == 10
    assert dataset.materialised == 10
    assert last[-1].start > datetime(2023, 11, 10, tzinfo=UTC) + timedelta(days=170)

    numbered = dataset.detailed_page(
        *EVERYTHING, number=dataset.numbers[2], offset=1_666_660, limit=100
    )
    assert [call.dest for call in numbered] == [dataset.numbers[2]] * 6
    assert dataset.materialised == 16

    start = int(last[0].start.timestamp())
    assert dataset.page(start, start + 3 * 5 - 1, offset=0, limit=10) == last[:5]
    assert dataset.get(last[-1].session_id) == last[-1]
    assert dataset.materialised == 22


def test_the_overlay_keeps_a_page_cheap():
    dataset = CallDataset(size=5_000_000, spacing=3)
    tail = dataset.page(*EVERYTHING, offset=4_999_000, limit=4)
    twin = attrs.evolve(tail[1], session_id="999999;999;1")
    dataset.delete_call(tail[0].session_id)
    dataset.insert_call(twin)
    built = dataset.materialised
    page = dataset.page(*EVERYTHING, offset=4_999_000, limit=4)
    assert page == [*sorted([tail[1], twin], key=lambda call: call.session_id), *tail[2:]]
    assert dataset.materialised - built == 3  # the twin was built by the test, not the page
    assert dataset.count(*EVERYTHING) == 5_000_000


def test_ties_on_start_are_ordered_by_session_id():
    dataset = CallDataset(size=10, spacing=1, start=100)
    base = dataset.page(*EVERYTHING, limit=10)
    before = attrs.evolve(base[4], session_id="000000;000;0")
    after = attrs.evolve(base[4], session_id="999999;999;9")
    dataset.insert_calls([after, before])
    ids = [call.session_id for call in dataset.page(*EVERYTHING, limit=12)]
    assert ids[4:7] == ["000000;000;0", base[4].session_id, "999999;999;9"]


@st.composite
def mutation_scripts(draw):
    return draw(
        st.lists(
            st.one_of(
                st.tuples(
                    st.just("insert"),
                    st.integers(-3, 70),  # start second: before, inside and after the base calls
                    st.sampled_from(["6170000001", "6170000001", "6170000002", "5550000000"]),
                    st.integers(0, 40),  # session id: small, so clashes happen
                ),
                st.tuples(st.just("delete"), st.integers(0, 10**6)),
                st.tuples(
                    st.just("pages"),
                    st.integers(-3, 70),
                    st.integers(-3, 70),
                    st.sampled_from([None, "6170000001", "6170000001", "5550000000"]),
                    st.integers(1, 4),
                ),
            ),
            max_size=40,
        )
    )


@settings(max_examples=80, deadline=None)
@given(script=mutation_scripts())
def test_inserts_and_deletes_match_a_list_model(script):
    origin = 1_000
    dataset = CallDataset(
        seed=1, size=20, start=origin, spacing=3, numbers=("6170000001", "6170000002")
    )
    model = all_calls(dataset)
    for step in script:
        if step[0] == "insert":
            _, second, dest, code = step
            moment = datetime.fromtimestamp(origin + second, UTC)
            call = Call(
                dest=dest,
                src="6175550000",
                start=moment,
                end=moment + timedelta(seconds=9),
                session_id=f"{code:06d};000;{origin}",
                type=CallType.INBOUND,
                log=True,
            )
            if any(live.session_id == call.session_id for live in model):
                with pytest.raises(ValueError, match="already served"):
                    dataset.insert_call(call)
            else:
                dataset.insert_call(call)
                model.append(call)
        elif step[0] == "delete":
            if not model:
                continue
            victim = model.pop(step[1] % len(model))
            dataset.delete_call(victim.session_id)
            with pytest.raises(KeyError):
                dataset.delete_call(victim.session_id)
            assert dataset.get(victim.session_id) is None
        else:
            _, start, end, number, limit = step
            expected = brute_force(model, origin + start, origin + end, number)
            assert dataset.count(origin + start, origin + end, number) == len(expected)
            for offset in range(len(expected) + 2):  # every page boundary, and one past the end
                got = dataset.page(origin + start, origin + end, number, offset=offset, limit=limit)
                assert got == expected[offset : offset + limit]
        assert len(dataset) == len(model)
    assert all_calls(dataset) == brute_force(model, *EVERYTHING, None)


def test_a_deleted_base_call_can_come_back_and_details_follow_the_call():
    dataset = CallDataset(size=5)
    call = all_calls(dataset)[2]
    detail = dataset.details(call.session_id)
    assert detail is not None
    assert [event.event_class for event in detail[:2]] == ["info", "prompt"]
    assert all(isinstance(value, str) for event in detail for value in event.data.values())
    assert all({"module_type", "result_variable"} <= event.data.keys() for event in detail)

    dataset.delete_call(call.session_id)
    assert dataset.details(call.session_id) is None
    own_log = [
        CallEvent("hello", {"module_type": "x", "result_variable": "y"}, "debug", call.start)
    ]
    dataset.insert_call(DetailedCall(**attrs.asdict(call, recurse=False), detail=own_log))
    assert dataset.get(call.session_id) == call
    assert type(dataset.get(call.session_id)) is Call
    assert dataset.details(call.session_id) == own_log
    assert dataset.detailed_page(*EVERYTHING, offset=2, limit=1)[0].detail == own_log


def test_unknown_and_forged_session_ids_are_not_found():
    dataset = CallDataset(size=5)
    real = all_calls(dataset)[0].session_id
    forged = real[:-1] + str((int(real[-1]) + 1) % 10)
    for session_id in (forged, "000000;000;1", "1;2;3", "nonsense", ""):
        assert dataset.get(session_id) is None
        assert dataset.details(session_id) is None
        with pytest.raises(KeyError):
            dataset.delete_call(session_id)


def test_bad_configuration_and_naive_calls_are_refused():
    with pytest.raises(ValueError, match="size"):
        CallDataset(size=MAX_SIZE + 1)
    with pytest.raises(ValueError, match="spacing"):
        CallDataset(spacing=0)
    with pytest.raises(ValueError, match="numbers"):
        CallDataset(numbers=("1", "1"))
    call = all_calls(CallDataset(size=1))[0]
    naive = attrs.evolve(call, session_id="1;1;1", start=call.start.replace(tzinfo=None))
    with pytest.raises(ValueError, match="timezone-aware"):
        CallDataset(size=1).insert_call(naive)


def eastern_midnight_utc(day: date, hours: int) -> datetime:
    return datetime(day.year, day.month, day.day, hours, tzinfo=UTC)


def test_daily_report_keys_are_new_york_midnights_and_count_the_calls():
    dataset = CallDataset(size=20_000, spacing=30, start=1_699_000_000)
    report = dataset.event_report(date(2023, 11, 4), date(2023, 11, 6), Period.DAY, "ALL")
    # 2023-11-05 is the end of daylight saving time in New York: 04:00 UTC, then 05:00 UTC.
    assert list(report.calls) == [
        eastern_midnight_utc(date(2023, 11, 4), 4),
        eastern_midnight_utc(date(2023, 11, 5), 4),
        eastern_midnight_utc(date(2023, 11, 6), 5),
    ]
    for key, count in report.calls.items():
        span = 25 if key.day == 5 else 24  # the day the clocks go back is 25 hours long
        begin = key.timestamp()
        assert count == dataset.count(begin, begin + span * 3600 - 1)
        assert type(count) is int
        assert type(report.loops[key]) is int
        assert type(report.form_items[key]) is int
        assert type(report.loops_per_call[key]) is float
        assert report.average_form_items[key] == round(report.form_items[key] / count, 2)
    assert sum(report.calls.values()) > 0


def test_weekly_and_monthly_reports_start_on_sunday_and_the_first():
    dataset = CallDataset(size=100_000, spacing=60, start=1_698_000_000)
    weekly = dataset.event_report(date(2023, 11, 8), date(2023, 11, 20), Period.WEEK, "ALL")
    assert [key.date() for key in weekly.calls] == [
        date(2023, 11, 5),
        date(2023, 11, 12),
        date(2023, 11, 19),
    ]
    # The first week is keyed by its Sunday but counts only the requested days.
    wednesday = datetime(2023, 11, 8, 5, tzinfo=UTC).timestamp()
    assert next(iter(weekly.calls.values())) == dataset.count(wednesday, wednesday + 4 * 86_400 - 1)
    monthly = dataset.event_report(date(2023, 10, 30), date(2024, 1, 2), Period.MONTH, "ALL")
    assert [key.date() for key in monthly.calls] == [
        date(2023, 10, 1),
        date(2023, 11, 1),
        date(2023, 12, 1),
        date(2024, 1, 1),
    ]
    assert [key.hour for key in monthly.calls] == [4, 4, 5, 5]


def test_reports_are_per_phone_and_an_unknown_number_gets_zeros():
    dataset = CallDataset(size=20_000, spacing=30, start=1_699_000_000)
    days = (date(2023, 11, 4), date(2023, 11, 6), Period.DAY)
    everyone = dataset.event_report(*days, "ALL")
    per_number = [dataset.event_report(*days, number) for number in dataset.numbers]
    for key, total in everyone.calls.items():
        assert total == sum(report.calls[key] for report in per_number)
    unknown = dataset.event_report(*days, "5550001111")
    assert set(unknown.calls.values()) == {0}
    assert set(unknown.loops_per_call.values()) == {0.0}
    assert dataset.event_report(*days, "ALL") == everyone
