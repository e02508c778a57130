"""The pure route rules (core/routes.py): marks, wanted records, record plans and tunnel rule merges."""

from __future__ import annotations

import pytest

from envship.core.routes import (
    COMMENT_LIMIT,
    Record,
    RouteOwner,
    Wanted,
    host_depth_problem,
    merge_rule,
    plan_records,
    plan_removal,
    remove_rule,
    restore_rule,
    wanted_records,
)
from envship.errors import RefusedError

OWNER = RouteOwner("hello", "staging", "hello-staging", "acme/hello")
MARK = OWNER.mark


def test_the_mark_names_the_target_and_fits_a_free_zones_comment() -> None:
    assert MARK == "envship app=hello env=staging ns=hello-staging repo=acme/hello"
    long = [RouteOwner("a" * 63, "preview", "b" * 60 + f"-{i}", "some-organisation/" + "r" * 80) for i in range(3)]
    marks = [o.mark for o in long]
    assert all(len(m) <= COMMENT_LIMIT for m in marks)
    assert len(set(marks)) == 3                         # still one per target
    assert RouteOwner("hello", "staging", "hello-staging", "other/hello").mark != MARK


def test_wanted_records_from_addresses() -> None:
    assert wanted_records(["203.0.113.10"]) == [Wanted("A", "203.0.113.10")]
    assert wanted_records(["2001:DB8:0:0::1", "203.0.113.10"]) == [Wanted("A", "203.0.113.10"),
                                                                  Wanted("AAAA", "2001:db8::1")]
    assert wanted_records(["LB-1.elb.example.net.", "lb-2.example.net"]) == [Wanted("CNAME", "lb-1.elb.example.net")]
    assert wanted_records(["lb.example.net", "198.51.100.4"]) == [Wanted("A", "198.51.100.4")]   # IPs win
    assert wanted_records([" ", ""]) == []


def record(id: str, kind: str, content: str, comment: str = MARK, name: str = "staging.example.com",
           proxied: bool = True, ttl: int = 1) -> Record:
    return Record(id, kind, name, content, proxied, ttl, comment)


def test_a_record_that_is_right_needs_nothing_and_drift_is_patched() -> None:
    wanted = [Wanted("A", "203.0.113.7")]
    right = plan_records("staging.example.com", wanted, [record("1", "A", "203.0.113.7")], OWNER, False, "adopt")
    assert right.writes == 0 and right.action == "none"
    drifted = plan_records("staging.example.com", wanted, [record("1", "A", "203.0.113.7", proxied=False, ttl=300)],
                           OWNER, False, "adopt")
    assert drifted.patches == [{"id": "1", "proxied": True, "ttl": 1}] and drifted.action == "update"


def test_round_robin_records_are_added_and_removed_one_by_one() -> None:
    found = [record("1", "A", "203.0.113.7"), record("2", "A", "203.0.113.8")]
    change = plan_records("staging.example.com", [Wanted("A", "203.0.113.8"), Wanted("A", "203.0.113.9")], found,
                          OWNER, False, "adopt")
    assert change.patches == [{"id": "1", "content": "203.0.113.9", "proxied": True, "ttl": 1, "comment": MARK}]
    assert change.posts == [] and change.deletes == []


def test_a_type_change_is_a_delete_and_a_post_in_one_batch() -> None:
    change = plan_records("staging.example.com", [Wanted("CNAME", "lb.example.net")],
                          [record("1", "A", "203.0.113.7")], OWNER, False, "adopt")
    assert change.action == "replace"
    assert change.batch() == {"deletes": [{"id": "1"}], "posts": [
        {"type": "CNAME", "name": "staging.example.com", "content": "lb.example.net", "proxied": True, "ttl": 1,
         "comment": MARK}]}


@pytest.mark.parametrize("comment, adopt, content, words", [
    ("", False, "198.51.100.1", "was not created by envship"),
    ("managed by terraform", True, "198.51.100.1", "only adopts a record that already has the content"),
    ("envship app=hello env=staging ns=hello-staging repo=other/hello", True, "203.0.113.7",
     "belongs to another envship target"),
])
def test_records_that_are_not_this_targets_are_never_planned_over(comment: str, adopt: bool, content: str,
                                                                  words: str) -> None:
    with pytest.raises(RefusedError) as e:
        plan_records("staging.example.com", [Wanted("A", "203.0.113.7")],
                     [record("9", "A", content, comment=comment)], OWNER, adopt, "'adopt: true'")
    assert words in e.value.problems[0].message


def test_adopt_only_adds_the_mark() -> None:
    change = plan_records("staging.example.com", [Wanted("A", "203.0.113.7")],
                          [record("9", "A", "203.0.113.7", comment="", proxied=True)], OWNER, True, "adopt")
    assert change.action == "adopt" and change.patches == [{"id": "9", "comment": MARK}]


def test_removal_takes_only_this_targets_records() -> None:
    found = [record("1", "A", "203.0.113.7"), record("2", "A", "203.0.113.8", comment="someone"),
             record("3", "A", "203.0.113.7", name="old.example.com")]
    assert plan_removal("staging.example.com", found, OWNER).deletes == ["1", "3"]


CONFIG = {"ingress": [{"hostname": "a.example.com", "service": "http://a:80", "originRequest": {"http2Origin": True}},
                      {"hostname": "staging.example.com", "path": "/api", "service": "http://api:80"},
                      {"service": "http_status:404"}],
          "originRequest": {"connectTimeout": 10}, "warp-routing": {"enabled": False}}


def test_a_rule_goes_before_the_catch_all_and_everything_else_stays() -> None:
    change = merge_rule(CONFIG, "staging.example.com", "http://web:80")
    assert change.action == "add"
    assert change.config["ingress"] == [*CONFIG["ingress"][:2], {"hostname": "staging.example.com",
                                                                 "service": "http://web:80"}, CONFIG["ingress"][2]]
    assert change.config["originRequest"] == CONFIG["originRequest"]
    assert change.config["warp-routing"] == {"enabled": False}
    again = merge_rule(change.config, "staging.example.com", "http://web:80")
    assert again.action == "none"
    moved = merge_rule(change.config, "staging.example.com", "http://web2:80")
    assert moved.action == "update" and moved.config["ingress"][2]["service"] == "http://web2:80"


def test_an_empty_configuration_gets_the_usual_catch_all() -> None:
    change = merge_rule({}, "staging.example.com", "http://web:80")
    assert change.config == {"ingress": [{"hostname": "staging.example.com", "service": "http://web:80"},
                                         {"service": "http_status:404"}]}


def test_remove_and_restore_touch_only_the_hosts_whole_rule() -> None:
    added = merge_rule(CONFIG, "staging.example.com", "http://web:80").config
    assert remove_rule(added, "staging.example.com").config["ingress"] == CONFIG["ingress"]
    before = {"hostname": "staging.example.com", "service": "http://old:80", "originRequest": {"noTLSVerify": True}}
    restored = restore_rule(added, "staging.example.com", before)
    assert before in restored.config["ingress"] and restored.config["ingress"][-1] == {"service": "http_status:404"}
    assert restore_rule(added, "staging.example.com", None).config["ingress"] == CONFIG["ingress"]


def test_hosts_deeper_than_universal_ssl_covers_are_named() -> None:
    assert host_depth_problem("staging.example.com", "example.com", False, "hello") is None
    problem = host_depth_problem("pr-3.hello.example.com", "example.com", True, "hello")
    assert problem is not None and "2 levels below" in problem.message and "hello-pr-{pr}.example.com" in problem.hint
