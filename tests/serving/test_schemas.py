"""`serving.schemas.utc_times`: request times in UTC, converted once per distinct time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from serving.schemas import PredictRequest, utc_times

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def test_naive_times_are_utc_offsets_are_converted_and_none_is_now():
    paris = timezone(timedelta(hours=2))
    out = utc_times([datetime(2026, 5, 1, 8, 30), datetime(2026, 5, 1, 10, 30, tzinfo=paris), None], NOW)
    assert out == [datetime(2026, 5, 1, 8, 30, tzinfo=timezone.utc)] * 2 + [NOW]
    assert all(t.tzinfo is timezone.utc for t in out)


def test_one_instant_in_several_offsets_and_a_naive_twin_each_map_to_the_right_time():
    """The cache is keyed by the datetime: equal instants share an entry, a naive time (UTC by
    rule) never collides with an aware one of another instant."""
    plus5 = timezone(timedelta(hours=5))
    values = [datetime(2026, 5, 1, 5, 0, tzinfo=plus5), datetime(2026, 5, 1, 0, 0, tzinfo=timezone.utc),
              datetime(2026, 5, 1, 5, 0), datetime(2026, 5, 1, 0, 0)]
    assert utc_times(values, NOW) == [datetime(2026, 5, 1, 0, 0, tzinfo=timezone.utc)] * 2 + [
        datetime(2026, 5, 1, 5, 0, tzinfo=timezone.utc), datetime(2026, 5, 1, 0, 0, tzinfo=timezone.utc)]


def test_parsed_request_times_keep_their_offset_until_converted():
    body = PredictRequest.model_validate_json(
        b'{"customers": [{"customer_id": "a:1", "request_at": "2026-05-01T10:30:00+02:00"},'
        b' {"customer_id": "a:2", "request_at": "2026-05-01T08:30:00"}, {"customer_id": "a:3"}]}')
    out = utc_times([c.request_at for c in body.customers], NOW)
    assert out == [datetime(2026, 5, 1, 8, 30, tzinfo=timezone.utc)] * 2 + [NOW]
