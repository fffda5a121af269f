"""decode_response: the documented samples, the error statuses, malformed bodies, XML safety."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import xmltodict
from hypothesis import given, settings
from hypothesis import strategies as st

from plumvoice_async._core.decode import decode_response, error_from_response
from plumvoice_async._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    DecodeError,
    MethodNotAllowedError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from plumvoice_async._models import (
    Call,
    CallEvent,
    CallPage,
    CallType,
    DetailedCall,
    DetailedCallPage,
    EventReport,
)
from tests.samples import load_sample, wire_call

JSON = {"Content-Type": "application/json"}
XML = {"Content-Type": "application/xml"}


def day(number: int) -> datetime:
    """A VoiceTrends period start of the samples: 2018-02-<number>, midnight US Eastern."""
    return datetime(2018, 2, number, 5, tzinfo=UTC)


def at(hour: int, minute: int, second: int, *, date: tuple[int, int, int]) -> datetime:
    return datetime(*date, hour, minute, second, tzinfo=UTC)


JUNE_21 = (2018, 6, 21)
DEC_9 = (2019, 12, 9)
ZEROS = {
    day(1): 0,
    day(2): 0,
    day(3): 0,
    day(4): 0,
    day(5): 0,
    day(6): 0,
    day(7): 0,
    day(8): 0,
}
EVENTS_SAMPLE_REPORT = EventReport(
    calls={
        day(1): 0,
        day(2): 0,
        day(3): 0,
        day(4): 0,
        day(5): 0,
        day(6): 0,
        day(7): 1,
        day(8): 0,
    },
    log_events=ZEROS,
    loops_per_call=ZEROS,
    form_items=ZEROS,
    loops=ZEROS,
    average_form_items=ZEROS,
)
CALLS_SAMPLE_PAGE = CallPage(
    calls=[
        Call(
            dest="8009957586",
            src="2125551234",
            start=at(3, 44, 51, date=JUNE_21),
            end=at(3, 44, 57, date=JUNE_21),
            session_id="300060;001;1529552581",
            type=CallType.INBOUND,
            log=True,
        ),
        Call(
            dest="8009957586",
            src="6175551234",
            start=at(3, 0, 8, date=JUNE_21),
            end=at(3, 0, 36, date=JUNE_21),
            session_id="400050;001;1529549919",
            type=CallType.INBOUND,
            log=True,
        ),
    ],
    total_calls=2,
)


# --- the documented samples ----------------------------------------------------------------------


def decode_sample(name: str, model: Any) -> Any:
    return decode_response(*load_sample(name), model)


def test_events_json_sample() -> None:
    report = decode_sample("events/200.json", EventReport)
    assert report == EVENTS_SAMPLE_REPORT
    assert list(report.calls) == [day(number) for number in range(1, 9)]
    assert all(type(value) is int for value in report.calls.values())


def test_events_xml_sample_equals_the_json_one() -> None:
    assert decode_sample("events/200.xml", EventReport) == EVENTS_SAMPLE_REPORT
    assert decode_sample("events/200.xml", EventReport) == decode_sample(
        "events/200.json", EventReport
    )


def test_calls_json_sample() -> None:
    page = decode_sample("calls/200.json", CallPage)
    assert page == CALLS_SAMPLE_PAGE
    assert page.calls[1].duration.total_seconds() == 28


def test_calls_xml_sample_has_its_own_numbers() -> None:
    # plum-api.md 2.2: the XML tab shows other phone numbers than the JSON tab.
    assert decode_sample("calls/200.xml", CallPage) == CallPage(
        calls=[
            Call(
                dest="8669077078",
                src="3472550011",
                start=at(3, 44, 51, date=JUNE_21),
                end=at(3, 44, 57, date=JUNE_21),
                session_id="300060;001;1529552581",
                type=CallType.INBOUND,
                log=True,
            ),
            Call(
                dest="8338605949",
                src="3472550011",
                start=at(3, 0, 8, date=JUNE_21),
                end=at(3, 0, 36, date=JUNE_21),
                session_id="400050;001;1529549919",
                type=CallType.INBOUND,
                log=True,
            ),
        ],
        total_calls=2,
    )


def test_calls_xml_with_the_json_values_equals_the_json() -> None:
    status, headers, body = load_sample("calls/200.xml")
    body = (
        body.replace(b"<dest>8669077078</dest>", b"<dest>8009957586</dest>")
        .replace(b"<dest>8338605949</dest>", b"<dest>8009957586</dest>")
        .replace(b"<src>3472550011</src>", b"<src>2125551234</src>", 1)
        .replace(b"<src>3472550011</src>", b"<src>6175551234</src>", 1)
    )
    assert decode_response(status, headers, body, CallPage) == decode_sample(
        "calls/200.json", CallPage
    )


def test_all_logs_sample() -> None:
    page = decode_sample("all_logs/200.json", DetailedCallPage)
    assert page.total_calls == 1
    (call,) = page.calls
    assert type(call) is DetailedCall
    # plum-api.md 2.3: start/end are strings here, ints in calls; both become datetimes.
    assert (call.dest, call.src, call.start, call.end, call.session_id, call.type, call.log) == (
        "6177123001",
        "6177123000",
        at(13, 33, 6, date=DEC_9),
        at(13, 33, 43, date=DEC_9),
        "100035;000;1575898377",
        CallType.INBOUND,
        True,
    )
    assert len(call.detail) == 15
    assert call.detail[0] == CallEvent(
        line='Executing application "Welcome Application" version "1.0"',
        data={"module_type": "start", "result_variable": "start"},
        event_class="info",
        timestamp=at(13, 33, 6, date=DEC_9),
    )
    assert call.detail[1] == CallEvent(
        line=(
            "Hello, welcome to the Plum Fuse Plus sample application.  This application will "
            "show off a few different modules.  Let's start with some simple math."
        ),
        data={
            "type": "static",
            "has_audio": False,
            "revision_id": "61231",
            "prompt_id_type": "module",
            "prompt_id": "598801",
            "language": "en-US",
            "module_type": "prompt",
            "result_variable": "welcome",
        },
        event_class="prompt",
        timestamp=at(13, 33, 6, date=DEC_9),
    )
    assert call.detail[-1] == CallEvent(
        line="Disconnecting call",
        data={"module_type": "address", "result_variable": "city_state"},
        event_class="event",
        timestamp=at(13, 33, 43, date=DEC_9),
    )
    assert [
        (event.event_class, event.timestamp.second, event.data["module_type"])
        for event in call.detail
    ] == [
        ("info", 6, "start"),
        ("prompt", 6, "prompt"),
        ("prompt", 19, "number"),
        ("event", 25, "number"),
        ("prompt", 25, "number"),
        ("event", 31, "number"),
        ("info", 31, "eval_js"),
        ("prompt", 31, "prompt"),
        ("prompt", 31, "prompt"),
        ("prompt", 31, "prompt"),
        ("prompt", 35, "yes_no"),
        ("event", 39, "yes_no"),
        ("prompt", 39, "prompt"),
        ("prompt", 43, "address"),
        ("event", 43, "address"),
    ]


def test_single_call_log_sample_is_a_top_level_list() -> None:
    assert decode_sample("call/200.json", list[CallEvent]) == [
        CallEvent(
            line='Executing application "email test" version "0.2"',
            data={"module_type": "start", "result_variable": "start"},
            event_class="info",
            timestamp=at(3, 44, 52, date=JUNE_21),
        ),
        CallEvent(
            line="Sending email",
            data={
                "type": "static",
                "has_audio": False,
                "revision_id": "52691",
                "prompt_id_type": "module",
                "prompt_id": "845617",
                "language": "en-US",
                "module_type": "prompt",
                "result_variable": "var_0",
            },
            event_class="prompt",
            timestamp=at(3, 44, 52, date=JUNE_21),
        ),
        CallEvent(
            line="Sent",
            data={
                "to": "tests@plumgroup.com",
                "subject": "This is the subject",
                "body": "This is the body.",
                "module_type": "email",
                "result_variable": "var_1",
            },
            event_class="debug",
            timestamp=at(3, 44, 54, date=JUNE_21),
        ),
    ]


@pytest.mark.parametrize("name", ["events/400.json", "events/400.xml"])
def test_400_samples(name: str) -> None:
    # The XML one is sent with Content-Type: application/json (seed 000): the body decides.
    with pytest.raises(BadRequestError) as info:
        decode_sample(name, EventReport)
    assert info.value.message == "Invalid start parameter."
    assert info.value.status_code == 400
    assert info.value.response is None


# --- XML shapes ----------------------------------------------------------------------------------

CALL_ITEM = (
    b"<item><dest>8009957586</dest><src>2125551234</src><start>1529552691</start>"
    b"<end>1529552697</end><session_id>300060;001;1529552581</session_id>"
    b"<type>inbound</type><log>true</log></item>"
)


def test_one_item_xml_list_is_a_list_of_one() -> None:
    body = b"<result><calls>" + CALL_ITEM + b"</calls><total_calls>1</total_calls></result>"
    page = decode_response(200, XML, body, CallPage)
    assert page == CallPage(calls=[CALLS_SAMPLE_PAGE.calls[0]], total_calls=1)


@pytest.mark.parametrize("empty", [b"<calls/>", b"<calls></calls>", b"<calls>\n  </calls>"])
def test_empty_xml_list(empty: bytes) -> None:
    body = b"<result>" + empty + b"<total_calls>0</total_calls></result>"
    assert decode_response(200, XML, body, CallPage) == CallPage(calls=[], total_calls=0)


def test_xml_single_call_log_has_root_level_items() -> None:
    item = (
        b"<item><event><line>Sent</line><data><module_type>email</module_type>"
        b"<has_audio>false</has_audio></data></event><class>debug</class>"
        b"<timestamp>1529552694</timestamp></item>"
    )
    expected = CallEvent(
        line="Sent",
        data={"module_type": "email", "has_audio": "false"},  # XML carries only text
        event_class="debug",
        timestamp=at(3, 44, 54, date=JUNE_21),
    )
    one = decode_response(200, XML, b"<result>" + item + b"</result>", list[CallEvent])
    assert one == [expected]
    two = decode_response(200, XML, b"<result>" + item * 2 + b"</result>", list[CallEvent])
    assert two == [expected, expected]
    assert decode_response(200, XML, b"<result/>", list[CallEvent]) == []


def test_xml_text_keeps_its_spaces_and_escapes() -> None:
    item = (
        b"<item><event><line>  a &lt;b&gt; &amp; c&#13;\n</line><data/></event>"
        b"<class>info</class><timestamp>0</timestamp></item>"
    )
    (event,) = decode_response(200, XML, b"<result>" + item + b"</result>", list[CallEvent])
    assert event.line == "  a <b> & c\r\n"
    assert event.data == {}


def test_xml_repeated_element_becomes_a_list() -> None:
    item = (
        b"<item><event><line>x</line><data><option>a</option><option>b</option>"
        b"<module_type>menu</module_type></data></event><class>info</class>"
        b"<timestamp>0</timestamp></item>"
    )
    (event,) = decode_response(200, XML, b"<result>" + item + b"</result>", list[CallEvent])
    assert event.data == {"option": ["a", "b"], "module_type": "menu"}


@pytest.mark.parametrize(
    "headers", [JSON, XML, {}, {"content-type": "text/plain"}], ids=["json", "xml", "none", "text"]
)
def test_format_is_sniffed_from_the_body(headers: dict[str, str]) -> None:
    _, _, xml_body = load_sample("calls/200.xml")
    _, _, json_body = load_sample("calls/200.json")
    assert decode_response(200, headers, json_body, CallPage) == CALLS_SAMPLE_PAGE
    assert decode_response(200, headers, xml_body, CallPage).total_calls == 2


def test_byte_order_mark_and_leading_whitespace() -> None:
    _, _, body = load_sample("calls/200.json")
    assert decode_response(200, JSON, b"\xef\xbb\xbf \n" + body, CallPage) == CALLS_SAMPLE_PAGE


# --- error statuses ------------------------------------------------------------------------------

HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head></html>"
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<result><error>&lol9;</error><calls>&lol9;</calls><total_calls>1</total_calls></result>
"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE result [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<result><error>&xxe;</error><calls/><total_calls>&xxe;</total_calls></result>
"""
# An external DTD, which some parsers fetch: refused at the DOCTYPE like the others.
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE result SYSTEM "http://attacker.example/evil.dtd">
<result><calls/><total_calls>1</total_calls></result>
"""


@pytest.mark.parametrize(
    ("status", "body", "error_class", "message"),
    [
        (400, b'{"error":"Invalid end parameter."}', BadRequestError, "Invalid end parameter."),
        (
            401,
            b'{"error":"NotAuthException","type":"NotAuth","message":"Bad developer key."}',
            AuthenticationError,
            "Bad developer key.",
        ),  # the legacy Fuse shape (plum-api.md 2.5): message wins
        (
            403,
            b'{"error":"NotAllowedException","type":"NotAuth","message":"Not your number."}',
            APIError,
            "Not your number.",
        ),
        (404, b'{"error":"Call log not found"}', NotFoundError, "Call log not found"),
        (
            405,
            b'<?xml version="1.0"?>\n<result><error>only GET allowed</error></result>\n',
            MethodNotAllowedError,
            "only GET allowed",
        ),
        (429, b'{"error":"rate limit exceeded"}', RateLimitError, "rate limit exceeded"),
        (500, b'{"error":"database error"}', ServerError, "database error"),
        # Bodies with nothing readable give the status's reason phrase, never a DecodeError.
        (502, HTML_PAGE, ServerError, "Bad Gateway"),
        (503, b"", ServerError, "Service Unavailable"),
        (500, b'{"error":"trunc', ServerError, "Internal Server Error"),
        (400, b'{"error":""}', BadRequestError, "Bad Request"),
        (400, b'{"error":{"code":5}}', BadRequestError, "Bad Request"),
        (400, b'["error"]', BadRequestError, "Bad Request"),
        (404, b"<result><calls/></result>", NotFoundError, "Not Found"),
        (401, BILLION_LAUGHS, AuthenticationError, "Unauthorized"),
        (401, XXE, AuthenticationError, "Unauthorized"),
        (418, b"", APIError, "I'm a Teapot"),
        (599, b"", ServerError, "HTTP status 599"),
        (304, b"", APIError, "Not Modified"),
    ],
)
def test_error_statuses(
    status: int, body: bytes, error_class: type[APIError], message: str
) -> None:
    with pytest.raises(APIError) as info:
        decode_response(status, JSON, body, CallPage)
    assert type(info.value) is error_class
    assert info.value.status_code == status
    assert info.value.message == message
    error = error_from_response(status, JSON, body)
    assert (type(error), error.status_code, error.message) == (error_class, status, message)


def test_rate_limit_error_leaves_reset_at_to_the_transport() -> None:
    error = error_from_response(429, JSON, b'{"error":"rate limit exceeded"}')
    assert isinstance(error, RateLimitError)
    assert error.reset_at is None


# --- malformed 2xx bodies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "model", "reason"),
    [
        ("text/html", HTML_PAGE, CallPage, "an HTML page, not JSON or XML"),
        ("text/html", b"<html><body>Oops</body></html>", CallPage, "an HTML page"),
        ("application/json", b'{"calls":[{"dest":"8009957586"', CallPage, "not valid JSON"),
        ("application/json", b"", CallPage, "empty body"),
        ("application/json", b" \r\n\t", CallPage, "empty body"),
        ("application/json", b"\xff\xfe{}", CallPage, "not valid JSON"),
        ("application/json", b'{"calls":{"1":NaN}}', EventReport, "NaN is not a JSON number"),
        ("application/json", b"[" * 100_000, CallPage, "nesting too deep"),
        ("application/xml", b"oops", CallPage, "not well-formed XML"),
        ("application/xml", b"<result><calls>", CallPage, "not well-formed XML"),
        (
            "application/xml",
            b'<?xml version="1.0" encoding="klingon"?><result/>',
            CallPage,
            "not well-formed XML: unknown encoding",
        ),
        ("application/xml", b"<result>&undeclared;</result>", CallPage, "not well-formed XML"),
        ("application/xml", b"<response><calls/></response>", CallPage, "root element is <resp"),
        ("application/xml", b"<result>" + b"<a>" * 100_000, CallPage, "not well-formed XML"),
        (
            "application/xml",
            b"<result>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</result>",
            CallPage,
            "nesting too deep",
        ),
        (
            "application/xml",
            b'<result><calls><item timestamp="1">0</item><item>1</item></calls></result>',
            EventReport,
            "an <item> without a timestamp among timestamped items",
        ),
        (
            "application/json",
            b'{"calls":"oops","total_calls":1}',
            CallPage,
            "not a CallPage: expected a list, got str @ $.calls",
        ),
        (
            "application/json",
            b'[{"calls":[],"total_calls":0}]',
            CallPage,
            "not a CallPage: expected an object, got list @ $",
        ),
        (
            "application/json",
            b'{"calls":[]}',
            CallPage,
            "not a CallPage: required field missing @ $.total_calls",
        ),
        (
            "application/json",
            b'{"calls":[{"event":{"line":"x"}}]}',  # an object is read as a list of one
            list[CallEvent],
            "not a list[CallEvent]: required field missing @ $[0].line",
        ),
        ("application/xml", b"<result>text</result>", CallPage, "expected an object, got str @ $"),
    ],
)
def test_malformed_bodies_raise_decode_error(
    content_type: str, body: bytes, model: type, reason: str
) -> None:
    with pytest.raises(DecodeError) as info:
        decode_response(200, {"Content-Type": content_type}, body, model)
    error = info.value
    assert reason in error.reason
    assert error.status_code == 200
    assert error.content_type == content_type
    assert error.excerpt == body[:200].decode("utf-8", errors="replace")
    assert error.__cause__ is not None


@pytest.mark.parametrize("model", [CallPage, EventReport])
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"error":"Invalid start parameter."}'),
        ("application/xml", b'<?xml version="1.0"?><result><error>Invalid start.</error></result>'),
    ],
)
def test_an_error_body_under_a_success_status_is_a_decode_error(
    content_type: str, body: bytes, model: type
) -> None:
    # Every report series is "not always present": without this rule the error would decode
    # to an empty report and the failure would pass silently.
    with pytest.raises(DecodeError, match="success status with an error body"):
        decode_response(200, {"Content-Type": content_type}, body, model)


def test_decode_error_chains_the_parser_error() -> None:
    with pytest.raises(DecodeError) as info:
        decode_response(200, JSON, b'{"calls":', CallPage)
    assert type(info.value.__cause__).__name__ == "JSONDecodeError"


def test_decode_error_excerpt_is_short() -> None:
    body = HTML_PAGE + b"<p>" + b"x" * 10_000 + b"</p>"
    with pytest.raises(DecodeError) as info:
        decode_response(201, {"Content-Type": "text/html"}, body, CallPage)
    assert len(info.value.excerpt) == 200
    assert info.value.status_code == 201
    assert "text/html" in str(info.value)


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from([b"", b"<", b"<result>", b'<?xml version="1.0"?>', b"{", b'{"calls":']),
    rest=st.binary(max_size=40) | st.text(max_size=40).map(str.encode),
    model=st.sampled_from([CallPage, DetailedCallPage, EventReport, list[CallEvent]]),
    status=st.sampled_from([200, 404, 503]),
)
def test_any_body_gives_a_model_or_a_plum_error(
    prefix: bytes, rest: bytes, model: Any, status: int
) -> None:
    # Never a raw KeyError, ExpatError, JSONDecodeError, LookupError or cattrs group.
    body = prefix + rest
    if status != 200:
        with pytest.raises(APIError) as info:
            decode_response(status, {}, body, model)
        assert info.value.status_code == status
        return
    outcome: object
    try:
        outcome = decode_response(status, {}, body, model)
    except DecodeError as error:
        outcome = error
    if isinstance(outcome, DecodeError):
        assert outcome.excerpt == body[:200].decode("utf-8", errors="replace")


def test_list_where_a_list_of_events_is_not_a_list() -> None:
    with pytest.raises(DecodeError, match="expected an object, got str"):
        decode_response(200, JSON, b'["a"]', list[CallEvent])


# --- XML safety ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [BILLION_LAUGHS, XXE, EXTERNAL_DTD], ids=["billion-laughs", "xxe", "external-dtd"]
)
def test_dtd_is_refused_before_any_entity_is_expanded(body: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(DecodeError, match="document type declaration is refused") as info:
        decode_response(200, XML, body, CallPage)
    assert time.perf_counter() - started < 0.5
    assert info.value.__cause__ is not None


# --- bounded decoding (issue 12, item 1) ---------------------------------------------------------
# Each malformed body used to cost far more than its size: the converter collected a detailed
# error for every row (100,000 {} rows: 15.3 s and +955 MiB; 1,000,000 <item/>: 38.6 s and
# +1.8 GiB). The bounds are the targets, generous on purpose. Time is CPU time: the
# cost of the decode itself, whatever else the shared machine is running.

EMPTY_ROWS = b'{"calls": [' + b",".join([b"{}"] * 100_000) + b'], "total_calls": 100000}'
NULL_ROWS = b"[" + b",".join([b"null"] * 1_000_000) + b"]"
NULL_CALLS = b'{"calls": [' + b",".join([b"null"] * 1_000_000) + b'], "total_calls": 1}'
EMPTY_ITEMS = (
    b"<result><calls>" + b"<item/>" * 1_000_000 + b"</calls><total_calls>1</total_calls></result>"
)
MALFORMED = [
    pytest.param(
        EMPTY_ROWS,
        JSON,
        CallPage,
        1.0,
        "required field missing @ $.calls[0].dest",
        id="100k-empty-objects",
    ),
    pytest.param(
        NULL_ROWS, JSON, list[CallEvent], 1.0, "expected an object, got null @ $[0]", id="1M-nulls"
    ),
    pytest.param(
        NULL_CALLS, JSON, DetailedCallPage, 1.0, "got null @ $.calls[0]", id="1M-null-calls"
    ),
    pytest.param(
        EMPTY_ITEMS,
        XML,
        CallPage,
        3.0,
        "expected an object, got null @ $.calls[0]",
        id="1M-empty-items-xml",
    ),
]


@pytest.mark.parametrize(("body", "headers", "model", "seconds", "reason"), MALFORMED)
def test_a_malformed_body_fails_fast(
    body: bytes, headers: dict[str, str], model: Any, seconds: float, reason: str
) -> None:
    started = time.process_time()
    with pytest.raises(DecodeError) as info:
        decode_response(200, headers, body, model)
    decoding = time.process_time() - started
    # The bound, or, on a machine loaded enough to slow the bare parser past it, twice
    # what that parser takes of the same body in the same run: the promise is a cost of the
    # order of parsing, which a per-row error bookkeeping broke by a factor of 15 to 30.
    parse = json.loads if headers is JSON else xmltodict.parse
    started = time.process_time()
    parse(body)
    parsing = time.process_time() - started
    assert decoding < max(seconds, 2 * parsing)
    # The first few bad rows are still named, and the message says the rest was not examined.
    assert reason in info.value.reason
    assert info.value.reason.endswith("; later items not examined")
    assert len(info.value.reason) < 400


MEASURE_PEAK = """
import re, sys
from plumvoice_async._core.decode import decode_response
from plumvoice_async._errors import DecodeError
from tests.core.test_decode import MALFORMED

def kib(field):
    with open("/proc/self/status") as status:
        return int(re.search(field + r":\\s+(\\d+) kB", status.read()).group(1))

(case,) = [case for case in MALFORMED if case.id == sys.argv[1]]
body, headers, model, _, _ = case.values
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # Linux: the peak resident set is reset to the current one
before = kib("VmRSS")
try:
    decode_response(200, headers, body, model)
except DecodeError:
    print(kib("VmHWM") - before)
"""


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="Linux /proc only")
@pytest.mark.parametrize("case", [case.id for case in MALFORMED])
def test_a_malformed_body_costs_memory_in_proportion(case: str) -> None:
    # A fresh process, whose peak resident set is reset once the body is built, so the peak
    # is this decode's (tracemalloc would slow xmltodict's million allocations tenfold).
    result = subprocess.run(
        [sys.executable, "-c", MEASURE_PEAK, case],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    extra_kib = int(result.stdout)
    assert extra_kib < 100 * 1024


def test_a_bad_row_deep_in_a_page_is_named_by_its_index() -> None:
    rows = [CALL_ROW] * 10_000
    rows[9_999] = {**CALL_ROW, "start": "yesterday"}
    body = json.dumps({"calls": rows, "total_calls": 10_000}).encode()
    with pytest.raises(DecodeError) as info:
        decode_response(200, JSON, body, CallPage)
    assert info.value.reason == (
        "not a CallPage: expected a UNIX timestamp, got str 'yesterday' @ $.calls[9999].start"
    )


# --- totals (issue 12, item 10) ------------------------------------------------------------------

CALL_ROW = wire_call()


@pytest.mark.parametrize("model", [CallPage, DetailedCallPage])
@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (JSON, b'{"calls": [], "total_calls": -5}'),
        (JSON, b'{"calls": [], "total_calls": "-1"}'),
        (XML, b"<result><calls/><total_calls>-5</total_calls></result>"),
    ],
)
def test_a_negative_total_is_refused(headers: dict[str, str], body: bytes, model: Any) -> None:
    with pytest.raises(DecodeError, match=r"expected a count \(an integer >= 0\), got .*-[15]"):
        decode_response(200, headers, body, model)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (JSON, b'{"calls": []}'),
        (JSON, b'{"calls": [], "total_calls": null}'),
        (XML, b"<result><calls/></result>"),
        (XML, b"<result><calls/><total_calls/></result>"),
    ],
)
def test_all_logs_without_a_total_is_a_page_with_an_unknown_total(
    headers: dict[str, str], body: bytes
) -> None:
    # plum-api.md 2.3: whether all_logs sends total_calls is not known. The walk then pages
    # until a short page (paging.py: a total of None).
    assert decode_response(200, headers, body, DetailedCallPage) == DetailedCallPage([], None)


def test_calls_still_requires_its_documented_total() -> None:
    # plum-api.md 2.2 documents total_calls on /api/calls: its absence is a malformed page.
    with pytest.raises(DecodeError, match=r"required field missing @ \$\.total_calls"):
        decode_response(200, JSON, b'{"calls": []}', CallPage)
